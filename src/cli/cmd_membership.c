/* cli/cmd_membership — `cohort add`, `cohort remove`, `cohort replace`:
 * change the group's membership through COHORT.RECONFIG on the primary
 * (server/cmd_reconfig.c; the rule is docs/PROTOCOL.md "Epochs").
 *
 *   cohort add [--cluster H:P] (ID | --peer H:P | --client H:P) [--learner]
 *   cohort remove [--cluster H:P] ID
 *   cohort replace [--cluster H:P] OLD (NEW | --peer H:P | --client H:P)
 *
 * A member is named by its id in the group's --peers universe, or by its
 * addresses. Both --peer and --client at addresses no id has name a new
 * machine: the lowest id outside the membership is moved there first
 * (COHORT.ADDRESS, server/cmd_address.c), and the line to start it with is
 * printed; the add then waits for it to catch up. A new voter first joins as a
 * learner and is brought up to date by the primary (log, or snapshot plus log);
 * only once its lag is within --max-lag ops does a second epoch make it a
 * voter, so the group never counts on a member that is still catching up. Each
 * change is a compare-and-set on the epoch it was computed from, keeps the
 * current primary first among the voters (it leads the new epoch: no leader
 * change unless it is the one leaving), and is waited for until committed. One
 * line per step, one at the end; bad input is one line that changes
 * nothing. A primary that hears from fewer than a majority of the voters
 * (it commits nothing) is refused in one line before anything is proposed,
 * by the rule cohort status states (cli_info_lacks_majority); one that
 * loses its majority later, while a step commits or a learner catches up,
 * stops the command in one line that names the step reached (the learner
 * state is where running it again picks up), not at --timeout. */
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
#include "common/membership.h"

#define INFO_SIZE_MAX (64u * 1024u)
#define FIELD_MAX 256u

enum change { CHANGE_ADD, CHANGE_REMOVE, CHANGE_REPLACE };

struct membership_cli {
    enum change change;
    const char *name; /* "add", "remove", "replace" */
    const char *cluster;
    uint64_t timeout_ms;
    uint64_t max_lag;
    bool learner;
    bool have_id, have_new;
    uint64_t id;     /* add/remove: the member; replace: the old one */
    uint64_t new_id; /* replace: the new one */
    const char *peer, *client; /* the member named by address instead */
};

/* The group as the primary's INFO replication shows it. */
struct group {
    struct membership m; /* m.epoch: the epoch */
    uint64_t view;
    uint32_t primary, count;
    bool primary_view; /* op and lag known (the primary in a normal view) */
    char client[COHORT_REPLICAS_MAX][FIELD_MAX];
    char peer[COHORT_REPLICAS_MAX][FIELD_MAX];
    char health[COHORT_REPLICAS_MAX][32];
    bool link_up[COHORT_REPLICAS_MAX]; /* the primary's connection to it */
    uint64_t lag[COHORT_REPLICAS_MAX];
    uint64_t op[COHORT_REPLICAS_MAX]; /* acknowledged, as the primary saw */
    /* Fewer voters than a majority heard (cli_info_lacks_majority). */
    bool lacks_majority;
    struct cli_majority majority;
};

static void usage(FILE *out, const char *name)
{
    if (!strcmp(name, "add"))
        fprintf(out, "usage: cohort add [--cluster H:P] (ID | --peer H:P | "
                     "--client H:P) [--learner]\n"
                     "Add a replica to the membership: as a learner, then, "
                     "once caught up, as a\nvoter (with --learner it stays a "
                     "learner). --peer and --client both at\naddresses no "
                     "replica has: a new machine; an id outside the "
                     "membership moves\nthere first (COHORT.ADDRESS), and "
                     "the command prints how to start it.\n");
    else if (!strcmp(name, "remove"))
        fprintf(out, "usage: cohort remove [--cluster H:P] ID\n"
                     "Take replica ID out of the membership; it stops taking "
                     "part and says so in its log.\n");
    else
        fprintf(out, "usage: cohort replace [--cluster H:P] OLD (NEW | --peer "
                     "H:P | --client H:P)\n"
                     "Bring NEW up to date as a learner, then make it a voter "
                     "in OLD's place; OLD\nleaves the membership. NEW at "
                     "new --peer and --client addresses: as for add.\n");
    fprintf(out,
            "  --cluster H:P  any member's client address (default "
            "127.0.0.1:7001)\n"
            "  --timeout S    give up after S seconds (default 120)\n"
            "  --max-lag N    a learner becomes a voter within N ops of the "
            "commit point\n                 (default 1000)\n");
}

__attribute__((format(printf, 2, 3))) static int
fail_usage(const struct membership_cli *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cohort %s: ", m->name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "; see 'cohort %s --help'\n", m->name);
    va_end(ap);
    return 2;
}

/* The flags of m's command that take a value. */
static bool takes_value(const struct membership_cli *m, const char *a)
{
    return !strcmp(a, "--cluster") || !strcmp(a, "--timeout") ||
           !strcmp(a, "--max-lag") ||
           (m->change != CHANGE_REMOVE &&
            (!strcmp(a, "--peer") || !strcmp(a, "--client")));
}

