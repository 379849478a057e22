/* sim/coord — the coordination workload's watchers. See coord.h. */
#include "sim/coord.h"

#include <inttypes.h>
#include <string.h>

#include "common/assert.h"
#include "kv/changes.h"
#include "kv/history.h"
#include "sim/cluster.h"

/* How long a watcher stays on one replica before it moves on by itself,
 * and how soon it tries again when it cannot connect. */
#define MOVE_MIN_MS 100
#define MOVE_MAX_MS 1500
#define RETRY_MS 20

void coord_init(struct coord *co, bool enabled, uint64_t seed)
{
    memset(co, 0, sizeof(*co));
    co->enabled = enabled;
    prng_init(&co->prng, seed ^ 0xc00dc00dull);
    for (uint32_t i = 0; i < COORD_WATCHERS; i++)
        co->watchers[i].move_at = prng_range(&co->prng, 0, MOVE_MAX_MS);
}

static const struct history *ref_ring(const struct cluster *c)
{
    return &c->check.ref.kv.changes;
}

static bool replica_live(const struct sim_replica *rep)
{
    return rep->driver != NULL && rep->sm_ready;
}

static void disconnect(struct cluster *c, struct coord_watcher *w,
                       uint64_t retry_ms)
{
    w->connected = false;
    w->move_at = c->now + retry_ms;
}

/* The client re-reads what it watches and goes on from revision floor
 * (after a compacted error): the reference's events up to floor are
 * skipped. */
static void reread(const struct cluster *c, struct coord_watcher *w,
                   uint64_t floor)
{
    const struct history *rh = ref_ring(c);
    w->last_rev = floor;
    w->ref_seq = rh->first_seq + history_find(rh, floor + 1);
}

/* Connect w to replica i, resuming FROM its last revision. */
static void connect(struct cluster *c, struct coord_watcher *w, uint32_t i)
{
    struct coord *co = &c->coord;
    const struct sim_replica *rep = &c->replicas[i];
    const struct history *h = &rep->sm.kv.changes;
    if (!replica_live(rep) || c->check.ref_op < h->floor) {
        disconnect(c, w, RETRY_MS);
        return;
    }
    uint64_t from = w->last_rev;
    if ((c->config.bugs & BUG_WATCH_RESUME_OFF) && from > 0)
        from--; /* the mutant: resumes from the revision before */
    uint64_t seq;
    co->stats.resumes++;
    if (!kv_changes_resume(h, from, &seq)) {
        co->stats.compacted++;
        cluster_trace(c,
                      "watcher resumes FROM %" PRIu64 " on r%u: compacted "
                      "(floor %" PRIu64 ")",
                      from, i, h->floor);
        reread(c, w, h->floor);
        from = h->floor;
        bool retained = kv_changes_resume(h, from, &seq);
        ASSERT(retained);
    }
    w->connected = true;
    w->on_primary = rep->r != NULL && replica_is_primary(rep->r);
    w->view = rep->r != NULL ? replica_view(rep->r) : 0;
    w->replica = i;
    w->incarnation = rep->incarnation;
    w->floor = h->floor;
    w->seq = seq;
    w->after = from;
    w->move_at = c->now + prng_range(&co->prng, MOVE_MIN_MS, MOVE_MAX_MS);
}

static void describe_entry(char *out, size_t size,
                           const struct history_entry *e)
{
    if (e == NULL) {
        snprintf(out, size, "none");
        return;
    }
    snprintf(out, size, "revision %" PRIu64 " %s of %.*s", e->position,
             kv_change_kind_name(kv_change_kind(e)), (int)e->channel_size,
             (const char *)history_channel(e));
}

static bool entries_equal(const struct history_entry *x,
                          const struct history_entry *y)
{
    return x->position == y->position && x->channel_size == y->channel_size &&
           x->message_size == y->message_size &&
           !memcmp(x->data, y->data, x->channel_size + x->message_size);
}

