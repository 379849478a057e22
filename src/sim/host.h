/* sim/host — the host of one simulated replica's driver (driver.h's struct
 * driver_host), in virtual time: its clock (the replica's drifting local
 * clock), frames to peers over the simulated network, a storage executor
 * that runs the driver's storage jobs as group-commit rounds on the
 * replica's simulated disk after a drawn latency, a background snapshot
 * writer (the state is copied when asked, as fork() would, and written to
 * the disk later), and the state machine (sim/kvsm) with the checks on
 * every apply and restore.
 *
 * Clients reach the driver through sim_host_request(), as the RESP server
 * does through node_submit()/node_read(), and their answers go back over the
 * network.
 *
 * Invariants: (1) storage rounds of a replica run one at a time, in queue
 * order, and complete in that order; (2) a crash discards the round in
 * flight, the queued jobs and the snapshot being written (the process that
 * held them is gone), and nothing of a dead incarnation reaches a client.
 */
#ifndef COHORT_SIM_HOST_H
#define COHORT_SIM_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/cluster.h"

/* Open the replica's driver from its disk. False if the start failed (the
 * reason is traced); the caller retries later. */
bool sim_host_start(struct cluster *c, struct sim_replica *rep);
/* The process is gone: drop its storage work and close its driver. */
void sim_host_stop(struct cluster *c, struct sim_replica *rep);
/* The storage round in flight is due (rep->storage_at). */
void sim_host_storage_due(struct cluster *c, struct sim_replica *rep);
/* The background snapshot write is due (rep->snapshot.at). */
void sim_host_snapshot_due(struct cluster *c, struct sim_replica *rep);
/* A client request (or a GET by read index) arrived at rep. */
void sim_host_request(struct cluster *c, struct sim_replica *rep,
                      const uint8_t *data, size_t size, bool read);
/* A backup's read-index round (SIM_MSG_READINDEX at the primary) or its
 * answer (SIM_MSG_READINDEX_REPLY at the backup) arrived at rep. */
void sim_host_read_round(struct cluster *c, struct sim_replica *rep,
                         uint32_t kind, uint32_t from, const uint8_t *data,
                         size_t size);
/* Serve the backup reads rep has applied the index of; give up on those
 * that waited too long. After each of rep's steps. */
void sim_host_backup_reads(struct cluster *c, struct sim_replica *rep);
/* The process dies while its storage round is in flight: the round gets
 * as far as a drawn number of disk operations (the crash lands in the
 * middle of it: some writes in the page cache, maybe not synced). */
void sim_host_crash_mid_round(struct cluster *c, struct sim_replica *rep);
/* No storage round, queued job or snapshot write is pending. */
bool sim_host_idle(const struct sim_replica *rep);

/* From sim/cluster.c, for the host. */
uint64_t cluster_local_now(const struct sim_replica *rep, uint64_t now);
void cluster_hash(struct cluster *c, uint64_t a, uint64_t b, uint64_t x,
                  uint64_t y);
/* The replica's process stopped by itself (fatal storage error): crash it
 * and schedule its restart. */
void cluster_process_exit(struct cluster *c, uint32_t i, const char *why);
/* The disk lost power in the middle of replica i's storage work: crash it
 * (a power loss) and schedule its restart. */
void cluster_power_lost(struct cluster *c, uint32_t i, const char *when);

#endif
