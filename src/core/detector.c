/* detector — the failure detector. See detector.h.
 *
 * Invariants, for every peer p (checked by peer_assert_valid()):
 *  (1) timeout_base_ms <= p.timeout_ms <= timeout_max_ms;
 *  (2) self is never suspected;
 *  (3) false_suspicions <= suspicions: a suspicion can turn out false at
 *      most once, because heard() clears it.
 *
 * Peer states: HEALTHY -> SUSPECTED (tick() past the timeout, or suspect())
 * -> HEALTHY (heard(): a false suspicion, the timeout doubles; or reset():
 * no penalty). A HEALTHY peer's timeout shrinks by a quarter for every
 * timeout_decay_ms of unbroken health that tick() observes.
 *
 * A peer's deadline is the first millisecond at which tick() suspects it:
 * heard_ms + timeout_ms + 1, since suspicion needs silence strictly longer
 * than the timeout. detector_next_deadline_ms() reports that instant, so a
 * tick scheduled by it never finds nothing to do and never asks for a zero
 * delay again.
 */
#include "core/detector.h"

#include "common/assert.h"

static_assert(COHORT_REPLICAS_MAX <= UINT32_MAX, "peer indexes fit in u32");

static void peer_assert_valid(const struct detector *d, uint32_t peer)
{
    const struct detector_config *c = &d->config;
    const struct detector_peer *p = &d->peers[peer];
    ASSERT(peer < c->peer_count);
    ASSERT(p->timeout_ms >= c->timeout_base_ms);
    ASSERT(p->timeout_ms <= c->timeout_max_ms);
    ASSERT(p->false_suspicions <= p->suspicions);
    if (peer == c->self)
        ASSERT(!p->suspected);
}

static void peer_healthy_as_of(struct detector_peer *p, uint64_t now_ms)
{
    ASSERT(now_ms >= p->heard_ms); /* time is monotonic */
    p->heard_ms = now_ms;
    p->healthy_since_ms = now_ms;
    p->suspected = false;
}

void detector_init(struct detector *d, const struct detector_config *config,
                   uint64_t now_ms)
{
    ASSERT(config->peer_count >= 1);
    ASSERT(config->peer_count <= COHORT_REPLICAS_MAX);
    ASSERT(config->self < config->peer_count);
    ASSERT(config->timeout_base_ms > 0);
    ASSERT(config->timeout_base_ms <= config->timeout_max_ms);
    ASSERT(config->timeout_decay_ms > 0);

    d->config = *config;
    for (uint32_t i = 0; i < COHORT_REPLICAS_MAX; i++) {
        struct detector_peer *p = &d->peers[i];
        p->heard_ms = now_ms;
        p->healthy_since_ms = now_ms;
        p->timeout_ms = config->timeout_base_ms;
        p->gap_max_ms = 0;
        p->suspected = false;
        p->heard_ever = false;
        p->suspicions = 0;
        p->false_suspicions = 0;
    }
    for (uint32_t i = 0; i < config->peer_count; i++)
        peer_assert_valid(d, i);
}

bool detector_heard(struct detector *d, uint32_t peer, uint64_t now_ms)
{
    ASSERT(peer < d->config.peer_count);
    ASSERT(peer != d->config.self); /* a replica does not hear from itself */
    struct detector_peer *p = &d->peers[peer];
    ASSERT(now_ms >= p->heard_ms);
    p->heard_ever = true;

    if (!p->suspected) {
        /* The healthy stretch goes on; only tick() decides it ended. */
        uint64_t gap = now_ms - p->heard_ms;
        if (gap > p->gap_max_ms)
            p->gap_max_ms = gap > d->config.timeout_max_ms
                                ? d->config.timeout_max_ms
                                : (uint32_t)gap;
        p->heard_ms = now_ms;
        peer_assert_valid(d, peer);
        return false;
    }

    /* We suspected a live peer: its timeout was too short for this network,
     * so back off exponentially, bounded by the configured maximum. */
    ASSERT(p->suspicions > p->false_suspicions);
    p->false_suspicions++;
    uint64_t doubled = (uint64_t)p->timeout_ms * 2;
    if (doubled > d->config.timeout_max_ms)
        doubled = d->config.timeout_max_ms;
    p->timeout_ms = (uint32_t)doubled;
    peer_healthy_as_of(p, now_ms);
    peer_assert_valid(d, peer);
    return true;
}