static int parse(struct membership_cli *m, int argc, char **argv)
{
    struct cli_flag_seen seen = {.count = 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        uint64_t v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout, m->name);
            return 1;
        }
        if (takes_value(m, a) && i + 1 == argc)
            return cli_flag_needs_value(m->name, a + 2);
        if (takes_value(m, a) &&
            cli_flag_once(m->name, &seen, a + 2, argv[i + 1]))
            return 2;
        if (!strcmp(a, "--cluster")) {
            m->cluster = argv[++i];
            if (cli_flag_address(m->name, m->cluster))
                return 2;
        } else if (!strcmp(a, "--timeout")) {
            if (cli_flag_u64(m->name, "timeout", argv[++i], 1, 86400, &v))
                return 2;
            m->timeout_ms = v * 1000u;
        } else if (!strcmp(a, "--max-lag")) {
            if (cli_flag_u64(m->name, "max-lag", argv[++i], 0, 1000000000, &v))
                return 2;
            m->max_lag = v;
        } else if (!strcmp(a, "--learner") && m->change == CHANGE_ADD) {
            m->learner = true;
        } else if (takes_value(m, a)) { /* --peer, --client */
            *(!strcmp(a, "--peer") ? &m->peer : &m->client) = argv[++i];
            if (cli_flag_address(m->name, argv[i]))
                return 2;
        } else if (a[0] == '-') {
            return cli_flag_unknown(m->name, a);
        } else if (!m->have_id && cli_decimal_u64(a, &v)) {
            m->id = v;
            m->have_id = true;
        } else if (m->change == CHANGE_REPLACE && !m->have_new &&
                   cli_decimal_u64(a, &v)) {
            m->new_id = v;
            m->have_new = true;
        } else {
            return fail_usage(m, "unexpected '%s'", a);
        }
    }
    bool by_addr = m->peer != NULL || m->client != NULL;
    switch (m->change) {
    case CHANGE_ADD:
        if (m->have_id == by_addr)
            return fail_usage(m, "name the replica to add: its id, or its "
                                 "--peer or --client address");
        break;
    case CHANGE_REMOVE:
        if (!m->have_id)
            return fail_usage(m, "which replica? give its id (see cohort "
                                 "members)");
        break;
    case CHANGE_REPLACE:
        if (!m->have_id || m->have_new == by_addr)
            return fail_usage(m, "give the replica to replace (its id) and "
                                 "the new one (its id, or its --peer or "
                                 "--client address)");
        break;
    }
    return 0;
}

/* "0+1+2" into ids; false on anything else. */
static bool id_list(const char *text, uint32_t *ids, uint32_t *count)
{
    *count = 0;
    if (text[0] == '\0')
        return true;
    for (const char *p = text;;) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(p, &end, 10);
        if (errno || end == p || v >= COHORT_REPLICAS_MAX ||
            *count == COHORT_REPLICAS_MAX)
            return false;
        ids[(*count)++] = (uint32_t)v;
        if (*end == '\0')
            return true;
        if (*end != '+')
            return false;
        p = end + 1;
    }
}

static int read_group(struct cli_rpc *c, struct group *g,
                      struct cohort_err *err)
{
    const char *text;
    size_t len;
    int rc = cli_rpc_info(c, "replication", &text, &len, err);
    if (rc != 0)
        return rc;
    memset(g, 0, sizeof(*g));
    char value[FIELD_MAX], list[FIELD_MAX], role[32] = "";
    uint64_t v;
    char head[32];
    if (cli_info_field(text, len, "epoch:", value, sizeof(value)))
        snprintf(head, sizeof(head), "%.*s", (int)strcspn(value, ","), value);
    else
        head[0] = '\0';
    if (!cli_decimal_u64(head, &v) || v > UINT32_MAX)
        return err_set(err, -COHORT_EPROTO,
                       "%s: INFO has no epoch line (a server older than "
                       "this cohort? upgrade it first)",
                       c->addr);
    g->m.epoch = (uint32_t)v;
    cli_list_field(value, "voters", list, sizeof(list));
    if (!id_list(list, g->m.voters, &g->m.voter_count) || g->m.voter_count == 0)
        return err_set(err, -COHORT_EPROTO, "%s: INFO's epoch line is %s",
                       c->addr, value);
    if (cli_info_field(text, len, "learners:", value, sizeof(value))) {
        cli_list_field(value, "ids", list, sizeof(list));
        if (!id_list(list, g->m.learners, &g->m.learner_count))
            return err_set(err, -COHORT_EPROTO,
                           "%s: INFO's learners line is %s", c->addr, value);
    }
    if (cli_info_field(text, len, "view:", value, sizeof(value)))
        cli_decimal_u64(value, &g->view);
    g->primary = UINT32_MAX;
    if (cli_info_field(text, len, "primary_index:", value, sizeof(value)) &&
        cli_decimal_u64(value, &v) && v < COHORT_REPLICAS_MAX)
        g->primary = (uint32_t)v;
    cli_info_field(text, len, "role:", role, sizeof(role));
    g->primary_view = !strcmp(role, "primary");
    g->lacks_majority = cli_info_lacks_majority(text, len, true, &g->majority);
    if (cli_info_field(text, len, "members:", value, sizeof(value)) &&
        cli_decimal_u64(value, &v))
        g->count = v < COHORT_REPLICAS_MAX ? (uint32_t)v : COHORT_REPLICAS_MAX;
    for (uint32_t i = 0; i < g->count; i++) {
        char name[24], line[4 * FIELD_MAX], lag[32], op[32];
        snprintf(name, sizeof(name), "member%" PRIu32 ":", i);
        if (!cli_info_field(text, len, name, line, sizeof(line)))
            continue;
        cli_list_field(line, "addr", g->client[i], sizeof(g->client[i]));
        cli_list_field(line, "peer", g->peer[i], sizeof(g->peer[i]));
        cli_list_field(line, "health", g->health[i], sizeof(g->health[i]));
        char link[16] = "";
        cli_list_field(line, "link", link, sizeof(link));
        g->link_up[i] = !strcmp(link, "up");
        cli_list_field(line, "lag", lag, sizeof(lag));
        cli_list_field(line, "op", op, sizeof(op));
        if (!cli_decimal_u64(op, &g->op[i]))
            g->op[i] = 0;
        g->lag[i] = UINT64_MAX;
        if (!strcmp(g->health[i], "self"))
            g->lag[i] = 0;
        else if (lag[0] && !cli_decimal_u64(lag, &g->lag[i]))
            g->lag[i] = UINT64_MAX;
    }
    return 0;
}

