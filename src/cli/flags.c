/* cli/flags — see flags.h. */
#include "cli/flags.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
