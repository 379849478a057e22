/* cli/cmd_status — `cohort status [host:port]`: the cluster as one member
 * sees it, from that member's INFO replication and persistence sections
 * (roles, lag and health; the disk, snapshots), after one "state:" line
 * that says in words what the member is doing (a backup that lost its
 * primary says so, and whether enough voters are connected to elect
 * another). COHORT_PASSWORD (and COHORT_USER) log in first. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/rpc.h"
#include "common/resp.h"

/* The backup's line: whom it follows, or that it lost its primary. */
static void backup_state(const char *text, size_t len, char *out, size_t size)
{
    char primary[32] = "?", link[16] = "", ago[32] = "-1";
    cli_info_field(text, len, "primary_index:", primary, sizeof(primary));
    cli_info_field(text, len, "master_link_status:", link, sizeof(link));
    cli_info_field(text, len, "master_last_io_seconds_ago:", ago, sizeof(ago));
    char heard[64];
    if (!strcmp(ago, "-1"))
        snprintf(heard, sizeof(heard), "not heard from since this start");
    else
        snprintf(heard, sizeof(heard), "last heard %s s ago", ago);
    if (strcmp(link, "down") != 0) {
        snprintf(out, size, "backup of primary %s (%s)", primary, heard);
        return;
    }
    struct cli_majority v;
    if (cli_info_lacks_majority(text, len, false, &v))
        snprintf(out, size,
                 "backup, but primary %s is unreachable (%s); no majority "
                 "to elect a new one: connected to %u of %u voters, %u "
                 "needed (start the stopped members)",
                 primary, heard, v.connected, v.voters, v.needed);
    else
        snprintf(out, size,
                 "backup, but primary %s is unreachable (%s); a view change "
                 "to a new primary should follow",
                 primary, heard);
}

/* The primary's line: whether it hears from a majority of voters, without
 * which it commits nothing (it stays primary: only a majority elsewhere
 * replaces it). */
static void primary_state(const char *text, size_t len, const char *view,
                          char *out, size_t size)
{
    struct cli_majority v;
    if (!cli_info_lacks_majority(text, len, true, &v)) {
        snprintf(out, size, "primary of view %s", view);
        return;
    }
    snprintf(out, size,
             "primary of view %s, but it hears from %u of %u voters, %u "
             "needed: it commits no write until more are up (start the "
             "stopped members), or a majority elsewhere elects another",
             view, v.connected, v.voters, v.needed);
}

/* The "state:" line: the role in words. */
static void state_line(const char *text, size_t len, char *out, size_t size)
{
    char role[32] = "", view[32] = "?";
    cli_info_field(text, len, "role:", role, sizeof(role));
    cli_info_field(text, len, "view:", view, sizeof(view));
    if (!strcmp(role, "backup"))
        backup_state(text, len, out, size);
    else if (!strcmp(role, "primary"))
        primary_state(text, len, view, out, size);
    else if (!strcmp(role, "view_change"))
        snprintf(out, size,
                 "in a view change (no primary until a majority "
                 "of voters agrees on one)");
    else
        snprintf(out, size, "%s", role[0] ? role : "unknown");
}

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
    char state[512];
    state_line(c.nodes[0].str, c.nodes[0].len, state, sizeof(state));
    printf("cohort status of %s\nstate: %s\n%.*s", addr, state,
           (int)c.nodes[0].len, c.nodes[0].str);
    cli_rpc_close(&c);
    return 0;
}