/* Event e reached w: it must be the reference's next. */
static void receive(struct cluster *c, struct coord_watcher *w, uint32_t index,
                    const struct history_entry *e)
{
    const struct history *rh = ref_ring(c);
    const struct history_entry *x = NULL;
    if (w->ref_seq >= rh->first_seq && w->ref_seq < history_next_seq(rh))
        x = history_at(rh, (uint32_t)(w->ref_seq - rh->first_seq));
    c->coord.stats.events++;
    if (x != NULL && entries_equal(x, e)) {
        w->ref_seq++;
        w->last_rev = e->position;
        return;
    }
    char got[96], want[96];
    describe_entry(got, sizeof(got), e);
    describe_entry(want, sizeof(want), x);
    const char *how = e->position <= w->last_rev  ? "a duplicated event"
                      : x == NULL                 ? "an event never committed"
                      : e->position > x->position ? "a lost event"
                      : e->position < x->position ? "a reordered event"
                                                  : "an altered event";
    check_fail(&c->check, "watch",
               "watcher %" PRIu32 " (resumed FROM %" PRIu64
               " on replica %" PRIu32 ", last revision seen %" PRIu64
               ") received %s; the committed changes' next is %s: %s",
               index, w->after, w->replica, w->last_rev, got, want, how);
}

/* Read what w's replica has applied, up to what the reference has. */
static void feed(struct cluster *c, struct coord_watcher *w, uint32_t index)
{
    const struct sim_replica *rep = &c->replicas[w->replica];
    if (!replica_live(rep) || rep->incarnation != w->incarnation ||
        rep->sm.kv.changes.floor != w->floor ||
        w->seq < rep->sm.kv.changes.first_seq) {
        /* Stopped, restarted, installed a snapshot, or w fell past the
         * ring: the server cuts the watcher; it resumes elsewhere. */
        c->coord.stats.cuts++;
        disconnect(c, w, 0);
        return;
    }
    const struct history *h = &rep->sm.kv.changes;
    while (!c->check.failed && w->seq < history_next_seq(h)) {
        const struct history_entry *e =
            history_at(h, (uint32_t)(w->seq - h->first_seq));
        if (e->position > c->check.ref_op)
            return;
        w->seq++;
        if (e->position > w->after)
            receive(c, w, index, e);
    }
}

/* Whether w watches on a replica that was the primary when w connected
 * and no longer is the primary of that view. */
static bool failed_over(const struct cluster *c, const struct coord_watcher *w)
{
    const struct sim_replica *rep = &c->replicas[w->replica];
    return w->connected && w->on_primary && rep->r != NULL &&
           (!replica_is_primary(rep->r) || replica_view(rep->r) != w->view);
}

/* Where a watcher goes next: half the time the primary (if some replica
 * acts as one), else any replica. */
static uint32_t next_replica(struct cluster *c)
{
    struct coord *co = &c->coord;
    uint32_t n = c->config.replica_count;
    if (prng_below(&co->prng, 2)) {
        for (uint32_t i = 0; i < n; i++) {
            const struct sim_replica *rep = &c->replicas[i];
            if (rep->r != NULL && replica_is_primary(rep->r))
                return i;
        }
    }
    return (uint32_t)prng_below(&co->prng, n);
}

void coord_pump(struct cluster *c)
{
    struct coord *co = &c->coord;
    if (!co->enabled)
        return;
    for (uint32_t i = 0; i < COORD_WATCHERS && !c->check.failed; i++) {
        struct coord_watcher *w = &co->watchers[i];
        if (w->connected)
            feed(c, w, i);
        bool failover = failed_over(c, w);
        if (c->now < w->move_at && !failover)
            continue;
        co->stats.failovers += failover;
        connect(c, w, next_replica(c));
        if (w->connected)
            feed(c, w, i);
    }
}

void coord_finish(struct cluster *c)
{
    struct coord *co = &c->coord;
    if (!co->enabled)
        return;
    const struct history *rh = ref_ring(c);
    for (uint32_t i = 0; i < COORD_WATCHERS && !c->check.failed; i++) {
        struct coord_watcher *w = &co->watchers[i];
        /* A replica that an epoch removed stops following the log (and
         * may not know it was removed): the first live member of the
         * newest epoch serves the check, as cluster_quiescent() has it. */
        uint32_t r = 0;
        while (r < c->config.replica_count && (!replica_live(&c->replicas[r]) ||
                                               !cluster_in_latest_epoch(c, r)))
            r++;
        if (r == c->config.replica_count)
            return;
        connect(c, w, r);
        if (!w->connected)
            continue;
        feed(c, w, i);
        if (!c->check.failed && w->ref_seq != history_next_seq(rh))
            check_fail(&c->check, "watch",
                       "watcher %" PRIu32 " resumed FROM %" PRIu64
                       " on replica %" PRIu32 " at the end and got the "
                       "changes up to revision %" PRIu64
                       ", short of the committed %" PRIu64,
                       i, w->after, r, w->last_rev, c->check.ref_op);
    }
}
