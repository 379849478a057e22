/* cli/flags — see flags.h. */
#include "cli/flags.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime/addr.h"

enum cli_flag_kind cli_flag_kind_in(const struct cli_flag_spec *specs,
                                    size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (!strcmp(name, specs[i].name))
            return specs[i].arg ? CLI_FLAG_VALUE : CLI_FLAG_SWITCH;
    return CLI_FLAG_UNKNOWN;
}

/* Where the flags being parsed came from ("FILE line N"), or "" for the
 * command line: said after the command in every message below. */
static char flag_where[300];

void cli_flag_where(const char *where)
{
    snprintf(flag_where, sizeof(flag_where), "%s", where ? where : "");
}

/* "cohort <cmd>: " and, for a config file's line, "<where>: ". */
static void lead(const char *cmd)
{
    fprintf(stderr, "cohort %s: %s%s", cmd, flag_where,
            flag_where[0] ? ": " : "");
}

int cli_flag_bad(const char *cmd, const char *name, const char *value,
                 const char *why)
{
    lead(cmd);
    fprintf(stderr, "--%s %s: %s; see 'cohort %s --help'\n", name,
            value ? value : "", why, cmd);
    return 2;
}

int cli_flag_unknown(const char *cmd, const char *arg)
{
    if (arg[0] != '-') {
        lead(cmd);
        fprintf(stderr,
                "unexpected argument '%s'; options start with -- "
                "(see 'cohort %s --help')\n",
                arg, cmd);
        return 2;
    }
    int len = (int)strcspn(arg, "=");
    lead(cmd);
    fprintf(stderr, "unknown flag %.*s; see 'cohort %s --help'\n", len, arg,
            cmd);
    return 2;
}

int cli_flag_needs_value(const char *cmd, const char *name)
{
    lead(cmd);
    fprintf(stderr, "--%s needs a value; see 'cohort %s --help'\n", name, cmd);
    return 2;
}

int cli_flag_next(const char *cmd, int argc, char **argv, int *i,
                  enum cli_flag_kind (*kind)(const char *name),
                  struct cli_flag *flag)
{
    const char *arg = argv[*i];
    if (strncmp(arg, "--", 2) != 0)
        return cli_flag_unknown(cmd, arg);
    flag->name = arg + 2;
    flag->value = NULL;
    const char *eq = strchr(flag->name, '=');
    if (eq) {
        snprintf(flag->buf, sizeof(flag->buf), "%.*s", (int)(eq - flag->name),
                 flag->name);
        flag->name = flag->buf;
        flag->value = eq + 1;
    }
    enum cli_flag_kind k = kind(flag->name);
    if (k == CLI_FLAG_UNKNOWN)
        return cli_flag_unknown(cmd, arg);
    if (eq || k == CLI_FLAG_SWITCH)
        return 0;
    if (*i + 1 >= argc)
        return cli_flag_needs_value(cmd, flag->name);
    flag->value = argv[++*i];
    return 0;
}

int cli_flag_once(const char *cmd, struct cli_flag_seen *seen, const char *name,
                  const char *value)
{
    for (size_t i = 0; i < seen->count; i++) {
        if (strcmp(seen->name[i], name) != 0)
            continue;
        lead(cmd);
        fprintf(stderr,
                "--%s is given twice (the second time as %s); give it "
                "once\n",
                name, value ? value : "a switch");
        return 2;
    }
    /* Every name is a command's own (cli_flag_next() refused others), and
     * no command has more flags than fit. */
    if (seen->count < CLI_FLAG_SEEN_MAX) {
        snprintf(seen->name[seen->count], sizeof(seen->name[0]), "%s", name);
        seen->count++;
    }
    return 0;
}

int cli_flag_address(const char *cmd, const char *addr)
{
    /* A bare port: suggest it on loopback, if it is one (1..65535; "0"
     * or "70000" would be suggested an address refused in turn). */
    if (addr[0] != '\0' && strspn(addr, "0123456789") == strlen(addr) &&
        strlen(addr) <= 5 && atol(addr) >= 1 && atol(addr) <= 65535) {
        lead(cmd);
        fprintf(stderr,
                "'%s' is not host:port; did you mean "
                "127.0.0.1:%s?\n",
                addr, addr);
        return 2;
    }
    if (strchr(addr, ',') != NULL) {
        lead(cmd);
        fprintf(stderr,
                "'%s' is a list; give one member's client "
                "address, host:port (any member will do)\n",
                addr);
        return 2;
    }
    if (strchr(addr, ':') == NULL) {
        lead(cmd);
        fprintf(stderr, "'%s' is not host:port (e.g. 127.0.0.1:7001)\n", addr);
        return 2;
    }
    char host[ADDR_HOST_MAX];
    uint16_t port = 0;
    struct cohort_err err;
    if (addr_split(addr, host, sizeof(host), &port, &err) != 0) {
        lead(cmd);
        fprintf(stderr, "%s\n", err.message);
        return 2;
    }
    if (port == 0) {
        lead(cmd);
        fprintf(stderr,
                "address '%s': port 0 is no member's port; give "
                "the client port, e.g. 127.0.0.1:7001\n",
                addr);
        return 2;
    }
    return 0;
}

int cli_flag_u64(const char *cmd, const char *name, const char *value,
                 uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (!cli_decimal_u64(value, &v) || v < min || v > max) {
        char why[96];
        snprintf(why, sizeof(why),
                 "expected a decimal number from %" PRIu64 " to %" PRIu64, min,
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

/* n in the largest binary unit that divides it ("64gb", "16mb"), and in
 * bytes when that is not plain bytes: "16mb (16777216 bytes)". */
static void bytes_text(uint64_t n, char *out, size_t size)
{
    static const struct {
        const char *unit;
        unsigned shift;
    } units[] = {{"tb", 40}, {"gb", 30}, {"mb", 20}, {"kb", 10}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        uint64_t one = 1ull << units[i].shift;
        if (n >= one && n % one == 0) {
            snprintf(out, size, "%" PRIu64 "%s (%" PRIu64 " bytes)",
                     n >> units[i].shift, units[i].unit, n);
            return;
        }
    }
    snprintf(out, size, "%" PRIu64 " bytes", n);
}

int cli_flag_bytes(const char *cmd, const char *name, const char *value,
                   uint64_t min, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = 0;
    if (value[0] >= '0' && value[0] <= '9')
        v = strtoull(value, &end, 10);
    uint64_t factor = end != NULL ? unit_multiplier(end) : 0;
    if (factor == 0)
        return cli_flag_bad(cmd, name, value,
                            "expected bytes: a decimal number with an "
                            "optional unit (100mb, 1gb; kb, mb, gb are "
                            "powers of 1024, k, m, g of 1000)");
    char why[96], limit[48];
    if (errno == ERANGE || v > max / factor) {
        bytes_text(max, limit, sizeof(limit));
        snprintf(why, sizeof(why), "expected at most %s", limit);
        return cli_flag_bad(cmd, name, value, why);
    }
    if (v * factor < min) {
        bytes_text(min, limit, sizeof(limit));
        snprintf(why, sizeof(why), "expected at least %s", limit);
        return cli_flag_bad(cmd, name, value, why);
    }
    *out = v * factor;
    return 0;
}
