/* cli/cmd_status — `cohort status [host:port]`: the cluster as one member
 * sees it, from that member's INFO replication and persistence sections
 * (roles, lag and health; the disk, snapshots). COHORT_PASSWORD (and
 * COHORT_USER) log in first. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/rpc.h"
#include "common/resp.h"

int cmd_status(int argc, char **argv)
{
    const char *addr = "127.0.0.1:7001";
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: cohort status [host:port]   (default 127.0.0.1:7001)\n"
               "Show the view, primary, members, roles, lag and health as "
               "that member sees them.\n");
        return 0;
    }
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-')
            return cli_flag_unknown("status", argv[i]);
    if (argc > 2) {
        fprintf(stderr, "cohort status: takes one host:port; see 'cohort "
                        "status --help'\n");
        return 2;
    }
    if (argc > 1)
        addr = argv[1];
    if (cli_flag_address("status", addr))
        return 2;
    struct cli_rpc c;
    struct cohort_err err;
    if (cli_rpc_open_member(&c, addr, 1u << 16, &err) != 0) {
        fprintf(stderr,
                "cohort status: cannot talk to %s: %s; is the cluster "
                "running (cohort up)?\n",
                addr, err.message);
        return 1;
    }
    struct resp_arg args[] = {
        {"INFO", 4}, {"replication", 11}, {"persistence", 11}};
    if (cli_rpc_expect(&c, 3, args, RESP_TYPE_BULK, &err) != 0) {
        fprintf(stderr, "cohort status: %s\n", err.message);
        cli_rpc_close(&c);
        return 1;
    }
    printf("cohort status of %s\n%.*s", addr, (int)c.nodes[0].len,
           c.nodes[0].str);
    cli_rpc_close(&c);
    return 0;
}
