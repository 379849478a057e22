/* replica_internal — the state of one replica and the functions the files
 * of the protocol core share (see replica.c for the map). Private to
 * src/core: drivers use replica.h. Functions here are prefixed vr_. */
#ifndef COHORT_REPLICA_INTERNAL_H
#define COHORT_REPLICA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/assert.h"
#include "common/membership.h"
#include "core/checkpoints.h"
#include "core/client_table.h"
#include "core/detector.h"
#include "core/log.h"
#include "core/message.h"
#include "core/prng.h"
#include "core/replica.h"

#define META_RING 16
/* Metadata writes in flight past which a replica takes no new view (it
 * drops messages of higher views, and votes, until its disk catches up):
 * each view costs a few writes, and the ring holds META_RING. */
#define META_BACKLOG_MAX (META_RING / 2)
#define VIEW_OP_UNKNOWN MESSAGE_VIEW_OP_UNKNOWN
#define SEND_SLOTS 8
/* The furthest a message may lead this replica's view. Past it the message
 * is dropped and counted (views_refused): no group runs 2^31 view changes
 * (each takes a view-change timeout, 300 ms by default: 20 years of
 * nothing else), and forged view numbers cannot push a group near
 * VIEW_MAX, where it could no longer change views, in fewer than 2^32
 * completed view changes (docs/PROTOCOL.md, "Message validation"). */
#define VIEW_JUMP_MAX (UINT64_C(1) << 31)
/* "No view" in a view field. */
#define VIEW_NONE UINT64_MAX
/* The longest wait between retransmissions to a stalled backup. */
#define RETRANSMIT_WAIT_MAX_HEARTBEATS 16u

struct dvc_info {
    bool have;
    uint64_t lnv;
    uint64_t op;
    uint64_t commit;
};

struct rr_info {
    bool have;
    uint64_t view;
    uint64_t lnv;
    uint8_t status;
    uint8_t flags;
    uint64_t op;
    uint64_t commit;
};

/* A linearizable read waiting at the primary (see "Read index" in
 * docs/PROTOCOL.md): answered once applied >= index and f backups answered
 * a PING numbered seq or later in this view. */
struct pending_read {
    uint64_t tag;
    uint64_t index; /* max(commit, view_op) at arrival, or min_op */
    uint64_t seq;   /* the PING that covers it; 0: not sent yet */
};

struct replica {
    struct replica_config c;
    /* The configuration of the current epoch: who votes, who leads each
     * view, what a quorum is. Ids index the per-replica arrays below, which
     * are sized for the whole universe (config.replica_count addresses). */
    struct membership cfg;
    struct prng prng;
    uint64_t now_ms;

    enum replica_status status;
    uint64_t view;
    uint64_t last_normal_view; /* the view whose log ours is (in memory) */
    uint64_t lnv_disk;         /* the same, as safe to write to disk (inv 5) */
    uint64_t view_op;          /* op at which the current view started */
    uint64_t primary_op; /* highest op the primary of this view reported */
    uint64_t commit;
    uint64_t applied;
    uint64_t op_persisted; /* durable in its current version */
    uint64_t op_verified;  /* known equal to the current primary's log */
    uint32_t persists_inflight;
    uint64_t persist_from; /* lowest op to persist at the end of the step */
    bool damaged;          /* the log lost records we may have acked */
    /* Divergence (transfer.c): the commit our stored log noted at start,
     * and, once a peer showed a history without ops we hold committed,
     * the op it parts at or before (0: none) and who showed it. A
     * diverged replica takes no more part: it keeps its log as it is. */
    uint64_t commit_at_start;
    uint32_t epoch_at_start;
    uint64_t recovered_view; /* the view recovery joined; VIEW_NONE: none */
    uint64_t diverged_op;
    uint32_t diverged_from;
    /* A peer whose GET-STATE showed such a history: the last one seen. */
    uint64_t peer_diverged_op;
    uint32_t peer_diverged;
    /* Checksums of committed ops compacted away, for snapshot offers. */
    struct checkpoints checkpoints;
    bool fresh; /* nothing was ever stored */

    struct log log;
    struct client_table table;
    struct detector detector;

    /* Metadata persistence: requests in flight, newest durable. */
    uint64_t meta_seq;
    uint64_t meta_seq_done; /* the newest EV_META_PERSISTED */
    struct replica_meta meta_ring[META_RING];
    struct replica_meta meta_durable;
    bool meta_durable_valid;

