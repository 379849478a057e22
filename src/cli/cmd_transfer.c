/* cli/cmd_transfer — `cohort transfer [--cluster H:P] [--timeout S] ID`:
 * hand the primary role to replica ID (a leadership transfer, see
 * docs/PROTOCOL.md and src/server/cmd_transfer.c): find the primary, send
 * COHORT.TRANSFER, then watch the old primary's INFO replication until it
 * follows replica ID in the view the transfer named, and say so in one
 * line with the time it took. A refusal that says "try again" (a target
 * briefly unheard or behind, a view change under way) is retried until
 * --timeout; any other (unknown id, the primary itself), or the last one
 * at the timeout, is the server's one-line error. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/rpc.h"

#define INFO_SIZE_MAX (64u * 1024u)

struct transfer_cli {
    const char *cluster;
    uint64_t timeout_ms;
    uint64_t target;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cohort transfer [--cluster host:port] [--timeout S] ID\n"
            "Hand the primary role to replica ID (a caught-up backup) without "
            "a\nview-change timeout; waits until ID leads the new view "
            "(retrying while ID is\nbehind or briefly unheard).\n"
            "  --cluster host:port  any member's client address (default "
            "127.0.0.1:7001)\n"
            "  --timeout S          give up waiting after S seconds (default "
            "10)\n");
}

static int parse(struct transfer_cli *t, int argc, char **argv)
{
    bool have_id = false;
    struct cli_flag_seen seen = {.count = 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 1;
        }
        bool valued = !strcmp(a, "--cluster") || !strcmp(a, "--timeout");
        if (valued && i + 1 == argc)
            return cli_flag_needs_value("transfer", a + 2);
        if (valued && cli_flag_once("transfer", &seen, a + 2, argv[i + 1]))
            return 2;
        if (!strcmp(a, "--cluster")) {
            t->cluster = argv[++i];
            if (cli_flag_address("transfer", t->cluster))
                return 2;
        } else if (!strcmp(a, "--timeout")) {
            uint64_t s;
            if (cli_flag_u64("transfer", "timeout", argv[++i], 1, 3600, &s))
                return 2;
            t->timeout_ms = s * 1000u;
        } else if (a[0] == '-') {
            return cli_flag_unknown("transfer", a);
        } else if (!have_id && cli_decimal_u64(a, &t->target)) {
            have_id = true;
        } else {
            fprintf(stderr,
                    "cohort transfer: unexpected '%s'; see 'cohort transfer "
                    "--help'\n",
                    a);
            return 2;
        }
    }
    if (!have_id) {
        fprintf(stderr, "cohort transfer: which replica? give its id (see "
                        "cohort status); see 'cohort transfer --help'\n");
        return 2;
    }
    return 0;
}

struct view_seen {
    uint64_t view;
    uint64_t primary;
    char role[32];
};

static int read_view(struct cli_rpc *c, struct view_seen *v,
                     struct cohort_err *err)
{
    const char *text;
    size_t len;
    int rc = cli_rpc_info(c, "replication", &text, &len, err);
    if (rc != 0)
        return rc;
    char view[32] = "", primary[32] = "";
    v->role[0] = '\0';
    cli_info_field(text, len, "role:", v->role, sizeof(v->role));
    if (!cli_info_field(text, len, "view:", view, sizeof(view)) ||
        !cli_decimal_u64(view, &v->view))
        return err_set(err, -COHORT_EPROTO, "%s: INFO has no view", c->addr);
    if (!cli_info_field(text, len, "primary_index:", primary,
                        sizeof(primary)) ||
        !cli_decimal_u64(primary, &v->primary))
        v->primary = UINT64_MAX;
    return 0;
}

/* Watch the old primary until it follows target in new_view (or later). */
static int wait_handover(struct cli_rpc *c, const struct transfer_cli *t,
                         uint64_t new_view, uint64_t started,
                         struct cohort_err *err)
{
    struct view_seen v = {0};
    while (cli_monotonic_ms() - started < t->timeout_ms) {
        int rc = read_view(c, &v, err);
        if (rc != 0)
            return rc;
        if (v.view >= new_view && v.primary == t->target &&
            !strcmp(v.role, "backup"))
            return 0;
        if (v.view > new_view && v.primary != t->target)
            return err_set(err, -COHORT_EAGAIN,
                           "another view change intervened: view %" PRIu64
                           " is led by replica %" PRIu64 "; try again",
                           v.view, v.primary);
        cli_pause_ms(2);
    }
    return err_set(err, -COHORT_EAGAIN,
                   "replica %" PRIu64 " did not take over within %" PRIu64
                   " s (now view %" PRIu64 ", role %s here); the target did "
                   "not catch up in time or a view change intervened: see "
                   "cohort status %s",
                   t->target, t->timeout_ms / 1000, v.view, v.role, t->cluster);
}

