/* cli/flags — see flags.h. */
#include "cli/flags.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int cli_flag_bad(const char *cmd, const char *name, const char *value,
                 const char *why)
{
    fprintf(stderr, "cohort %s: --%s %s: %s; see 'cohort %s --help'\n", cmd,
            name, value ? value : "", why, cmd);
    return 2;
}

int cli_flag_next(const char *cmd, int argc, char **argv, int *i,
                  bool (*is_switch)(const char *name), struct cli_flag *flag)
{
    const char *arg = argv[*i];
    if (strncmp(arg, "--", 2) != 0) {
        fprintf(stderr,
                "cohort %s: unexpected argument '%s'; options start with -- "
                "(see 'cohort %s --help')\n",
                cmd, arg, cmd);
        return 2;
    }
    flag->name = arg + 2;
    flag->value = NULL;
    const char *eq = strchr(flag->name, '=');
    if (eq) {
        snprintf(flag->buf, sizeof(flag->buf), "%.*s", (int)(eq - flag->name),
                 flag->name);
        flag->name = flag->buf;
        flag->value = eq + 1;
    } else if (is_switch(flag->name)) {
        return 0;
    } else if (*i + 1 < argc) {
        flag->value = argv[++*i];
    } else {
        return cli_flag_bad(cmd, flag->name, NULL, "needs a value");
    }
    return 0;
}

int cli_flag_u64(const char *cmd, const char *name, const char *value,
                 uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(value, &end, 0);
    if (errno || *end || end == value || value[0] == '-' || v < min ||
        v > max) {
        char why[96];
        snprintf(why, sizeof(why),
                 "expected a whole number from %" PRIu64 " to %" PRIu64, min,
                 max);
        return cli_flag_bad(cmd, name, value, why);
    }
    *out = v;
    return 0;
}

bool cli_decimal_u64(const char *s, uint64_t *out)
{
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

/* The multiplier of a Redis memory unit (case-insensitive): k, m, g are
 * powers of 1000, kb, mb, gb powers of 1024, b or nothing 1; 0 if unknown. */
static uint64_t unit_multiplier(const char *unit)
{
    static const struct {
        const char *name;
        uint64_t factor;
    } units[] = {
        {"", 1},
        {"b", 1},
        {"k", 1000},
        {"kb", 1024},
        {"m", 1000 * 1000},
        {"mb", 1024 * 1024},
        {"g", 1000 * 1000 * 1000},
        {"gb", 1024ull * 1024 * 1024},
    };
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcasecmp(unit, units[i].name) == 0)
            return units[i].factor;
    return 0;
}

int cli_flag_bytes(const char *cmd, const char *name, const char *value,
                   uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(value, &end, 10);
    uint64_t factor = end != value ? unit_multiplier(end) : 0;
    if (errno || factor == 0 || value[0] == '-' || value[0] == '+' ||
        v > max / factor) {
        (void)max;
        return cli_flag_bad(cmd, name, value,
                            "expected bytes: a number with an optional unit "
                            "(100mb, 1gb; kb, mb, gb are powers of 1024, k, "
                            "m, g of 1000)");
    }
    *out = v * factor;
    return 0;
}