    /* Primary. */
    uint64_t ack_op[COHORT_REPLICAS_MAX];
    uint64_t ack_progress_ms[COHORT_REPLICAS_MAX];
    uint64_t ack_heard_ms[COHORT_REPLICAS_MAX]; /* last PREPARE-OK, any op */
    /* How long a backup's acknowledgements may stall before we send its
     * unacknowledged PREPAREs again: 2 heartbeats, doubled by every
     * retransmission that brings no progress (a backup slow to sync is
     * not one that lost frames), back to 2 heartbeats on progress. */
    uint64_t retransmit_wait_ms[COHORT_REPLICAS_MAX];
    uint64_t prepare_flush_ms; /* new PREPAREs last went out */
    uint64_t commit_sent;      /* the commit in the last broadcast */
    uint64_t prepare_sent_op;
    uint64_t heartbeat_ms;
    uint64_t clock_base_ms; /* now at view start */
    uint64_t clock_base_ts; /* log time at view start */
    /* Read index: reads in arrival order, all of view reads_view. */
    struct pending_read reads[REPLICA_READS_MAX];
    uint32_t read_head, read_count;
    uint64_t reads_view;
    bool reads_unpinged; /* some read has seq 0 */
    uint64_t ping_seq;   /* the last PING sent */
    uint64_t ping_sent_ms;
    uint64_t pong_seq[COHORT_REPLICAS_MAX]; /* highest PONG, this view */

    /* Backup. */
    uint64_t acked_op;
    uint64_t state_request_ms; /* last GET_STATE sent; 0: none pending */
    uint32_t state_retries;    /* GET_STATEs since one moved us on */
    uint32_t state_asked;      /* whom the last GET_STATE went to */
    /* A NEW_STATE from state_asked said a snapshot is coming; only its
     * sender's chunks are accepted (replica_snapshot_source()). */
    bool awaiting_snapshot;
    uint32_t snapshot_from;
    /* The replica whose answers move us on (it sent the snapshot we
     * installed, or the last entries): asked again, not the next in turn,
     * since its log is pinned for us (transfer.c); forgotten when an
     * answer from it does not come in time. NONE: ask in turn. */
    uint32_t state_prefer;

    /* Sender of state: per peer, the op its log must stay back to (the
     * snapshot sent to it, then its position as it reads the log after
     * it; 0: none) and when it last asked (pins expire after
     * transfer_pin_ms). */
    uint64_t pin_op[COHORT_REPLICAS_MAX];
    uint64_t pin_ms[COHORT_REPLICAS_MAX];

    /* View change. */
    uint64_t votes[COHORT_REPLICAS_MAX]; /* highest view each voted for */
    uint64_t vote_ms[COHORT_REPLICAS_MAX];
    uint64_t vote_since_ms[COHORT_REPLICAS_MAX]; /* voting above our view */
    uint64_t vote_sent_ms;
    uint64_t vc_started_ms;
    uint32_t vc_attempts;
    /* Why this replica is leaving (or left) view why.from_view: noted when
     * it first votes to leave a view or joins another view, reported with
     * every ACT_VIEW until the next cause. */
    struct cohort_view_why why;
    /* The note says how this replica arrived in its view without leaving
     * why.from_view (a restart's recovery into the view it had, an epoch's
     * view 0 after view 0 of the epoch before), not why it leaves one: the
     * next departure makes a new note (vr_why_noted()). */
    bool why_arrival;
    bool dvc_sent;
    uint64_t dvc_sent_ms;
    uint64_t lead_forbidden_view; /* recovered into it: never lead it */
    bool learned; /* a quorum told us the current view since the restart */
    bool damage_recorded; /* the damage mark was sent to the metadata */
    struct dvc_info dvc[COHORT_REPLICAS_MAX];
    uint32_t best_from; /* UINT32_MAX: no DVC yet */
    uint64_t best_base_checksum;
    uint8_t *best_buf; /* the raw DVC of best_from when it is not us */
    size_t best_size;

    /* Leadership transfer (handoff.c): draining toward handoff_target
     * (COHORT_REPLICA_NONE: none) while primary of handoff_view. */
    uint32_t handoff_target;
    uint64_t handoff_view;
    uint64_t handoff_started_ms;