/* Shrink the timeout of a peer healthy for timeout_decay_ms by a quarter, not
 * below the base, and start a new healthy stretch. At most one step per call:
 * a late tick does not make up for the ticks that were missed. */
static void peer_decay(struct detector *d, uint32_t peer, uint64_t now_ms)
{
    struct detector_peer *p = &d->peers[peer];
    ASSERT(!p->suspected);
    ASSERT(now_ms >= p->healthy_since_ms);
    if (now_ms - p->healthy_since_ms < d->config.timeout_decay_ms)
        return;
    uint32_t shrunk = p->timeout_ms - p->timeout_ms / 4;
    if (shrunk < d->config.timeout_base_ms)
        shrunk = d->config.timeout_base_ms;
    ASSERT(shrunk <= p->timeout_ms);
    p->timeout_ms = shrunk;
    p->gap_max_ms -= p->gap_max_ms / 4;
    p->healthy_since_ms = now_ms;
}

uint32_t detector_tick(struct detector *d, uint64_t now_ms)
{
    uint32_t suspected_now = 0;
    for (uint32_t i = 0; i < d->config.peer_count; i++) {
        struct detector_peer *p = &d->peers[i];
        ASSERT(now_ms >= p->heard_ms);
        if (i == d->config.self || p->suspected)
            continue;
        if (now_ms - p->heard_ms > detector_timeout_ms(d, i)) {
            p->suspected = true;
            p->suspicions++;
            suspected_now++;
        } else {
            peer_decay(d, i, now_ms);
        }
        peer_assert_valid(d, i);
    }
    ASSERT(suspected_now < d->config.peer_count);
    return suspected_now;
}

void detector_suspect(struct detector *d, uint32_t peer, uint64_t now_ms)
{
    ASSERT(peer < d->config.peer_count);
    ASSERT(peer != d->config.self); /* self is never suspected */
    struct detector_peer *p = &d->peers[peer];
    ASSERT(now_ms >= p->heard_ms);
    if (p->suspected)
        return; /* one suspicion, however often it is confirmed */
    p->suspected = true;
    p->suspicions++;
    peer_assert_valid(d, peer);
}

void detector_reset(struct detector *d, uint32_t peer, uint64_t now_ms)
{
    /* Self is allowed: the caller may reset whichever replica is the new
     * primary without checking whether that is itself. */
    ASSERT(peer < d->config.peer_count);
    uint32_t timeout_ms = d->peers[peer].timeout_ms;
    peer_healthy_as_of(&d->peers[peer], now_ms);
    ASSERT(d->peers[peer].timeout_ms == timeout_ms);
    peer_assert_valid(d, peer);
}

bool detector_suspects(const struct detector *d, uint32_t peer)
{
    ASSERT(peer < d->config.peer_count);
    const struct detector_peer *p = &d->peers[peer];
    if (peer == d->config.self)
        ASSERT(!p->suspected);
    return p->suspected;
}

uint32_t detector_timeout_ms(const struct detector *d, uint32_t peer)
{
    ASSERT(peer < d->config.peer_count);
    const struct detector_peer *p = &d->peers[peer];
    uint64_t by_gap = (uint64_t)DETECTOR_GAP_FACTOR * p->gap_max_ms;
    if (by_gap > d->config.timeout_max_ms)
        by_gap = d->config.timeout_max_ms;
    return by_gap > p->timeout_ms ? (uint32_t)by_gap : p->timeout_ms;
}

uint64_t detector_next_deadline_ms(const struct detector *d, uint64_t now_ms)
{
    uint64_t earliest_ms = UINT64_MAX;
    for (uint32_t i = 0; i < d->config.peer_count; i++) {
        const struct detector_peer *p = &d->peers[i];
        ASSERT(now_ms >= p->heard_ms);
        if (i == d->config.self || p->suspected)
            continue;
        uint32_t timeout_ms = detector_timeout_ms(d, i);
        ASSERT(p->heard_ms < UINT64_MAX - timeout_ms - 1);
        uint64_t deadline_ms = p->heard_ms + timeout_ms + 1;
        if (deadline_ms < earliest_ms)
            earliest_ms = deadline_ms;
    }
    if (earliest_ms == UINT64_MAX)
        return UINT64_MAX; /* everyone but self is suspected */
    /* A deadline already passed (no tick since) means tick at once. */
    return earliest_ms > now_ms ? earliest_ms - now_ms : 0;
}
