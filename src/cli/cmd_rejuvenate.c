/* cli/cmd_rejuvenate — `cohort rejuvenate [--cluster H:P] [--timeout S]
 * [--max-lag N]`: restart every replica in turn (a rolling restart, for an
 * upgrade or as proactive rejuvenation) without the clients seeing it.
 *
 * Before anything changes, every member must be up: the primary hears it
 * (health ok) and it answers on its client address. Then the backups go
 * one at a time, by id, and the primary last, after a leadership transfer
 * (COHORT.TRANSFER) to a caught-up backup. A restart is COHORT.REJUVENATE on
 * the member (server/cmd_rejuvenate.c: it stops and re-executes its binary,
 * runtime/reexec); the next one goes only when the restarted member
 * answers with a new run_id (a new process image), is a backup of the
 * primary's view, the primary hears it, and its commit point is within
 * --max-lag ops of the primary's. One line per step, one at the end; a
 * failure is one line naming the member and the fix, and stops there. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/rpc.h"
#include "cohort.h"

#define INFO_SIZE_MAX (64u * 1024u)
#define FIELD_MAX 256u

struct rejuv {
    const char *cluster;
    uint64_t timeout_ms; /* per step */
    uint64_t max_lag;
    uint32_t count;
    uint32_t primary;
    uint32_t step; /* restarts begun */
    char addr[COHORT_REPLICAS_MAX][FIELD_MAX];
    char run_id[COHORT_REPLICAS_MAX][40];
    /* Outside the epoch's membership (spares, removed): left alone. */
    bool outside[COHORT_REPLICAS_MAX];
    bool learner[COHORT_REPLICAS_MAX];
};

static int usage(int code)
{
    fprintf(code ? stderr : stdout,
            "usage: cohort rejuvenate [--cluster host:port] [--timeout S] "
            "[--max-lag N]\n"
            "Restart every replica in turn (backups first, then the primary "
            "after a\nleadership transfer); each re-executes its binary, so "
            "an upgraded binary\nis picked up. Waits for each to be back and "
            "caught up before the next.\n"
            "  --cluster host:port  any member's client address (default "
            "127.0.0.1:7001)\n"
            "  --timeout S          give up waiting for one step after S "
            "seconds (default 60)\n"
            "  --max-lag N          caught up: within N ops of the primary "
            "(default 1000)\n");
    return code;
}

static int parse(struct rejuv *r, int argc, char **argv)
{
    struct cli_flag_seen seen = {.count = 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        uint64_t v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return usage(0) + 1;
        bool valued = !strcmp(a, "--cluster") || !strcmp(a, "--timeout") ||
                      !strcmp(a, "--max-lag");
        if (valued && i + 1 == argc)
            return cli_flag_needs_value("rejuvenate", a + 2);
        if (valued && cli_flag_once("rejuvenate", &seen, a + 2, argv[i + 1]))
            return 2;
        if (!strcmp(a, "--cluster")) {
            r->cluster = argv[++i];
            if (cli_flag_address("rejuvenate", r->cluster))
                return 2;
        } else if (!strcmp(a, "--timeout")) {
            if (cli_flag_u64("rejuvenate", "timeout", argv[++i], 1, 3600, &v))
                return 2;
            r->timeout_ms = v * 1000u;
        } else if (!strcmp(a, "--max-lag")) {
            if (cli_flag_u64("rejuvenate", "max-lag", argv[++i], 0, UINT64_MAX,
                             &v))
                return 2;
            r->max_lag = v;
        } else {
            return cli_flag_unknown("rejuvenate", a);
        }
    }
    return 0;
}

/* INFO <section> of c into text (capacity size). */
static int info_text(struct cli_rpc *c, const char *section, char *text,
                     size_t size, struct cohort_err *err)
{
    struct resp_arg info[] = {{"INFO", 4}, {section, strlen(section)}};
    int rc = cli_rpc_expect(c, 2, info, RESP_TYPE_BULK, err);
    if (rc != 0)
        return rc;
    size_t n = c->nodes[0].len < size - 1 ? c->nodes[0].len : size - 1;
    memcpy(text, c->nodes[0].str, n);
    text[n] = '\0';
    return 0;
}

static uint64_t field_u64(const char *text, const char *name)
{
    char v[32];
    uint64_t out = 0;
    if (cli_info_field(text, strlen(text), name, v, sizeof(v)))
        (void)cli_decimal_u64(v, &out);
    return out;
}

