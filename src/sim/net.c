/* sim/net — simulated network: a min-heap of messages keyed by (delivery
 * time, send order), and a reachability matrix. See net.h. */
#include "sim/net.h"

#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/grow.h"

void sim_net_init(struct sim_net *net, struct prng *prng,
                  uint32_t replica_count, const struct sim_net_config *config)
{
    ASSERT(replica_count >= 1);
    ASSERT(replica_count <= COHORT_REPLICAS_MAX);
    ASSERT(config->delay_min_ms <= config->delay_max_ms);
    ASSERT(config->spike_min_ms <= config->spike_max_ms);
    memset(net, 0, sizeof(*net));
    net->prng = prng;
    net->config = *config;
    net->replica_count = replica_count;
}

void sim_net_deinit(struct sim_net *net)
{
    for (size_t i = 0; i < net->count; i++)
        free(net->heap[i].data);
    free(net->heap);
    memset(net, 0, sizeof(*net));
}

static bool msg_before(const struct sim_msg *a, const struct sim_msg *b)
{
    if (a->at != b->at)
        return a->at < b->at;
    return a->seq < b->seq;
}

static void heap_push(struct sim_net *net, const struct sim_msg *msg)
{
    bool grown = grow_array((void **)&net->heap, &net->capacity, net->count + 1,
                            sizeof(*net->heap), 64);
    ASSERT(grown);
    size_t i = net->count++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!msg_before(msg, &net->heap[parent]))
            break;
        net->heap[i] = net->heap[parent];
        i = parent;
    }
    net->heap[i] = *msg;
}

static struct sim_msg heap_pop(struct sim_net *net)
{
    ASSERT(net->count > 0);
    struct sim_msg top = net->heap[0];
    struct sim_msg last = net->heap[--net->count];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= net->count)
            break;
        if (child + 1 < net->count &&
            msg_before(&net->heap[child + 1], &net->heap[child]))
            child++;
        if (!msg_before(&net->heap[child], &last))
            break;
        net->heap[i] = net->heap[child];
        i = child;
    }
    if (net->count > 0)
        net->heap[i] = last;
    return top;
}

static uint64_t draw_delay(struct sim_net *net)
{
    const struct sim_net_config *c = &net->config;
    uint64_t delay = prng_range(net->prng, c->delay_min_ms, c->delay_max_ms);
    if (prng_chance(net->prng, c->spike_ppm)) {
        delay += prng_range(net->prng, c->spike_min_ms, c->spike_max_ms);
        net->stats.spikes++;
    }
    return delay;
}

static void enqueue_copy(struct sim_net *net, uint64_t now, uint32_t from,
                         uint32_t to, enum sim_msg_kind kind,
                         const uint8_t *data, size_t size, bool duplicate)
{
    struct sim_msg msg = {
        .at = now + draw_delay(net),
        .seq = net->seq++,
        .from = from,
        .to = to,
        .kind = (uint8_t)kind,
        .duplicate = duplicate,
        .size = size,
    };
    msg.data = malloc(size ? size : 1);
    ASSERT(msg.data != NULL);
    if (size)
        memcpy(msg.data, data, size);
    heap_push(net, &msg);
}

void sim_net_send(struct sim_net *net, uint64_t now, uint32_t from, uint32_t to,
                  enum sim_msg_kind kind, const uint8_t *data, size_t size)
{
    ASSERT(from < SIM_NODES_MAX);
    ASSERT(to < SIM_NODES_MAX);
    net->stats.sent++;
    if (!sim_net_reachable(net, from, to)) {
        net->stats.cut++;
        return;
    }
    if (prng_chance(net->prng, net->config.loss_ppm)) {
        net->stats.lost++;
        return;
    }
    enqueue_copy(net, now, from, to, kind, data, size, false);
    if (prng_chance(net->prng, net->config.dup_ppm)) {
        net->stats.duplicated++;
        enqueue_copy(net, now, from, to, kind, data, size, true);
    }
}

bool sim_net_next_at(const struct sim_net *net, uint64_t *at)
{
    if (net->count == 0)
        return false;
    *at = net->heap[0].at;
    return true;
}

bool sim_net_pop(struct sim_net *net, struct sim_msg *out)
{
    *out = heap_pop(net);
    if (!sim_net_reachable(net, out->from, out->to)) {
        net->stats.cut++;
        free(out->data);
        out->data = NULL;
        return false;
    }
    net->stats.delivered++;
    return true;
}

void sim_net_requeue(struct sim_net *net, struct sim_msg *msg, uint64_t at)
{
    ASSERT(at >= msg->at);
    msg->at = at;
    msg->seq = net->seq++;
    net->stats.delivered--; /* counted again when it is popped again */
    heap_push(net, msg);
    msg->data = NULL;
}

bool sim_net_reachable(const struct sim_net *net, uint32_t from, uint32_t to)
{
    if (from >= net->replica_count || to >= net->replica_count)
        return true;
    return !net->cut[from][to];
}

bool sim_net_partitioned(const struct sim_net *net)
{
    for (uint32_t a = 0; a < net->replica_count; a++)
        for (uint32_t b = 0; b < net->replica_count; b++)
            if (net->cut[a][b])
                return true;
    return false;
}

void sim_net_heal(struct sim_net *net)
{
    memset(net->cut, 0, sizeof(net->cut));
}

void sim_net_cut_link(struct sim_net *net, uint32_t from, uint32_t to)
{
    ASSERT(from < net->replica_count);
    ASSERT(to < net->replica_count);
    ASSERT(from != to);
    net->cut[from][to] = true;
}

static bool in_mask(uint32_t mask, uint32_t i)
{
    return (mask >> i) & 1u;
}

void sim_net_split(struct sim_net *net, uint32_t side_mask)
{
    for (uint32_t a = 0; a < net->replica_count; a++)
        for (uint32_t b = 0; b < net->replica_count; b++)
            if (in_mask(side_mask, a) != in_mask(side_mask, b))
                net->cut[a][b] = true;
}

void sim_net_bridge(struct sim_net *net, uint32_t side_mask, uint32_t bridge)
{
    ASSERT(bridge < net->replica_count);
    ASSERT(!in_mask(side_mask, bridge));
    for (uint32_t a = 0; a < net->replica_count; a++)
        for (uint32_t b = 0; b < net->replica_count; b++)
            if (a != bridge && b != bridge &&
                in_mask(side_mask, a) != in_mask(side_mask, b))
                net->cut[a][b] = true;
}