/* The id named by --peer / --client, among the ids' current addresses;
 * false if none has them. */
static bool resolve(const struct membership_cli *m, const struct group *g,
                    uint64_t *id)
{
    for (uint32_t i = 0; i < g->count; i++) {
        if (m->peer && strcmp(m->peer, g->peer[i]) != 0)
            continue;
        if (m->client && strcmp(m->client, g->client[i]) != 0)
            continue;
        *id = i;
        return true;
    }
    return false;
}

static int unknown_address(const struct membership_cli *m,
                           const struct group *g)
{
    fprintf(stderr,
            "cohort %s: no replica of the group has %s%s%s%s%s; to bring "
            "in a new machine give both --peer and --client (an id outside "
            "the membership moves there), or see cohort members for the "
            "ids 0..%" PRIu32 "\n",
            m->name, m->peer ? "peer address " : "", m->peer ? m->peer : "",
            m->peer && m->client ? " and " : "",
            m->client ? "client address " : "", m->client ? m->client : "",
            g->count ? g->count - 1 : 0);
    return 2;
}

static bool is_voter(const struct group *g, uint64_t id)
{
    return id < COHORT_REPLICAS_MAX && membership_is_voter(&g->m, (uint32_t)id);
}

static bool is_learner(const struct group *g, uint64_t id)
{
    return id < COHORT_REPLICAS_MAX &&
           membership_is_learner(&g->m, (uint32_t)id);
}

/* The next membership: the current one with `drop` (if below the
 * universe) taken out of both lists, `voter` (if any) added as a voter
 * (in the dropped voter's place when replacing, else last) and `learner`
 * (if any) added as a learner. The current primary goes first among the
 * voters unless it leaves. */
static void next_membership(const struct group *g, uint64_t drop,
                            uint64_t voter, uint64_t learner,
                            struct membership *out)
{
    *out = (struct membership){0};
    bool placed = false;
    if (g->primary != drop && membership_is_voter(&g->m, g->primary) &&
        g->primary != voter)
        out->voters[out->voter_count++] = g->primary;
    for (uint32_t k = 0; k < g->m.voter_count; k++) {
        uint32_t v = g->m.voters[k];
        if (v == g->primary && out->voter_count > 0 && out->voters[0] == v)
            continue;
        if (v == drop) {
            if (voter < COHORT_REPLICAS_MAX && !placed) {
                out->voters[out->voter_count++] = (uint32_t)voter;
                placed = true;
            }
            continue;
        }
        if (v != voter)
            out->voters[out->voter_count++] = v;
    }
    if (voter < COHORT_REPLICAS_MAX && !placed &&
        !membership_is_voter(out, (uint32_t)voter))
        out->voters[out->voter_count++] = (uint32_t)voter;
    for (uint32_t k = 0; k < g->m.learner_count; k++) {
        uint32_t l = g->m.learners[k];
        if (l != drop && l != voter && l != learner)
            out->learners[out->learner_count++] = l;
    }
    if (learner < COHORT_REPLICAS_MAX)
        out->learners[out->learner_count++] = (uint32_t)learner;
}

static void format_ids(const uint32_t *ids, uint32_t count, char *out,
                       size_t size)
{
    size_t len = 0;
    out[0] = '\0';
    for (uint32_t k = 0; k < count && len + 8 < size; k++)
        len += (size_t)snprintf(out + len, size - len, "%s%" PRIu32,
                                k ? "+" : "", ids[k]);
    if (count == 0)
        snprintf(out, size, "none");
}

struct run {
    struct membership_cli *m;
    struct cli_rpc c;
    bool open;
    uint64_t started;
    uint64_t entry_op; /* the last proposed RECONFIG entry's op */
    /* The state the group is left in if the step now waited for does not
     * finish ("replica 3 is a learner now (epoch 5); the voter step (epoch
     * 6) has not committed"), and whether, and since when, the primary has
     * been seen without a majority during it. */
    char step[2 * FIELD_MAX];
    bool lacking;
    uint64_t lacking_since_ms;
    /* The members' client addresses, as last read: where to look for the
     * primary when --cluster's member no longer knows it. */
    char known[COHORT_REPLICAS_MAX][FIELD_MAX];
    uint32_t known_count;
    struct cohort_err err;
};

