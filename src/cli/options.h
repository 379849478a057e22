/* cli/options — the options of `cohort server`, from flags and a config file
 * (one `name = value` per line, the same names as the long flags, `#` for
 * comments). Flags given on the command line win over the file; an option
 * given twice on the command line, or twice in one file, is refused. */
#ifndef COHORT_CLI_OPTIONS_H
#define COHORT_CLI_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/node.h"
#include "server/server.h"

struct server_options {
    struct node_config node;
    struct server_config server;
    uint16_t metrics_port; /* --metrics-port; 0: no metrics endpoint */
    char **strings;        /* owned copies behind the config's pointers */
    uint32_t string_count;
    uint32_t string_capacity;
    bool out_of_memory; /* a copy failed: parsing refuses to go on */
};

/* Parse argv (after the subcommand name). On a bad option prints one line
 * naming it and the fix, and returns 2; returns 1 when --help was printed,
 * 0 on success. */
int server_options_parse(struct server_options *o, int argc, char **argv);
void server_options_free(struct server_options *o);
void server_options_usage(void);

#endif