    /* Epochs (epoch.c). epoch_op/epoch_checksum: the RECONFIG entry that
     * started this epoch (0 in epoch 0). A committed RECONFIG applied here
     * leaves next_* set until the step ends and the replica moves. */
    uint64_t epoch_op;
    uint64_t epoch_checksum;
    bool removed; /* not a member of cfg: takes no part */
    /* Removed after being a member of an earlier epoch (an operator's
     * removal, not an id never added): kept in the metadata
     * (META_FLAG_LEFT), cleared when an epoch names it again. */
    bool left;
    /* A spare that was a member and was then taken out of the membership
     * (cohort remove) stops asking to be added, until it restarts: the
     * operator's removal is not undone behind their back. */
    bool spare_retired;
    bool catching_up;       /* its log does not reach epoch_op yet: no part */
    uint32_t catch_up_next; /* whom catching up asks next */
    uint32_t bug_removed_mask; /* BUG_COUNT_REMOVED: ids kept on */
    bool next_pending;
    struct membership next_cfg;
    uint64_t next_op;
    uint64_t next_checksum;
    bool lead_pending; /* primary of (epoch, 0): leads once meta is durable */
    bool announcing;   /* sending START_EPOCH until a quorum answered */
    bool epoch_started[COHORT_REPLICAS_MAX];
    uint64_t announce_ms;
    uint64_t epoch_asked_ms; /* last ask_epoch() (epoch.c) */

    /* Recovery. */
    uint64_t nonce;
    uint64_t recovery_started_ms;
    uint64_t recovery_sent_ms;
    struct rr_info rr[COHORT_REPLICAS_MAX];

    /* Snapshots. */
    uint64_t snapshot_op;
    uint64_t snapshot_checksum;
    uint64_t snapshot_timestamp_ms;
    bool snapshot_running;
    uint8_t *table_buf;
    size_t table_buf_size;

    /* Output of the current step. */
    struct action *actions;
    uint32_t action_count;
    uint32_t action_max;
    uint8_t *send_buf;
    size_t send_used;
    size_t send_cap;
    uint8_t *reply_buf;
    struct entry *scratch; /* entries for encoding messages */
    uint32_t scratch_max;

    struct replica_stats stats;
};

/* actions.c */
uint32_t vr_primary_of(const struct replica *r, uint64_t view);
uint64_t vr_next_view(uint64_t view);
void vr_invalid(struct replica *r, const char *why);
/* Whether m shows a log that lacks or contradicts ops this replica holds
 * committed; if so, the replica stops (transfer.c, "Divergence"). */
bool vr_check_diverged(struct replica *r, const struct message *m,
                       bool from_primary);
uint32_t vr_quorum(const struct replica *r);
bool vr_is_voter(const struct replica *r, uint32_t id);
bool vr_is_member(const struct replica *r, uint32_t id);
bool vr_counts_for_commit(const struct replica *r, uint32_t id);
uint64_t vr_kth_largest(uint64_t *v, uint32_t n, uint32_t k);
bool vr_bug(const struct replica *r, enum replica_bug b);
__attribute__((format(printf, 2, 3))) void vr_trace(const struct replica *r,
                                                    const char *fmt, ...);
struct action *vr_action_push(struct replica *r, enum action_type type);
uint64_t vr_checksum_at(const struct replica *r, uint64_t op);
const uint8_t *vr_encode(struct replica *r, struct message *m,
                         const struct entry *entries, size_t *size);
void vr_send_bytes(struct replica *r, uint32_t to, const uint8_t *data,
                   size_t size);
void vr_send_to(struct replica *r, uint32_t to, struct message *m,
                const struct entry *entries);
void vr_broadcast(struct replica *r, struct message *m,
                  const struct entry *entries);
uint32_t vr_gather(struct replica *r, uint64_t from, uint64_t to);
void vr_persist_meta(struct replica *r);
bool vr_meta_durable_for_view(const struct replica *r);
bool vr_meta_backlogged(const struct replica *r);
bool vr_meta_durable_normal(const struct replica *r);
void vr_log_changed_from(struct replica *r, uint64_t op);
void vr_truncate_log(struct replica *r, uint64_t op);
void vr_persist_after_base(struct replica *r);
void vr_flush_persist(struct replica *r);
void vr_report_view(struct replica *r);
void vr_reply(struct replica *r, uint64_t client_id, uint64_t request_no,
              enum reply_status status);