/* (Re)connect to the primary and read the group. */
static int refresh(struct run *r, struct group *g)
{
    if (r->open && read_group(&r->c, g, &r->err) == 0 && g->primary_view)
        return 0;
    if (r->open)
        cli_rpc_close(&r->c);
    r->open = false;
    /* The member given may have left the group (the change removed it, or
     * it is down): ask the others the group had too, all within one wait
     * (not one each: without a majority that was 10 s a member), and no
     * longer than --timeout has left. */
    const char *addrs[1 + COHORT_REPLICAS_MAX];
    uint32_t count = 0;
    addrs[count++] = r->m->cluster;
    for (uint32_t i = 0; i < r->known_count; i++)
        if (r->known[i][0] && strcmp(r->known[i], r->m->cluster) != 0)
            addrs[count++] = r->known[i];
    uint64_t used_ms = cli_monotonic_ms() - r->started;
    uint64_t left_ms =
        used_ms < r->m->timeout_ms ? r->m->timeout_ms - used_ms : 0;
    int rc = cli_rpc_open_primary_any(
        &r->c, addrs, count,
        left_ms < CLI_PRIMARY_WAIT_MS ? left_ms : CLI_PRIMARY_WAIT_MS,
        INFO_SIZE_MAX, &r->err);
    if (rc != 0)
        return -1;
    r->open = true;
    rc = read_group(&r->c, g, &r->err);
    if (rc == 0) {
        r->known_count = g->count;
        for (uint32_t i = 0; i < g->count; i++)
            snprintf(r->known[i], sizeof(r->known[i]), "%s", g->client[i]);
    }
    return rc;
}

static bool expired(const struct run *r)
{
    return cli_monotonic_ms() - r->started >= r->m->timeout_ms;
}

/* How long a primary that seems to lack a majority is looked at again
 * before the change is refused or a wait given up: links that are down
 * just after a start or a view change come up within a heartbeat or so. */
#define MAJORITY_WAIT_MS 2000u

/* Name the step about to be waited for by the state the group is left in
 * if it does not finish; the majority's grace starts afresh. */
__attribute__((format(printf, 2, 3))) static void set_step(struct run *r,
                                                           const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->step, sizeof(r->step), fmt, ap);
    va_end(ap);
    r->lacking = false;
}

/* Whether the primary, as g read it during a wait, has heard from fewer
 * than a majority of the voters (cohort status's rule, as check_majority)
 * for MAJORITY_WAIT_MS on end: it commits nothing until they are back, and
 * the wait would only run out --timeout. If so, prints the one line that
 * names the step reached (r->step) and the fix. Called after each read of
 * the group; a blip shorter than the grace does not count. */
static bool majority_lost(struct run *r, const struct group *g)
{
    if (!g->primary_view || !g->lacks_majority) {
        r->lacking = false;
        return false;
    }
    uint64_t now = cli_monotonic_ms();
    if (!r->lacking) {
        r->lacking = true;
        r->lacking_since_ms = now;
    }
    if (now - r->lacking_since_ms < MAJORITY_WAIT_MS)
        return false;
    fprintf(stderr,
            "cohort %s: %s: primary %" PRIu32 " (epoch %" PRIu32
            ", view %" PRIu64 ") hears from %u of %u voters, %u needed; "
            "start the stopped members (cohort status shows each), then run "
            "the same command again\n",
            r->m->name, r->step, g->primary, g->m.epoch, g->view,
            g->majority.connected, g->majority.voters, g->majority.needed);
    return true;
}

/* Whether the group's membership is next's (learners in any order). */
static bool same_members(const struct membership *now,
                         const struct membership *next)
{
    struct membership a = *now, b = *next;
    a.epoch = b.epoch = 0;
    for (struct membership *m = &a; m != NULL; m = m == &a ? &b : NULL)
        for (uint32_t i = 1; i < m->learner_count; i++)
            for (uint32_t j = i; j > 0 && m->learners[j - 1] > m->learners[j];
                 j--) {
                uint32_t t = m->learners[j];
                m->learners[j] = m->learners[j - 1];
                m->learners[j - 1] = t;
            }
    return membership_equal(&a, &b);
}

/* Propose next (computed from epoch g->m.epoch) and wait until the new
 * epoch is in force. 0 when committed; 1 when the server refused, or the
 * primary lost its majority meanwhile (majority_lost: r->step names the
 * state left; the message printed); -1 with r->err set. Refusals that say
 * "try again" (a change or transfer under way, a view change) are retried
 * until the timeout. */
