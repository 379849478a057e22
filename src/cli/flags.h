/* cli/flags — what the subcommands' option parsers share: taking one
 * "--name value" or "--name=value" off argv, and range-checked numbers,
 * with a one-line error that names the command, the flag and the range. */
#ifndef COHORT_CLI_FLAGS_H
#define COHORT_CLI_FLAGS_H

#include <stdbool.h>
#include <stdint.h>

/* One option taken off argv. name points into argv or into buf. */
struct cli_flag {
    const char *name;
    const char *value; /* NULL for a switch */
    char buf[64];
};

/* Print "cohort <cmd>: --<name> <value>: <why>" and return 2 (bad usage). */
int cli_flag_bad(const char *cmd, const char *name, const char *value,
                 const char *why);

/* Take the option at argv[*i] (advancing *i past a separate value) into
 * flag. is_switch says which names take no value. Returns 0, or 2 after
 * printing why (not an option, or a value missing). */
int cli_flag_next(const char *cmd, int argc, char **argv, int *i,
                  bool (*is_switch)(const char *name), struct cli_flag *flag);

/* Parse a decimal (or 0x hexadecimal) whole number in [min, max]. Returns 0,
 * or 2 after printing the range. */
int cli_flag_u64(const char *cmd, const char *name, const char *value,
                 uint64_t min, uint64_t max, uint64_t *out);

/* A decimal whole number and nothing else (no sign, space or unit), for
 * flags whose callers word their own error and for numbers read from INFO:
 * true and *out, or false. */
bool cli_decimal_u64(const char *s, uint64_t *out);

/* Parse bytes as Redis's config does: a decimal number with an optional,
 * case-insensitive unit (b; k, m, g = 1000^n; kb, mb, gb = 1024^n), at most
 * max. Returns 0, or 2 after printing the form. */
int cli_flag_bytes(const char *cmd, const char *name, const char *value,
                   uint64_t max, uint64_t *out);

#endif
