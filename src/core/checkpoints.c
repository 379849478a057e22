/* checkpoints — see checkpoints.h. */
#include "core/checkpoints.h"

static const uint64_t spacing[CHECKPOINT_LEVELS] = {
    CHECKPOINT_FINE, CHECKPOINT_FINE * 64u, CHECKPOINT_FINE * 64u * 64u};

bool checkpoints_due(uint64_t op)
{
    return op != 0 && op % CHECKPOINT_FINE == 0;
}

static uint32_t last_slot(const struct checkpoint_ring *ring)
{
    return (ring->next + CHECKPOINT_SLOTS - 1) % CHECKPOINT_SLOTS;
}

void checkpoints_note(struct checkpoints *c, uint64_t op, uint64_t checksum)
{
    for (uint32_t i = 0; i < CHECKPOINT_LEVELS; i++) {
        struct checkpoint_ring *ring = &c->level[i];
        if (op == 0 || op % spacing[i] != 0)
            continue;
        if (ring->count && ring->op[last_slot(ring)] >= op)
            continue;
        ring->op[ring->next] = op;
        ring->checksum[ring->next] = checksum;
        ring->next = (ring->next + 1) % CHECKPOINT_SLOTS;
        if (ring->count < CHECKPOINT_SLOTS)
            ring->count++;
    }
}

/* The highest op of ring at most at_most: its slots rise in op order from
 * the oldest, so a binary search over the ring's age order finds it. */
static bool ring_find(const struct checkpoint_ring *ring, uint64_t at_most,
                      uint32_t *slot)
{
    uint32_t oldest =
        (ring->next + CHECKPOINT_SLOTS - ring->count) % CHECKPOINT_SLOTS;
    uint32_t lo = 0;
    uint32_t hi = ring->count; /* answer: the last age < hi with op <= */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ring->op[(oldest + mid) % CHECKPOINT_SLOTS] <= at_most)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return false;
    *slot = (oldest + lo - 1) % CHECKPOINT_SLOTS;
    return true;
}

bool checkpoints_find(const struct checkpoints *c, uint64_t at_most,
                      uint64_t *op, uint64_t *checksum)
{
    bool found = false;
    for (uint32_t i = 0; i < CHECKPOINT_LEVELS; i++) {
        const struct checkpoint_ring *ring = &c->level[i];
        uint32_t s;
        if (!ring_find(ring, at_most, &s) || (found && ring->op[s] <= *op))
            continue;
        *op = ring->op[s];
        *checksum = ring->checksum[s];
        found = true;
    }
    return found;
}

size_t checkpoints_list(const struct checkpoints *c, uint64_t *op,
                        uint64_t *checksum, size_t max)
{
    /* A merge of the levels, each rising from its oldest slot. */
    uint32_t taken[CHECKPOINT_LEVELS] = {0};
    size_t n = 0;
    while (n < max) {
        int best = -1;
        uint64_t best_op = 0;
        for (int i = 0; i < CHECKPOINT_LEVELS; i++) {
            const struct checkpoint_ring *ring = &c->level[i];
            if (taken[i] == ring->count)
                continue;
            uint32_t oldest = (ring->next + CHECKPOINT_SLOTS - ring->count) %
                              CHECKPOINT_SLOTS;
            uint64_t o = ring->op[(oldest + taken[i]) % CHECKPOINT_SLOTS];
            if (best < 0 || o < best_op) {
                best = i;
                best_op = o;
            }
        }
        if (best < 0)
            break;
        const struct checkpoint_ring *ring = &c->level[best];
        uint32_t oldest =
            (ring->next + CHECKPOINT_SLOTS - ring->count) % CHECKPOINT_SLOTS;
        uint32_t slot = (oldest + taken[best]) % CHECKPOINT_SLOTS;
        taken[best]++;
        if (n > 0 && op[n - 1] == best_op)
            continue; /* the same op, noted at a coarser level too */
        op[n] = best_op;
        checksum[n] = ring->checksum[slot];
        n++;
    }
    return n;
}