static int propose(struct run *r, struct group *g,
                   const struct membership *next)
{
    for (;;) {
        char epoch[16];
        char ids[2 * COHORT_REPLICAS_MAX][4];
        struct resp_arg argv[4 + 2 * COHORT_REPLICAS_MAX];
        uint32_t argc = 0;
        argv[argc++] = (struct resp_arg){"COHORT.RECONFIG", 15};
        argv[argc++] = (struct resp_arg){"EPOCH", 5};
        snprintf(epoch, sizeof(epoch), "%" PRIu32, g->m.epoch);
        argv[argc++] = (struct resp_arg){epoch, strlen(epoch)};
        argv[argc++] = (struct resp_arg){"VOTERS", 6};
        uint32_t k = 0;
        for (uint32_t i = 0; i < next->voter_count; i++, k++) {
            snprintf(ids[k], sizeof(ids[k]), "%" PRIu32, next->voters[i]);
            argv[argc++] = (struct resp_arg){ids[k], strlen(ids[k])};
        }
        if (next->learner_count) {
            argv[argc++] = (struct resp_arg){"LEARNERS", 8};
            for (uint32_t i = 0; i < next->learner_count; i++, k++) {
                snprintf(ids[k], sizeof(ids[k]), "%" PRIu32, next->learners[i]);
                argv[argc++] = (struct resp_arg){ids[k], strlen(ids[k])};
            }
        }
        if (cli_rpc_call(&r->c, argc, argv, &r->err) != 0)
            return -1;
        const struct resp_node *n = &r->c.nodes[0];
        if (n->type == RESP_TYPE_ARRAY) {
            if (r->c.node_count >= 3 && n[2].type == RESP_TYPE_INTEGER &&
                n[2].integer > 0)
                r->entry_op = (uint64_t)n[2].integer;
            break;
        }
        if (n->type != RESP_TYPE_ERROR)
            return err_set(&r->err, -COHORT_EPROTO,
                           "%s: unexpected reply to COHORT.RECONFIG",
                           r->c.addr);
        size_t skip = n->len > 4 && !memcmp(n->str, "ERR ", 4) ? 4 : 0;
        bool again =
            n->len >= 9 && !memcmp(n->str + n->len - 9, "try again", 9);
        /* The primary moved (a view change): ask the new one. A retry
         * whose first attempt took effect (its answer lost with the
         * connection) finds the group in the epoch it asked for. */
        bool moved = memmem(n->str, n->len, "not the primary", 15) != NULL;
        bool stale = memmem(n->str, n->len, "changed meanwhile", 17) != NULL;
        if (stale && !expired(r)) {
            struct group now;
            if (refresh(r, &now) == 0 && same_members(&now.m, next)) {
                *g = now;
                return 0;
            }
        }
        if ((!again && !moved) || expired(r)) {
            fprintf(stderr, "cohort %s: %.*s\n", r->m->name,
                    (int)(n->len - skip), n->str + skip);
            return 1;
        }
        cli_pause_ms(50);
        if (refresh(r, g) != 0) {
            if (expired(r))
                return -1;
            cli_pause_ms(200); /* a view change: find the primary */
            if (refresh(r, g) != 0)
                return -1;
        }
        if (same_members(&g->m, next))
            return 0;
        if (majority_lost(r, g))
            return 1;
    }
    uint32_t want = g->m.epoch + 1;
    while (!expired(r)) {
        cli_pause_ms(5);
        struct group now;
        if (refresh(r, &now) != 0) {
            if (expired(r))
                return -1;
            cli_pause_ms(100); /* a view change: find the primary again */
            continue;
        }
        if (now.m.epoch == want) {
            *g = now;
            return 0;
        }
        if (now.m.epoch > want)
            return err_set(&r->err, -COHORT_EAGAIN,
                           "the group moved on to epoch %" PRIu32
                           " meanwhile; look again (cohort members)",
                           now.m.epoch);
        if (majority_lost(r, &now))
            return 1;
    }
    return err_set(&r->err, -COHORT_EAGAIN,
                   "epoch %" PRIu32 " was proposed but not in force within "
                   "%" PRIu64 " s (a view change may have dropped it): see "
                   "cohort members %s and try again",
                   want, r->m->timeout_ms / 1000, r->m->cluster);
}

/* Wait until the primary sees replica id within --max-lag ops, having
 * acknowledged at least the entry that made it a learner (a lag within the
 * bound means nothing before: a small log is "within" it from op 0). 0
 * when it has; 1 when the primary lost its majority meanwhile (the voter
 * step could not commit: printed, as propose()); -1 with r->err set. */
static int catch_up(struct run *r, struct group *g, uint64_t id)
{
    uint64_t since = cli_monotonic_ms();
    while (!expired(r)) {
        if (refresh(r, g) != 0) {
            cli_pause_ms(100);
            continue;
        }
        if (majority_lost(r, g))
            return 1;
        if (!membership_is_member(&g->m, (uint32_t)id))
            return err_set(&r->err, -COHORT_EAGAIN,
                           "replica %" PRIu64 " left the membership while "
                           "catching up (epoch %" PRIu32 "); look again "
                           "(cohort members)",
                           id, g->m.epoch);
        if (g->primary_view && !strcmp(g->health[id], "ok") &&
            g->lag[id] <= r->m->max_lag && g->op[id] >= r->entry_op) {
            printf("replica %" PRIu64 " caught up (lag %" PRIu64
                   " ops) in %" PRIu64 " ms\n",
                   id, g->lag[id], cli_monotonic_ms() - since);
            return 0;
        }
        cli_pause_ms(20);
    }
    return err_set(&r->err, -COHORT_EAGAIN,
                   "replica %" PRIu64 " did not catch up within %" PRIu64
                   " s (health %s, lag %s): is it running with the group's "
                   "--peers? it stays a learner; run the command again "
                   "to finish",
                   id, r->m->timeout_ms / 1000,
                   g->health[id][0] ? g->health[id] : "?",
                   g->lag[id] == UINT64_MAX ? "unknown" : "known");
}

