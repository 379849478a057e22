/* membership — see membership.h. */
#include "common/membership.h"

#include <string.h>

#include "common/assert.h"

void membership_all(struct membership *m, uint32_t epoch, uint32_t n)
{
    ASSERT(n >= 1 && n <= COHORT_REPLICAS_MAX);
    memset(m, 0, sizeof(*m));
    m->epoch = epoch;
    m->voter_count = n;
    for (uint32_t i = 0; i < n; i++)
        m->voters[i] = i;
}

bool membership_valid(const struct membership *m, uint32_t universe)
{
    if (m->voter_count < 1 || m->voter_count > COHORT_REPLICAS_MAX ||
        m->learner_count > COHORT_REPLICAS_MAX - m->voter_count ||
        universe > COHORT_REPLICAS_MAX)
        return false;
    bool seen[COHORT_REPLICAS_MAX] = {false};
    for (uint32_t i = 0; i < m->voter_count + m->learner_count; i++) {
        uint32_t id =
            i < m->voter_count ? m->voters[i] : m->learners[i - m->voter_count];
        if (id >= universe || seen[id])
            return false;
        seen[id] = true;
    }
    return true;
}

bool membership_is_voter(const struct membership *m, uint32_t id)
{
    for (uint32_t i = 0; i < m->voter_count; i++)
        if (m->voters[i] == id)
            return true;
    return false;
}

bool membership_is_learner(const struct membership *m, uint32_t id)
{
    for (uint32_t i = 0; i < m->learner_count; i++)
        if (m->learners[i] == id)
            return true;
    return false;
}

bool membership_is_member(const struct membership *m, uint32_t id)
{
    return membership_is_voter(m, id) || membership_is_learner(m, id);
}

uint32_t membership_primary(const struct membership *m, uint64_t view)
{
    ASSERT(m->voter_count >= 1);
    return m->voters[view % m->voter_count];
}

uint32_t membership_quorum(const struct membership *m)
{
    return m->voter_count / 2 + 1;
}

bool membership_equal(const struct membership *a, const struct membership *b)
{
    if (a->epoch != b->epoch || a->voter_count != b->voter_count ||
        a->learner_count != b->learner_count)
        return false;
    for (uint32_t i = 0; i < a->voter_count; i++)
        if (a->voters[i] != b->voters[i])
            return false;
    for (uint32_t i = 0; i < a->learner_count; i++)
        if (a->learners[i] != b->learners[i])
            return false;
    return true;
}

static_assert(COHORT_REPLICAS_MAX <= 7, "4 bits per voter, 7 voters in 32");

uint64_t membership_pack(const struct membership *m)
{
    ASSERT(m->voter_count >= 1 && m->voter_count <= COHORT_REPLICAS_MAX);
    uint64_t packed = m->voter_count;
    for (uint32_t i = 0; i < m->voter_count; i++)
        packed |= (uint64_t)(m->voters[i] & 0xfu) << (4u + 4u * i);
    for (uint32_t i = 0; i < m->learner_count; i++)
        packed |= UINT64_C(1) << (32u + m->learners[i]);
    return packed;
}

bool membership_unpack(uint64_t packed, uint32_t epoch, uint32_t universe,
                       struct membership *out)
{
    struct membership m = {.epoch = epoch};
    m.voter_count = (uint32_t)(packed & 0xfu);
    if (m.voter_count < 1 || m.voter_count > COHORT_REPLICAS_MAX)
        return false;
    for (uint32_t i = 0; i < m.voter_count; i++)
        m.voters[i] = (uint32_t)(packed >> (4u + 4u * i)) & 0xfu;
    /* Voter slots past voter_count are zero, and so are the bits past the
     * learner mask: one configuration has one encoding. */
    uint64_t used =
        UINT64_C(0xf) | (((UINT64_C(1) << (4u * m.voter_count)) - 1u) << 4u);
    if ((packed & UINT64_C(0xffffffff)) & ~used)
        return false;
    if (packed >> (32u + COHORT_REPLICAS_MAX))
        return false;
    for (uint32_t id = 0; id < COHORT_REPLICAS_MAX; id++)
        if (packed & (UINT64_C(1) << (32u + id))) {
            if (m.learner_count >= COHORT_REPLICAS_MAX)
                return false;
            m.learners[m.learner_count++] = id;
        }
    if (!membership_valid(&m, universe))
        return false;
    *out = m;
    return true;
}
