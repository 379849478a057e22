/* cli/flags — what the subcommands' option parsers share: taking one
 * "--name value" or "--name=value" off argv, and range-checked numbers,
 * with a one-line error that names the command, the flag and the range.
 *
 * Every number a flag takes is decimal (no sign, space, 0x or octal
 * leading zero meaning); --cluster-id, a hexadecimal id by design, is the
 * one exception. A flag the command does not have is "unknown flag
 * --name", never taken for one that needs a value. */
#ifndef COHORT_CLI_FLAGS_H
#define COHORT_CLI_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One option taken off argv. name points into argv or into buf. */
struct cli_flag {
    const char *name;
    const char *value; /* NULL for a switch */
    char buf[64];
};

/* What a name is to a command. */
enum cli_flag_kind {
    CLI_FLAG_UNKNOWN,
    CLI_FLAG_SWITCH, /* takes no value (or one after =) */
    CLI_FLAG_VALUE,
};

/* A command's flags for its --help and for cli_flag_kind_in(): arg NULL
 * for a switch. */
struct cli_flag_spec {
    const char *name;
    const char *arg;
    const char *help;
};

/* What name is in specs[0..count). */
enum cli_flag_kind cli_flag_kind_in(const struct cli_flag_spec *specs,
                                    size_t count, const char *name);

/* Where the flags parsed next come from, e.g. "FILE line N" for a config
 * file's line, said after "cohort <cmd>: " in every message of this
 * module, so that an error stays one line; NULL for the command line. */
void cli_flag_where(const char *where);

/* Print "cohort <cmd>: --<name> <value>: <why>; see 'cohort <cmd> --help'"
 * and return 2 (bad usage). */
int cli_flag_bad(const char *cmd, const char *name, const char *value,
                 const char *why);

/* Print "cohort <cmd>: unknown flag <arg>; see 'cohort <cmd> --help'" (arg
 * as typed, "--name" or "-x", without any "=value"), or for an arg without
 * a dash "unexpected argument '<arg>'; options start with --", and return
 * 2. */
int cli_flag_unknown(const char *cmd, const char *arg);

/* Print "cohort <cmd>: --<name> needs a value; see ..." and return 2. */
int cli_flag_needs_value(const char *cmd, const char *name);

/* Take the option at argv[*i] (advancing *i past a separate value) into
 * flag. kind says which names the command has and which take no value.
 * Returns 0, or 2 after printing why (not an option, an unknown flag, or a
 * value missing). */
int cli_flag_next(const char *cmd, int argc, char **argv, int *i,
                  enum cli_flag_kind (*kind)(const char *name),
                  struct cli_flag *flag);

/* The flags one source (the command line, or one config file) gave. */
#define CLI_FLAG_SEEN_MAX 64
struct cli_flag_seen {
    char name[CLI_FLAG_SEEN_MAX][32];
    size_t count;
};

/* A flag that takes one value, given twice in one source, is refused: the
 * last value used to win in silence (--id 1 ... --id 2). Returns 0 and
 * records name, or 2 after printing "cohort <cmd>: --<name> is given twice
 * (<value> and <value>...); give it once". A config file's line over a
 * flag is no repeat: the flag wins (cli/options.h). */
int cli_flag_once(const char *cmd, struct cli_flag_seen *seen, const char *name,
                  const char *value);

/* Check that addr is a member's address as the tools dial it: host:port
 * with a port in 1..65535, an IPv6 host in brackets ([::1]:7001). Returns
 * 0, or 2 after printing "cohort <cmd>: <why>" with an example (for a bare
 * number, "did you mean 127.0.0.1:<n>?"). The host is not resolved here. */
int cli_flag_address(const char *cmd, const char *addr);

/* Parse a decimal whole number in [min, max]. Returns 0, or 2 after
 * printing "expected a decimal number from <min> to <max>". */
int cli_flag_u64(const char *cmd, const char *name, const char *value,
                 uint64_t min, uint64_t max, uint64_t *out);

/* A decimal whole number and nothing else (no sign, space or unit), for
 * flags whose callers word their own error and for numbers read from INFO:
 * true and *out, or false. */
bool cli_decimal_u64(const char *s, uint64_t *out);

/* Parse bytes as Redis's config does: a decimal number with an optional,
 * case-insensitive unit (b; k, m, g = 1000^n; kb, mb, gb = 1024^n), in
 * [min, max]. Returns 0, or 2 after printing the form, or the limit it
 * broke ("expected at most 16mb (16777216 bytes)"). */
int cli_flag_bytes(const char *cmd, const char *name, const char *value,
                   uint64_t min, uint64_t max, uint64_t *out);

#endif