/* Whether the primary hears from a majority of the current voters, by
 * cohort status's rule (cli_info_lacks_majority): without one it stays
 * primary but commits nothing, and a change would only wait out
 * --timeout. Asked again every 100 ms for up to MAJORITY_WAIT_MS before
 * refusing, so that a healthy group is never refused by a race. 0 to go
 * on (a majority, or no longer the primary: the change's own retries find
 * the next one), 1 refused (printed), -1 with r->err. */
static int check_majority(struct run *r)
{
    uint64_t until = cli_monotonic_ms() + MAJORITY_WAIT_MS;
    for (;;) {
        const char *text;
        size_t len;
        if (cli_rpc_info(&r->c, "replication", &text, &len, &r->err) != 0)
            return -1;
        char role[32] = "";
        cli_info_field(text, len, "role:", role, sizeof(role));
        struct cli_majority v;
        if (strcmp(role, "primary") != 0 ||
            !cli_info_lacks_majority(text, len, true, &v))
            return 0;
        if (cli_monotonic_ms() >= until) {
            /* Views count from 0 again in each epoch: name both. */
            char index[32] = "?", epoch[FIELD_MAX] = "?", view[32] = "?";
            cli_info_field(text, len, "primary_index:", index, sizeof(index));
            cli_info_field(text, len, "epoch:", epoch, sizeof(epoch));
            cli_info_field(text, len, "view:", view, sizeof(view));
            fprintf(stderr,
                    "cohort %s: primary %s (epoch %.*s, view %s) hears from "
                    "%u of %u voters, %u needed: it can commit no change; "
                    "start the stopped members (cohort status shows each), "
                    "then retry\n",
                    r->m->name, index, (int)strcspn(epoch, ","), epoch, view,
                    v.connected, v.voters, v.needed);
            return 1;
        }
        cli_pause_ms(100);
    }
}

/* Voters of next that the primary hears now (or is): not suspected, its
 * connection to them up, and, in the primary's normal view, an op they
 * acknowledged in it. Health alone is not enough: right after a view or an
 * epoch starts the detector has not yet had time to suspect a dead one. */
static uint32_t voters_up(const struct group *g, const struct membership *next)
{
    uint32_t up = 0;
    for (uint32_t k = 0; k < next->voter_count; k++) {
        uint32_t v = next->voters[k];
        up += !strcmp(g->health[v], "self") ||
              (!strcmp(g->health[v], "ok") && g->link_up[v] &&
               (!g->primary_view || g->op[v] > 0));
    }
    return up;
}

/* Whether next's voters that answer make a quorum; looked at again for up
 * to two seconds (a voter of a view that just started acknowledges within
 * a heartbeat or so). */
static int check_quorum(struct run *r, struct group *g,
                        const struct membership *next)
{
    uint32_t up = voters_up(g, next);
    uint64_t until = cli_monotonic_ms() + 2000;
    while (up < membership_quorum(next) && cli_monotonic_ms() < until) {
        cli_pause_ms(100);
        if (refresh(r, g) != 0)
            break;
        up = voters_up(g, next);
    }
    if (up >= membership_quorum(next))
        return 0;
    fprintf(stderr,
            "cohort %s: the new membership's voters would be %" PRIu32
            ", of which only %" PRIu32 " answer the primary: it could not "
            "commit anything; bring members back first (cohort members)\n",
            r->m->name, next->voter_count, up);
    return 1;
}

static void say_epoch(const struct run *r, const struct group *g,
                      const char *what)
{
    char voters[64], learners[64];
    format_ids(g->m.voters, g->m.voter_count, voters, sizeof(voters));
    format_ids(g->m.learners, g->m.learner_count, learners, sizeof(learners));
    printf("%s: epoch %" PRIu32 ", voters %s, learners %s; took %" PRIu64
           " ms\n",
           what, g->m.epoch, voters, learners, cli_monotonic_ms() - r->started);
}

/* Make replica id a learner (unless it is one), then, unless only_learner,
 * wait until it has caught up. 0 when done; as propose() otherwise. The
 * learner state is where running the command again picks up. */
static int learner_caught_up(struct run *r, struct group *g, uint64_t id,
                             bool only_learner)
{
    if (!is_learner(g, id)) {
        struct membership next;
        next_membership(g, UINT64_MAX, UINT64_MAX, id, &next);
        set_step(r,
                 "replica %" PRIu64 " is not a learner yet: the learner "
                 "step (epoch %" PRIu32 ") has not committed",
                 id, g->m.epoch + 1);
        int rc = propose(r, g, &next);
        if (rc != 0)
            return rc;
        char what[FIELD_MAX + 128];
        snprintf(what, sizeof(what), "replica %" PRIu64 " (%s) is a learner",
                 id, g->client[id]);
        say_epoch(r, g, what);
    }
    if (only_learner)
        return 0;
    set_step(r,
             "replica %" PRIu64 " is a learner now (epoch %" PRIu32
             "), not yet a voter",
             id, g->m.epoch);
    return catch_up(r, g, id);
}