bool vr_reply_room(const struct replica *r);
const uint8_t *vr_stored_reply(const struct replica *r,
                               const struct client_record *rec);
void vr_reply_ok(struct replica *r, const struct client_record *rec,
                 const uint8_t *data);

/* normal.c */
void vr_apply_committed(struct replica *r);
void vr_commit_to(struct replica *r, uint64_t op);
void vr_maybe_raise_lnv(struct replica *r);
void vr_maybe_clear_damage(struct replica *r);
void vr_note_primary_op(struct replica *r, uint64_t op);
void vr_flush_prepares(struct replica *r);
/* Primary: broadcast COMMIT (the heartbeat): the commit point and the
 * checksum of its entry. */
void vr_send_commit(struct replica *r);
void vr_primary_try_commit(struct replica *r);
void vr_on_client_requests(struct replica *r, const struct event *ev);
uint64_t vr_append_reconfig(struct replica *r, uint64_t packed);
uint64_t vr_adopt_entries(struct replica *r, const struct message *m,
                          uint64_t upto);
bool vr_attaches(const struct replica *r, const struct message *m);
void vr_truncate_older_views_after(struct replica *r, uint64_t op);
void vr_on_prepare(struct replica *r, const struct message *m);
void vr_on_prepare_ok(struct replica *r, const struct message *m);
void vr_on_commit(struct replica *r, const struct message *m);
void vr_tick_primary(struct replica *r);
void vr_tick_backup(struct replica *r);
void vr_backup_ack(struct replica *r, bool force);

/* read_index.c */
void vr_on_read(struct replica *r, uint64_t tag, uint64_t min_op);
void vr_reads_progress(struct replica *r);
void vr_on_ping(struct replica *r, const struct message *m);
void vr_on_pong(struct replica *r, const struct message *m);

/* view_change.c */
void vr_note_why(struct replica *r, enum cohort_view_cause cause, uint32_t by,
                 uint32_t suspect, uint64_t silence_ms);
bool vr_why_noted(const struct replica *r);
void vr_become_backup(struct replica *r, uint64_t view);
void vr_vote(struct replica *r, uint64_t view);
void vr_enter_view_change(struct replica *r, uint64_t view);
void vr_start_view(struct replica *r);
void vr_check_votes(struct replica *r);
void vr_try_send_dvc(struct replica *r);
void vr_check_dvc_quorum(struct replica *r);
void vr_on_start_view_change(struct replica *r, const struct message *m);
void vr_join_stranded_votes(struct replica *r);
void vr_on_do_view_change(struct replica *r, const struct message *m,
                          const uint8_t *raw, size_t raw_size);
void vr_on_start_view(struct replica *r, const struct message *m);
void vr_tick_view_change(struct replica *r);

/* transfer.c */
void vr_request_state(struct replica *r);
void vr_on_get_state(struct replica *r, const struct message *m);
void vr_on_new_state(struct replica *r, const struct message *m);
void vr_on_snapshot_taken(struct replica *r, uint64_t op);
void vr_on_snapshot_installed(struct replica *r, const struct event *ev);
void vr_on_snapshot_progress(struct replica *r, uint32_t from);
bool vr_valid_peer(const struct replica *r, uint32_t i);

/* handoff.c */
bool vr_handoff_active(const struct replica *r);
void vr_on_transfer(struct replica *r, uint32_t target);
bool vr_handoff_ready(const struct replica *r);
void vr_handoff_progress(struct replica *r, bool tick);

/* epoch.c */
bool vr_wedged(const struct replica *r);
void vr_on_reconfig(struct replica *r, const struct membership *next);
void vr_epoch_applied(struct replica *r, const struct entry *e);
bool vr_epoch_filter(struct replica *r, const struct message *m);
void vr_epoch_progress(struct replica *r, bool tick);
void vr_replace_progress(struct replica *r);
void vr_on_spare(struct replica *r, uint32_t from);

/* recovery.c */
void vr_send_recovery(struct replica *r);
void vr_recovery_round(struct replica *r);
void vr_on_recovery(struct replica *r, const struct message *m);
void vr_on_recovery_response(struct replica *r, const struct message *m);
void vr_check_recovery(struct replica *r);

#endif