/* Member i's line in the primary's INFO replication text. */
static bool member_line(const char *text, uint32_t i, char *line, size_t size)
{
    char name[24];
    snprintf(name, sizeof(name), "member%" PRIu32 ":", i);
    return cli_info_field(text, strlen(text), name, line, size);
}

/* A member's own INFO: run_id, role, view, commit_op. */
struct member_view {
    char run_id[40];
    char role[32];
    uint64_t view;
    uint64_t commit;
};

static int ask_member(const char *addr, struct member_view *m,
                      struct cohort_err *err)
{
    static char text[INFO_SIZE_MAX];
    struct cli_rpc c;
    int rc = cli_rpc_open_member(&c, addr, INFO_SIZE_MAX, err);
    if (rc != 0)
        return rc;
    rc = info_text(&c, "server", text, sizeof(text), err);
    if (rc == 0)
        cli_info_field(text, strlen(text), "run_id:", m->run_id,
                       sizeof(m->run_id));
    if (rc == 0)
        rc = info_text(&c, "replication", text, sizeof(text), err);
    if (rc == 0) {
        cli_info_field(text, strlen(text), "role:", m->role, sizeof(m->role));
        m->view = field_u64(text, "view:");
        m->commit = field_u64(text, "commit_op:");
    }
    cli_rpc_close(&c);
    return rc;
}

/* The primary's INFO replication into text; r->primary from it. */
static int ask_primary(struct rejuv *r, char *text, size_t size,
                       struct cohort_err *err)
{
    struct cli_rpc c;
    int rc = cli_rpc_open_primary(&c, r->cluster, INFO_SIZE_MAX, err);
    if (rc != 0)
        return rc;
    rc = info_text(&c, "replication", text, size, err);
    cli_rpc_close(&c);
    if (rc == 0)
        r->primary = (uint32_t)field_u64(text, "primary_index:");
    return rc;
}

/* Every member up and caught up, as the primary sees it and as it answers
 * itself; their addresses and run ids into r. Changes nothing. */
static int check_all_up(struct rejuv *r, char *text, size_t size,
                        struct cohort_err *err)
{
    int rc = ask_primary(r, text, size, err);
    if (rc != 0) {
        char why[sizeof(err->message)];
        snprintf(why, sizeof(why), "%s", err->message);
        if (rc == -COHORT_EAGAIN) /* "no primary reachable": fix included */
            return err_set(err, rc, "%s; nothing was restarted", why);
        return err_set(err, rc,
                       "%s; is the cluster running (cohort status %s)? "
                       "nothing was restarted",
                       why, r->cluster);
    }
    r->count = (uint32_t)field_u64(text, "members:");
    if (r->count > COHORT_REPLICAS_MAX || r->primary >= r->count)
        return err_set(err, -COHORT_EPROTO,
                       "%s: INFO replication names no primary among its "
                       "members",
                       r->cluster);
    if (r->count < 2)
        return err_set(err, -COHORT_EINVAL,
                       "a group of one replica cannot restart without "
                       "downtime: restart it by hand (or grow the group)");
    for (uint32_t i = 0; i < r->count; i++) {
        char line[FIELD_MAX * 2], health[32], lag[32], role[32];
        if (!member_line(text, i, line, sizeof(line)))
            return err_set(err, -COHORT_EPROTO, "INFO has no member%" PRIu32,
                           i);
        cli_list_field(line, "addr", r->addr[i], sizeof(r->addr[i]));
        cli_list_field(line, "role", role, sizeof(role));
        r->outside[i] = !strcmp(role, "outside");
        r->learner[i] = !strcmp(role, "learner");
        if (r->outside[i])
            continue;
        cli_list_field(line, "health", health, sizeof(health));
        cli_list_field(line, "lag", lag, sizeof(lag));
        uint64_t behind = 0;
        if (i != r->primary && strcmp(health, "ok"))
            return err_set(err, -COHORT_EAGAIN,
                           "replica %" PRIu32 " at %s is %s as the primary "
                           "sees it: start it (or wait for it) and try "
                           "again; nothing was restarted",
                           i, r->addr[i], health[0] ? health : "unknown");
        if (i != r->primary && cli_decimal_u64(lag, &behind) &&
            behind > r->max_lag)
            return err_set(err, -COHORT_EAGAIN,
                           "replica %" PRIu32 " at %s is %" PRIu64
                           " ops behind (--max-lag %" PRIu64 "): wait for it "
                           "to catch up and try again; nothing was restarted",
                           i, r->addr[i], behind, r->max_lag);
        struct member_view m = {0};
        struct cohort_err why;
        if (ask_member(r->addr[i], &m, &why) != 0)
            return err_set(err, -COHORT_EAGAIN,
                           "replica %" PRIu32 " does not answer (%s): start "
                           "it and try again; nothing was restarted",
                           i, why.message);
        snprintf(r->run_id[i], sizeof(r->run_id[i]), "%s", m.run_id);
    }
    return 0;
}

