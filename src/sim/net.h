/* sim/net — the simulated network: messages in flight between nodes (the
 * replicas 0..replica_count-1 and the simulated clients after them), each a
 * private copy of the bytes with a delivery time in virtual milliseconds.
 *
 * Faults: loss, duplication (the copy gets its own delay), reordering (every
 * message draws its own delay, so later ones overtake earlier ones), delay
 * spikes, and partitions. A partition is a reachability matrix between
 * replicas, checked when a message is sent and again when it would be
 * delivered (a message on the wire when the link is cut is lost). Clients
 * reach every replica; their messages still suffer loss, duplication and
 * delay.
 *
 * Invariants: (1) messages come out in (delivery time, send order) order, so
 * equal times are broken by send order, never by memory addresses; (2) every
 * random choice comes from the one borrowed prng, in send order.
 */
#ifndef COHORT_SIM_NET_H
#define COHORT_SIM_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cohort.h"
#include "core/prng.h"

#define SIM_CLIENTS_MAX 16
#define SIM_NODES_MAX (COHORT_REPLICAS_MAX + SIM_CLIENTS_MAX)

enum sim_msg_kind {
    SIM_MSG_PEER = 1,            /* protocol message bytes between replicas */
    SIM_MSG_SNAPSHOT = 2,        /* a state transfer snapshot (sim/cluster.c) */
    SIM_MSG_REQUEST = 3,         /* client to replica */
    SIM_MSG_REPLY = 4,           /* replica to client */
    SIM_MSG_READ = 5,            /* client to replica: a GET by read index */
    SIM_MSG_READINDEX = 6,       /* backup to primary: a read round */
    SIM_MSG_READINDEX_REPLY = 7, /* primary to backup: its read index */
};

struct sim_msg {
    uint64_t at;  /* virtual delivery time */
    uint64_t seq; /* send order, breaks ties */
    uint32_t from;
    uint32_t to;
    uint8_t kind;
    bool duplicate;
    uint8_t *data; /* owned by whoever holds the message; free() it */
    size_t size;
};

struct sim_net_config {
    uint32_t delay_min_ms;
    uint32_t delay_max_ms;
    uint32_t loss_ppm;
    uint32_t dup_ppm;
    uint32_t spike_ppm;    /* chance a message is delayed by a spike */
    uint32_t spike_min_ms; /* extra delay of a spike */
    uint32_t spike_max_ms;
};

struct sim_net_stats {
    uint64_t sent;
    uint64_t delivered;
    uint64_t lost;       /* dropped by random loss */
    uint64_t cut;        /* dropped by a partition */
    uint64_t duplicated; /* extra copies made */
    uint64_t spikes;
};

struct sim_net {
    struct prng *prng; /* borrowed */
    struct sim_net_config config;
    uint32_t replica_count;
    bool cut[COHORT_REPLICAS_MAX][COHORT_REPLICAS_MAX]; /* [from][to] */
    struct sim_msg *heap;
    size_t count;
    size_t capacity;
    uint64_t seq;
    struct sim_net_stats stats;
};

void sim_net_init(struct sim_net *net, struct prng *prng,
                  uint32_t replica_count, const struct sim_net_config *config);
/* Frees every message still in flight. */
void sim_net_deinit(struct sim_net *net);

/* Copy size bytes of data into a message from -> to sent at now. It may be
 * dropped (partition, loss), delayed, or duplicated. */
void sim_net_send(struct sim_net *net, uint64_t now, uint32_t from, uint32_t to,
                  enum sim_msg_kind kind, const uint8_t *data, size_t size);

/* The delivery time of the next message; false if none is in flight. */
bool sim_net_next_at(const struct sim_net *net, uint64_t *at);
/* Take the next message. Returns true and fills out (the caller owns
 * out->data) if it is delivered; false if a partition cut it on the way (the
 * bytes are freed, out->from/to/kind still say what it was). */
bool sim_net_pop(struct sim_net *net, struct sim_msg *out);

/* Put a message back for delivery at `at` (a paused receiver); keeps the
 * order among messages put back at the same time. Takes ownership. */
void sim_net_requeue(struct sim_net *net, struct sim_msg *msg, uint64_t at);

/* Partitions. Clients (nodes >= replica_count) are always reachable. */
bool sim_net_reachable(const struct sim_net *net, uint32_t from, uint32_t to);
bool sim_net_partitioned(const struct sim_net *net);
void sim_net_heal(struct sim_net *net);
/* One-way: from can no longer reach to. */
void sim_net_cut_link(struct sim_net *net, uint32_t from, uint32_t to);
/* Symmetric: replicas in side_mask and the rest cannot talk. */
void sim_net_split(struct sim_net *net, uint32_t side_mask);
/* Bridge: side_mask and the rest (except bridge) cannot talk to each other;
 * bridge talks to everyone. */
void sim_net_bridge(struct sim_net *net, uint32_t side_mask, uint32_t bridge);

#endif