/* Ask the primary for the transfer until it is accepted (0, *new_view set)
 * or refused for good (1, the refusal printed), retrying refusals that say
 * "try again" (a target briefly unheard or behind, a view change under
 * way) until the timeout; then the last refusal is the answer. On
 * success c is the connection to the primary that accepted, before is
 * what it said of the view. */
static int ask_transfer(struct cli_rpc *c, const struct transfer_cli *t,
                        uint64_t started, struct view_seen *before,
                        uint64_t *new_view, struct cohort_err *err)
{
    char id[24];
    snprintf(id, sizeof(id), "%" PRIu64, t->target);
    struct resp_arg cmd[] = {{"COHORT.TRANSFER", 15}, {id, strlen(id)}};
    for (;;) {
        int rc = cli_rpc_open_primary(c, t->cluster, INFO_SIZE_MAX, err);
        if (rc != 0)
            return rc;
        if ((rc = read_view(c, before, err)) != 0 ||
            (rc = cli_rpc_call(c, 2, cmd, err)) != 0) {
            cli_rpc_close(c);
            return rc;
        }
        const struct resp_node *n = &c->nodes[0];
        if (n->type == RESP_TYPE_INTEGER && n->integer >= 0) {
            *new_view = (uint64_t)n->integer;
            return 0;
        }
        if (n->type != RESP_TYPE_ERROR) {
            rc = err_set(err, -COHORT_EPROTO, "%s: unexpected reply", c->addr);
            cli_rpc_close(c);
            return rc;
        }
        if (!cli_transfer_retryable(n->str, n->len) ||
            cli_monotonic_ms() - started >= t->timeout_ms) {
            size_t skip = n->len > 4 && !memcmp(n->str, "ERR ", 4) ? 4 : 0;
            fprintf(stderr, "cohort transfer: %.*s\n", (int)(n->len - skip),
                    n->str + skip);
            cli_rpc_close(c);
            return 1;
        }
        cli_rpc_close(c);
        cli_pause_ms(50);
    }
}

int cmd_transfer(int argc, char **argv)
{
    struct transfer_cli t = {.cluster = "127.0.0.1:7001", .timeout_ms = 10000};
    int rc = parse(&t, argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    struct cohort_err err;
    err_clear(&err);
    struct cli_rpc c;
    struct view_seen before = {0};
    uint64_t new_view = 0, started = cli_monotonic_ms();
    rc = ask_transfer(&c, &t, started, &before, &new_view, &err);
    if (rc == 1)
        return 1;
    if (rc != 0) {
        fprintf(stderr, "cohort transfer: %s\n", err.message);
        return 1;
    }
    if (wait_handover(&c, &t, new_view, started, &err) != 0) {
        fprintf(stderr, "cohort transfer: %s\n", err.message);
        cli_rpc_close(&c);
        return 1;
    }
    printf("replica %" PRIu64 " is the primary of view %" PRIu64
           " (was replica %" PRIu64 ", view %" PRIu64 "); took %" PRIu64
           " ms\n",
           t.target, new_view, before.primary, before.view,
           cli_monotonic_ms() - started);
    cli_rpc_close(&c);
    return 0;
}