/* COHORT.REJUVENATE on member i: +OK, or the connection closing under it
 * (the restart beat the reply), is a restart under way. */
static int restart_member(struct rejuv *r, uint32_t i, struct cohort_err *err)
{
    struct cli_rpc c;
    int rc = cli_rpc_open_member(&c, r->addr[i], INFO_SIZE_MAX, err);
    if (rc != 0)
        return rc;
    struct resp_arg cmd[] = {{"COHORT.REJUVENATE", 17}};
    rc = cli_rpc_call(&c, 1, cmd, err);
    if (rc == 0 && c.nodes[0].type == RESP_TYPE_ERROR) {
        const struct resp_node *n = &c.nodes[0];
        size_t skip = n->len > 4 && !memcmp(n->str, "ERR ", 4) ? 4 : 0;
        rc = err_set(err, -COHORT_EAGAIN, "replica %" PRIu32 " at %s: %.*s", i,
                     r->addr[i], (int)(n->len - skip), n->str + skip);
    } else if (rc != 0 && rc == -COHORT_EIO) {
        rc = 0; /* closed: it is restarting; its run_id will tell */
    }
    cli_rpc_close(&c);
    return rc;
}

/* Tell every member that answers what this rolling restart is doing
 * (COHORT.REJUVENATE PROGRESS: INFO replication's rejuvenation_progress);
 * "DONE" clears it. A member that does not answer (restarting) hears the
 * next note. */