static int run_add(struct run *r, struct group *g, uint64_t id)
{
    char what[FIELD_MAX + 128];
    if (is_voter(g, id)) {
        fprintf(stderr,
                "cohort add: replica %" PRIu64 " is already a voter (epoch "
                "%" PRIu32 "); nothing changed\n",
                id, g->m.epoch);
        return 1;
    }
    if (is_learner(g, id) && r->m->learner) {
        fprintf(stderr,
                "cohort add: replica %" PRIu64 " is already a learner (epoch "
                "%" PRIu32 "); nothing changed\n",
                id, g->m.epoch);
        return 1;
    }
    int rc = learner_caught_up(r, g, id, r->m->learner);
    if (rc != 0 || r->m->learner)
        return rc;
    struct membership next;
    next_membership(g, UINT64_MAX, id, UINT64_MAX, &next);
    set_step(r,
             "replica %" PRIu64 " is a learner now (epoch %" PRIu32
             "); the voter step (epoch %" PRIu32 ") has not committed",
             id, g->m.epoch, g->m.epoch + 1);
    rc = propose(r, g, &next);
    if (rc != 0)
        return rc;
    snprintf(what, sizeof(what), "replica %" PRIu64 " (%s) is a voter", id,
             g->client[id]);
    say_epoch(r, g, what);
    return 0;
}

static int run_remove(struct run *r, struct group *g, uint64_t id)
{
    if (!is_voter(g, id) && !is_learner(g, id)) {
        fprintf(stderr,
                "cohort remove: replica %" PRIu64 " is not a member of "
                "epoch %" PRIu32 "; nothing changed (see cohort members)\n",
                id, g->m.epoch);
        return 1;
    }
    if (is_voter(g, id) && g->m.voter_count == 1) {
        fprintf(stderr,
                "cohort remove: replica %" PRIu64 " is the group's last "
                "voter; add another first (cohort add)\n",
                id);
        return 1;
    }
    struct membership next;
    next_membership(g, id, UINT64_MAX, UINT64_MAX, &next);
    if (check_quorum(r, g, &next) != 0)
        return 1;
    set_step(r,
             "replica %" PRIu64 " is still a member: the step that takes it "
             "out (epoch %" PRIu32 ") has not committed",
             id, g->m.epoch + 1);
    int rc = propose(r, g, &next);
    if (rc != 0)
        return rc;
    char what[FIELD_MAX + 128];
    snprintf(what, sizeof(what), "replica %" PRIu64 " is out of the group", id);
    say_epoch(r, g, what);
    return 0;
}

static int run_replace(struct run *r, struct group *g, uint64_t old,
                       uint64_t id)
{
    if (!is_voter(g, old)) {
        fprintf(stderr,
                "cohort replace: replica %" PRIu64 " is not a voter of epoch "
                "%" PRIu32 "; nothing changed (add the new one with cohort "
                "add instead)\n",
                old, g->m.epoch);
        return 1;
    }
    if (id == old || is_voter(g, id)) {
        fprintf(stderr,
                "cohort replace: replica %" PRIu64 " is already a voter; "
                "name a replica outside the voters to take %" PRIu64
                "'s place\n",
                id, old);
        return 1;
    }
    int rc = learner_caught_up(r, g, id, false);
    if (rc != 0)
        return rc;
    struct membership next;
    next_membership(g, old, id, UINT64_MAX, &next);
    set_step(r,
             "replica %" PRIu64 " is a learner now (epoch %" PRIu32
             "); the step that puts it in replica %" PRIu64
             "'s place (epoch %" PRIu32 ") has not committed",
             id, g->m.epoch, old, g->m.epoch + 1);
    rc = propose(r, g, &next);
    if (rc != 0)
        return rc;
    char what[FIELD_MAX + 160];
    snprintf(what, sizeof(what),
             "replica %" PRIu64 " (%s) replaced replica %" PRIu64, id,
             g->client[id], old);
    say_epoch(r, g, what);
    return 0;
}

/* The lowest id outside the membership (its process, if any still runs,
 * is fenced by the epochs since it left), or UINT64_MAX. */
static uint64_t free_id(const struct group *g)
{
    for (uint32_t i = 0; i < g->count; i++)
        if (!membership_is_member(&g->m, i))
            return i;
    return UINT64_MAX;
}

/* How to start the replica that now has id at the group's addresses. */
static void say_start(struct run *r, const struct group *g, uint64_t id)
{
    const char *text;
    size_t len;
    char cluster_id[32] = "";
    struct cohort_err ignored;
    if (cli_rpc_info(&r->c, "server", &text, &len, &ignored) != 0 ||
        !cli_info_field(text, len, "cluster_id:", cluster_id,
                        sizeof(cluster_id)))
        snprintf(cluster_id, sizeof(cluster_id), "<INFO server cluster_id>");
    printf("start it with an empty data directory: cohort server --id %" PRIu64
           " --cluster-id %s --peers ",
           id, cluster_id);
    for (uint32_t i = 0; i < g->count; i++)
        printf("%s%s", i ? "," : "", g->peer[i]);
    printf(" --clients ");
    for (uint32_t i = 0; i < g->count; i++)
        printf("%s%s", i ? "," : "", g->client[i]);
    printf(" (and the group's --cluster-secret-file or --peer-tls-*)\n");
    fflush(stdout);
}

/* Move a free id to --peer / --client (COHORT.ADDRESS, compare-and-set on
 * the epoch): 0 with *id set, 1 refused (printed), -1 with r->err. */
static int move_free_id(struct run *r, struct group *g, uint64_t *id)
{
    for (;;) {
        *id = free_id(g);
        if (*id == UINT64_MAX) {
            fprintf(stderr,
                    "cohort %s: every id of the group's %" PRIu32 " is a "
                    "member; remove one first (its id then moves to the new "
                    "machine), or start the group with a longer --peers\n",
                    r->m->name, g->count);
            return 1;
        }
        char ids[16], epoch[16];
        snprintf(ids, sizeof(ids), "%" PRIu64, *id);
        snprintf(epoch, sizeof(epoch), "%" PRIu32, g->m.epoch);
        struct resp_arg argv[] = {
            {"COHORT.ADDRESS", 14},
            {ids, strlen(ids)},
            {r->m->peer, strlen(r->m->peer)},
            {r->m->client, strlen(r->m->client)},
            {"EPOCH", 5},
            {epoch, strlen(epoch)},
        };
        if (cli_rpc_call(&r->c, 6, argv, &r->err) != 0)
            return -1;
        const struct resp_node *n = &r->c.nodes[0];
        if (n->type == RESP_TYPE_SIMPLE)
            break;
        if (n->type != RESP_TYPE_ERROR)
            return err_set(&r->err, -COHORT_EPROTO,
                           "%s: unexpected reply to COHORT.ADDRESS", r->c.addr);
        size_t skip = n->len > 4 && !memcmp(n->str, "ERR ", 4) ? 4 : 0;
        bool again =
            (n->len >= 9 && !memcmp(n->str + n->len - 9, "try again", 9)) ||
            memmem(n->str, n->len, "not the primary", 15) != NULL ||
            memmem(n->str, n->len, "changed meanwhile", 17) != NULL;
        if (!again || expired(r)) {
            fprintf(stderr, "cohort %s: %.*s\n", r->m->name,
                    (int)(n->len - skip), n->str + skip);
            return 1;
        }
        cli_pause_ms(50);
        if (refresh(r, g) != 0 && expired(r))
            return -1;
    }
    if (refresh(r, g) != 0)
        return -1;
    printf("replica %" PRIu64 " moved to peer %s, client %s\n", *id, r->m->peer,
           r->m->client);
    say_start(r, g, *id);
    return 0;
}

static int run(enum change change, const char *name, int argc, char **argv)
{
    struct membership_cli m = {
        .change = change,
        .name = name,
        .cluster = "127.0.0.1:7001",
        .timeout_ms = 120000,
        .max_lag = 1000,
    };
    int rc = parse(&m, argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    struct run r = {.m = &m, .started = cli_monotonic_ms()};
    err_clear(&r.err);
    struct group g;
    if (refresh(&r, &g) != 0) {
        fprintf(stderr, "cohort %s: %s\n", name, r.err.message);
        if (r.open)
            cli_rpc_close(&r.c);
        return 1;
    }
    rc = check_majority(&r);
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, "cohort %s: %s\n", name, r.err.message);
        cli_rpc_close(&r.c);
        return 1;
    }
    uint64_t id = m.id;
    uint64_t new_id = m.new_id;
    uint64_t *named = change == CHANGE_REPLACE ? &new_id : &id;
    if ((m.peer || m.client) && !resolve(&m, &g, named)) {
        if (!m.peer || !m.client) {
            rc = unknown_address(&m, &g);
        } else {
            rc = move_free_id(&r, &g, named);
            if (rc < 0) {
                fprintf(stderr, "cohort %s: %s\n", name, r.err.message);
                rc = 1;
            }
        }
    }
    uint64_t ids[2] = {id, change == CHANGE_REPLACE ? new_id : id};
    for (int k = 0; k < 2 && rc == 0; k++)
        if (ids[k] >= g.count) {
            fprintf(stderr,
                    "cohort %s: no replica %" PRIu64
                    ": the group's --peers are replicas 0..%" PRIu32
                    " (see cohort members)\n",
                    name, ids[k], g.count ? g.count - 1 : 0);
            rc = 2;
        }
    if (rc == 0) {
        if (change == CHANGE_ADD)
            rc = run_add(&r, &g, id);
        else if (change == CHANGE_REMOVE)
            rc = run_remove(&r, &g, id);
        else
            rc = run_replace(&r, &g, id, new_id);
        if (rc < 0) {
            fprintf(stderr, "cohort %s: %s\n", name, r.err.message);
            rc = 1;
        }
    }
    if (r.open)
        cli_rpc_close(&r.c);
    return rc;
}

int cmd_add(int argc, char **argv)
{
    return run(CHANGE_ADD, "add", argc, argv);
}

int cmd_remove(int argc, char **argv)
{
    return run(CHANGE_REMOVE, "remove", argc, argv);
}

int cmd_replace(int argc, char **argv)
{
    return run(CHANGE_REPLACE, "replace", argc, argv);
}