static void note_progress(const struct rejuv *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void note_progress(const struct rejuv *r, const char *fmt, ...)
{
    char note[120];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(note, sizeof(note), fmt, ap);
    va_end(ap);
    struct resp_arg cmd[] = {
        {"COHORT.REJUVENATE", 17}, {"PROGRESS", 8}, {note, strlen(note)}};
    for (uint32_t j = 0; j < r->count; j++) {
        struct cli_rpc c;
        struct cohort_err err;
        if (cli_rpc_open_member(&c, r->addr[j], 4096, &err) != 0)
            continue;
        (void)cli_rpc_call(&c, 3, cmd, &err);
        cli_rpc_close(&c);
    }
}

/* Whether every member's peer link to every other member is up (INFO
 * replication's member<k> link=up, as each member reports it). A member
 * reconnects to a restarted peer with a backoff: until it has, it could
 * not lead (after a transfer) or ack with that peer, so the next restart
 * waits for it. *which names the first member and link down. */
static bool all_links_up(const struct rejuv *r, char *which, size_t size)
{
    static char text[INFO_SIZE_MAX];
    for (uint32_t j = 0; j < r->count; j++) {
        struct cli_rpc c;
        struct cohort_err err;
        if (r->outside[j])
            continue;
        if (cli_rpc_open_member(&c, r->addr[j], INFO_SIZE_MAX, &err) != 0) {
            snprintf(which, size, "replica %" PRIu32 " does not answer", j);
            return false;
        }
        int rc = info_text(&c, "replication", text, sizeof(text), &err);
        cli_rpc_close(&c);
        if (rc != 0)
            return false;
        for (uint32_t k = 0; k < r->count; k++) {
            char line[FIELD_MAX * 2], link[16];
            if (k == j || r->outside[k] ||
                !member_line(text, k, line, sizeof(line)))
                continue;
            cli_list_field(line, "link", link, sizeof(link));
            if (strcmp(link, "up")) {
                snprintf(which, size,
                         "replica %" PRIu32 " has no link to replica %" PRIu32,
                         j, k);
                return false;
            }
        }
    }
    return true;
}

/* Wait until member i answers as a new process image, a backup of the
 * primary's view that the primary hears, within max_lag of its commit. */
static int wait_back(struct rejuv *r, uint32_t i, const char *old_run_id,
                     uint64_t started, bool *primary_out, uint64_t *lag_out,
                     uint64_t *view_out, struct cohort_err *err)
{
    static char text[INFO_SIZE_MAX];
    static char links[128];
    const char *why = "it did not answer";
    while (cli_monotonic_ms() - started < r->timeout_ms) {
        cli_pause_ms(20);
        struct member_view m = {0};
        if (ask_member(r->addr[i], &m, err) != 0)
            continue;
        if (!strcmp(m.run_id, old_run_id)) {
            why = "the old process still answers";
            continue;
        }
        /* A backup; or the primary, if a view change elected it since. */
        why = "it is not yet a backup of the primary's view";
        bool primary = !strcmp(m.role, "primary");
        if ((!primary && strcmp(m.role, "backup")) ||
            ask_primary(r, text, sizeof(text), err))
            continue;
        char line[FIELD_MAX * 2], health[32];
        if (!member_line(text, i, line, sizeof(line)))
            continue;
        cli_list_field(line, "health", health, sizeof(health));
        uint64_t commit = field_u64(text, "commit_op:");
        uint64_t lag = commit > m.commit ? commit - m.commit : 0;
        if (m.view != field_u64(text, "view:") ||
            strcmp(health, primary ? "self" : "ok"))
            continue;
        why = "it has not caught up";
        if (lag > r->max_lag)
            continue;
        if (!all_links_up(r, links, sizeof(links))) {
            why = links;
            continue;
        }
        snprintf(r->run_id[i], sizeof(r->run_id[i]), "%s", m.run_id);
        *primary_out = primary;
        *lag_out = lag;
        *view_out = m.view;
        return 0;
    }
    return err_set(err, -COHORT_EAGAIN,
                   "replica %" PRIu32 " at %s did not come back within %" PRIu64
                   " s (%s): see its log and cohort members %s; the replicas "
                   "not yet restarted were left alone",
                   i, r->addr[i], r->timeout_ms / 1000, why, r->cluster);
}

static int restart_step(struct rejuv *r, uint32_t i, struct cohort_err *err)
{
    char old[40];
    snprintf(old, sizeof(old), "%s", r->run_id[i]);
    uint64_t started = cli_monotonic_ms(), lag = 0, view = 0;
    bool primary = false;
    note_progress(r,
                  "restarting replica %" PRIu32 " (%" PRIu32 " of %" PRIu32 ")",
                  i, ++r->step, r->count);
    int rc = restart_member(r, i, err);
    if (rc == 0)
        rc = wait_back(r, i, old, started, &primary, &lag, &view, err);
    if (rc != 0)
        return rc;
    printf("replica %" PRIu32 " (%s): restarted (run_id %s -> %s), back as %s "
           "of view %" PRIu64 ", %" PRIu64 " ops behind; took %" PRIu64 " ms\n",
           i, r->addr[i], old, r->run_id[i],
           primary ? "the primary (a view change elected it)" : "a backup",
           view, lag, cli_monotonic_ms() - started);
    fflush(stdout);
    return 0;
}

/* Hand the primary role to target; wait until target leads. */
static int transfer_to(struct rejuv *r, uint32_t target, uint64_t *view_out,
                       struct cohort_err *err)
{
    static char text[INFO_SIZE_MAX];
    uint64_t started = cli_monotonic_ms();
    char id[16];
    snprintf(id, sizeof(id), "%" PRIu32, target);
    struct resp_arg cmd[] = {{"COHORT.TRANSFER", 15}, {id, strlen(id)}};
    while (cli_monotonic_ms() - started < r->timeout_ms) {
        if (ask_primary(r, text, sizeof(text), err) == 0 &&
            r->primary == target) {
            *view_out = field_u64(text, "view:");
            return 0;
        }
        struct cli_rpc c;
        if (cli_rpc_open_primary(&c, r->cluster, INFO_SIZE_MAX, err) != 0) {
            cli_pause_ms(50);
            continue;
        }
        int rc = cli_rpc_call(&c, 2, cmd, err);
        bool refused = rc == 0 && c.nodes[0].type == RESP_TYPE_ERROR;
        if (refused &&
            !cli_transfer_retryable(c.nodes[0].str, c.nodes[0].len)) {
            rc = err_set(err, -COHORT_EAGAIN,
                         "transfer to replica %" PRIu32 " refused: %.*s",
                         target, (int)c.nodes[0].len, c.nodes[0].str);
            cli_rpc_close(&c);
            return rc;
        }
        cli_rpc_close(&c);
        cli_pause_ms(refused || rc != 0 ? 50 : 20);
    }
    return err_set(err, -COHORT_EAGAIN,
                   "replica %" PRIu32 " did not take over the primary role "
                   "within %" PRIu64 " s; see cohort members %s",
                   target, r->timeout_ms / 1000, r->cluster);
}

/* The restarted backup the primary sees least behind (lowest id on ties);
 * any other backup if none was restarted yet. */
static uint32_t pick_target(const struct rejuv *r, const char *text,
                            const bool *done)
{
    uint32_t best = UINT32_MAX;
    uint64_t best_lag = UINT64_MAX;
    for (int pass = 0; pass < 2 && best == UINT32_MAX; pass++)
        for (uint32_t i = 0; i < r->count; i++) {
            char line[FIELD_MAX * 2], lag[32];
            uint64_t behind = UINT64_MAX - 1;
            if (i == r->primary || r->outside[i] || r->learner[i] ||
                (pass == 0 && !done[i]))
                continue;
            if (member_line(text, i, line, sizeof(line))) {
                cli_list_field(line, "lag", lag, sizeof(lag));
                (void)cli_decimal_u64(lag, &behind);
            }
            if (behind < best_lag) {
                best = i;
                best_lag = behind;
            }
        }
    return best;
}

/* Restart the next member not yet done: a backup if one is left, else the
 * primary after a transfer. */
static int next_step(struct rejuv *r, bool *done, struct cohort_err *err)
{
    static char text[INFO_SIZE_MAX];
    int rc = ask_primary(r, text, sizeof(text), err);
    if (rc != 0)
        return rc;
    for (uint32_t i = 0; i < r->count; i++)
        if (!done[i] && i != r->primary && !r->outside[i]) {
            done[i] = true;
            return restart_step(r, i, err);
        }
    uint32_t old = r->primary, target = pick_target(r, text, done);
    uint64_t view = 0, started = cli_monotonic_ms();
    if (target == UINT32_MAX)
        return err_set(err, -COHORT_EPROTO, "no backup to take over");
    note_progress(r,
                  "handing the primary role from replica %" PRIu32
                  " to replica %" PRIu32,
                  old, target);
    rc = transfer_to(r, target, &view, err);
    if (rc != 0)
        return rc;
    printf("replica %" PRIu32 " (%s): handed the primary role to replica "
           "%" PRIu32 " (view %" PRIu64 "); took %" PRIu64 " ms\n",
           old, r->addr[old], target, view, cli_monotonic_ms() - started);
    fflush(stdout);
    done[old] = true;
    return restart_step(r, old, err);
}

int cmd_rejuvenate(int argc, char **argv)
{
    static char text[INFO_SIZE_MAX];
    static struct rejuv r = {0};
    r.cluster = "127.0.0.1:7001";
    r.timeout_ms = 60000;
    r.max_lag = 1000;
    int rc = parse(&r, argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    struct cohort_err err;
    err_clear(&err);
    if (check_all_up(&r, text, sizeof(text), &err) != 0) {
        fprintf(stderr, "cohort rejuvenate: %s\n", err.message);
        return 1;
    }
    uint64_t started = cli_monotonic_ms();
    uint32_t members = 0;
    for (uint32_t k = 0; k < r.count; k++)
        members += !r.outside[k];
    printf("rejuvenating %" PRIu32 " replicas: backups first, then replica "
           "%" PRIu32 ", the primary, after a transfer\n",
           members, r.primary);
    fflush(stdout);
    bool done[COHORT_REPLICAS_MAX] = {false};
    for (uint32_t k = 0; k < members; k++)
        if (next_step(&r, done, &err) != 0) {
            fprintf(stderr, "cohort rejuvenate: %s\n", err.message);
            note_progress(&r, "DONE");
            return 1;
        }
    note_progress(&r, "DONE");
    if (ask_primary(&r, text, sizeof(text), &err) != 0) {
        fprintf(stderr, "cohort rejuvenate: %s\n", err.message);
        return 1;
    }
    printf("rejuvenated %" PRIu32 " replicas in %.1f s; replica %" PRIu32
           " is the primary of view %" PRIu64 "\n",
           members, (double)(cli_monotonic_ms() - started) / 1000.0, r.primary,
           field_u64(text, "view:"));
    return 0;
}
