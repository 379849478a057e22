/* transfer — state transfer (VR Revisited §5.2): GET-STATE and NEW-STATE
 * for lagging replicas, snapshots taken (log compaction) and snapshots
 * installed from a peer.
 *
 * A snapshot sent to a peer pins our log back to its op: compaction after
 * a newer snapshot keeps the entries after it, so that the peer, once it
 * has installed the snapshot, continues from our log instead of needing
 * another snapshot (under steady writes, without end: issue 12). The pin
 * follows the peer as it reads the log and goes when it has caught up, or
 * when it has not asked for transfer_pin_ms; it never keeps more than half
 * the log's slots nor 3/8 of its arena (the log must still compact: writes
 * would stop). The peer asks the sender again while it moves it on
 * (state_prefer), and waits for a snapshot on its way as long as chunks
 * arrive (EV_SNAPSHOT_PROGRESS), so one member sends and keeps the log.
 *
 * Divergence. Two logs that hold op n committed hold the same entry there
 * (VR's safety), so a peer whose log lacks or contradicts ops this replica
 * holds committed shows that one of the two was started on an older copy
 * of its data (a restored backup, a VM snapshot): the group may have gone
 * on without acknowledged writes. A replica learns what it holds committed
 * from the messages of the protocol, and after a restart from its log's
 * commit notes (storage/wal.h). Two tests, each sound whatever the network
 * reorders: a state answer whose base op both sides hold committed, with
 * another checksum there; and an answer to a request made since our
 * restart, from the NORMAL primary of the view our recovery joined (same
 * epoch as at the restart), whose log ends below what we held committed
 * at the restart (it answered after the restart, and the primary of that
 * view holds every op committed in the epoch up to it, which a quorum's
 * answers to our recovery show includes ours). The replica then stops: no
 * message, no tick, its log kept as it is for the operator
 * (docs/OPERATIONS.md), who chooses which history to keep. A replica that
 * serves such a request (the first test only) counts it and reports the
 * peer; it cannot tell which of the two is the older copy. A requester's
 * commit beyond a primary's log is no evidence: it may have learned
 * commits of a later view or epoch (a simulator soak showed one).
 *
 * Invariants: (1) only a NORMAL primary's NEW-STATE speaks for the view's
 * uncommitted log; from anyone else only committed entries are adopted;
 * (2) a snapshot is installed only above applied, and the log either
 * continues it (compacted) or is reset to start after it; (3) compaction
 * never drops an entry above the durable snapshot. */
#include "core/replica_internal.h"

#include <inttypes.h>

/* Whom to ask for state: the primary, or on every other retry the next
 * of the other replicas in turn. */
static uint32_t state_source(const struct replica *r)
{
    uint32_t primary = vr_primary_of(r, r->view);
    uint32_t others = 0; /* members that are neither us nor the primary */
    for (uint32_t i = 0; i < r->c.replica_count; i++)
        others += i != primary && i != r->c.self && vr_is_member(r, i);
    if (r->state_retries % 2 == 0 || others == 0)
        return primary;
    uint32_t k = (r->state_retries / 2) % others;
    for (uint32_t i = 0; i < r->c.replica_count; i++) {
        if (i == primary || i == r->c.self || !vr_is_member(r, i))
            continue;
        if (k-- == 0)
            return i;
    }
    return primary;
}

void vr_request_state(struct replica *r)
{
    if (r->status != STATUS_NORMAL || replica_is_primary(r) || r->catching_up)
        return; /* (catching up asks on its own: epoch.c) */
    uint64_t retry = r->awaiting_snapshot ? 4u * r->c.view_change_timeout_ms
                                          : r->c.heartbeat_ms * 2u;
    if (r->state_request_ms && r->now_ms - r->state_request_ms < retry)
        return;
    /* A request that timed out without moving us on: the primary may be
     * unable to help (its snapshot unreadable, say). Every other retry
     * goes to another replica, which serves what it knows committed. */
    r->state_retries = r->state_request_ms ? r->state_retries + 1 : 0;
    r->state_request_ms = r->now_ms;
    r->awaiting_snapshot = false;
    uint64_t base = r->op_verified;
    if (r->state_retries)
        r->state_prefer = COHORT_REPLICA_NONE; /* it did not answer in time */
    r->state_asked =
        vr_valid_peer(r, r->state_prefer) ? r->state_prefer : state_source(r);
    struct message m = {
        .type = MSG_GET_STATE,
        .view = r->view,
        .commit = r->commit,
        .base_op = base,
        .checksum = vr_checksum_at(r, base),
        .nonce = r->nonce,
    };
    vr_send_to(r, r->state_asked, &m, NULL);
    r->stats.state_transfers++;
}

bool vr_valid_peer(const struct replica *r, uint32_t i)
{
    return i < r->c.replica_count && i != r->c.self;
}

static void pin_set(struct replica *r, uint32_t peer, uint64_t op)
{
    if (!vr_valid_peer(r, peer))
        return;
    r->pin_op[peer] = op;
    r->pin_ms[peer] = r->now_ms;
}

/* The lowest op a pin holds the log back to (expired pins go); UINT64_MAX
 * if none. */
static uint64_t pin_floor(struct replica *r)
{
    uint64_t floor = UINT64_MAX;
    for (uint32_t i = 0; i < r->c.replica_count; i++) {
        if (r->pin_op[i] == 0)
            continue;
        if (r->now_ms - r->pin_ms[i] >= r->c.transfer_pin_ms) {
            r->pin_op[i] = 0; /* it stopped asking: dead, or moved on */
            continue;
        }
        if (r->pin_op[i] < floor)
            floor = r->pin_op[i];
    }
    return floor;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* The checksum of our committed history at op (at most our commit): from
 * the log while it holds op, else from a checkpoint noted at op itself
 * (checkpoints are noted at the same op numbers on every replica). */
static bool committed_checksum(const struct replica *r, uint64_t op,
                               uint64_t *checksum)
{
    if (log_checksum(&r->log, op, checksum))
        return true;
    uint64_t noted;
    return op < r->log.base &&
           checkpoints_find(&r->checkpoints, op, &noted, checksum) &&
           noted == op;
}

/* The op at which m's log and ours part, if both hold it committed: 0 if
 * they do not, or we cannot name our history there. */
static uint64_t committed_mismatch(const struct replica *r,
                                   const struct message *m)
{
    uint64_t ours;
    if (m->base_op == 0 || m->base_op > min_u64(r->commit, m->commit) ||
        !committed_checksum(r, m->base_op, &ours) || ours == m->checksum)
        return 0;
    return m->base_op;
}

/* The same for a snapshot offer, whose view_op and checksum fields carry a
 * checkpoint of the sender's committed history (0: none; vr_on_get_state):
 * the op it names, if both hold it committed, when ours differs there. */
static uint64_t checkpoint_mismatch(const struct replica *r,
                                    const struct message *m)
{
    uint64_t at = m->view_op;
    uint64_t ours;
    if (at == 0 || at > min_u64(r->commit, m->commit) ||
        !committed_checksum(r, at, &ours) || ours == m->checksum)
        return 0;
    return at;
}

bool vr_check_diverged(struct replica *r, const struct message *m,
                       bool from_primary)
{
    uint64_t at = m->flags & MSG_FLAG_SNAPSHOT ? checkpoint_mismatch(r, m)
                                               : committed_mismatch(r, m);
    if (!at && from_primary && m->view == r->recovered_view &&
        m->view == r->view && r->cfg.epoch == r->epoch_at_start &&
        m->nonce == r->nonce && r->status == STATUS_NORMAL &&
        !replica_is_primary(r) && m->op < r->commit_at_start)
        at = m->op + 1;
    if (!at)
        return false;
    r->diverged_op = at;
    r->diverged_from = m->from;
    vr_trace(r,
             "diverged: replica %u's log parts from ours at or before op "
             "%" PRIu64 ", which we hold committed",
             m->from, at);
    return true;
}

/* A GET-STATE showing another history of an op both hold committed:
 * reported, not acted on (we cannot tell which of the two is the older
 * copy). (A requester's commit past our log is no evidence: it may have
 * learned commits of a later view or epoch than ours.) */
static void note_peer_diverged(struct replica *r, const struct message *m)
{
    uint64_t at = committed_mismatch(r, m);
    if (!at)
        return;
    r->peer_diverged = m->from;
    r->peer_diverged_op = at;
    r->stats.divergences++;
}

/* A snapshot offer shows the requester our committed history at the
 * highest op we can name at or below at_most (its commit and ours): from
 * the log if it still holds it, else the checkpoints. The offer's own
 * fields say nothing of the ops the snapshot covers, and the requester may
 * hold some of them committed in another history (PROTOCOL.md,
 * "Divergence"). */
static void offer_checkpoint(const struct replica *r, uint64_t at_most,
                             struct message *snap)
{
    if (at_most > r->log.op)
        at_most = r->log.op;
    if (at_most >= r->log.base) {
        snap->view_op = at_most;
        snap->checksum = vr_checksum_at(r, at_most);
    } else if (!checkpoints_find(&r->checkpoints, at_most, &snap->view_op,
                                 &snap->checksum)) {
        snap->view_op = 0;
        snap->checksum = 0;
    }
}

/* Note the checkpoints among ops (log base, upto] of our log, all
 * committed, before the log lets them go. */
static void note_checkpoints(struct replica *r, uint64_t upto)
{
    if (upto > r->log.op)
        upto = r->log.op;
    uint64_t o = r->log.base - r->log.base % CHECKPOINT_FINE + CHECKPOINT_FINE;
    for (; o <= upto; o += CHECKPOINT_FINE)
        checkpoints_note(&r->checkpoints, o, vr_checksum_at(r, o));
}

/* Any replica: GET-STATE (VR Revisited §5.2). The primary serves its whole
 * log; others serve only committed entries, which never change. */
void vr_on_get_state(struct replica *r, const struct message *m)
{
    bool catch_up = m->flags & MSG_FLAG_CATCH_UP;
    if (r->status == STATUS_RECOVERING && !catch_up)
        return;
    note_peer_diverged(r, m);
    /* Up to our commit, entries are the group's whatever our status. */
    uint64_t limit = replica_is_primary(r) && !catch_up ? r->log.op : r->commit;
    uint64_t start = m->base_op;
    uint64_t ours;
    if (start >= r->log.base &&
        (!log_checksum(&r->log, start, &ours) || ours != m->checksum))
        start = m->commit; /* diverged after its commit: resend from there */
    if (start < r->log.base) {
        if (r->snapshot_op == 0 || r->snapshot_op < r->log.base)
            return;
        struct message snap = {.type = MSG_NEW_STATE,
                               .view = r->view,
                               .status = (uint8_t)r->status,
                               .flags = MSG_FLAG_SNAPSHOT,
                               .nonce = m->nonce,
                               .op = limit,
                               .commit = r->commit,
                               .base_op = r->snapshot_op};
        offer_checkpoint(r, min_u64(m->commit, r->commit), &snap);
        vr_send_to(r, m->from, &snap, NULL);
        struct action *a = vr_action_push(r, ACT_SNAPSHOT_SEND);
        a->snapshot_send.to = m->from;
        pin_set(r, m->from, r->snapshot_op);
        return;
    }
    if (start > r->log.op && replica_is_primary(r) && !catch_up &&
        r->status == STATUS_NORMAL)
        start = r->commit; /* it may hold ops we lack: it sees our end */
    if (start > r->log.op)
        return; /* it is ahead of us */
    if (start > limit)
        start = limit;
    uint32_t n = vr_gather(r, start, limit);
    if (m->from < r->c.replica_count && r->pin_op[m->from]) {
        if (start + n >= limit)
            r->pin_op[m->from] = 0; /* caught up with what we know */
        else
            pin_set(r, m->from, start); /* follow it through the log */
    }
    struct message reply_m = {
        .type = MSG_NEW_STATE,
        .view = r->view,
        .nonce = m->nonce,
        .status = (uint8_t)r->status, /* only a NORMAL primary's counts */
        .op = limit,
        .commit = r->commit,
        .view_op = r->view_op,
        .base_op = start,
        .checksum = vr_checksum_at(r, start),
        .entry_count = n,
    };
    vr_send_to(r, m->from, &reply_m, r->scratch);
}

/* NEW-STATE: entries up to the sender's commit are the group's; beyond it
 * they are the primary's log and count only when the primary of our view
 * sent them. */
void vr_on_new_state(struct replica *r, const struct message *m)
{
    /* A recovering replica takes nothing, unless it is catching up to the
     * start of its epoch (committed entries only: see trusted below). */
    if (r->status == STATUS_RECOVERING && !r->catching_up)
        return;
    /* Only a primary that has started its view speaks for the view's log;
     * a replica still changing views serves committed entries alone. */
    bool from_primary =
        m->from == vr_primary_of(r, m->view) && m->status == STATUS_NORMAL;
    if (vr_check_diverged(r, m, from_primary))
        return;
    if (from_primary && m->view > r->view && r->status != STATUS_RECOVERING)
        vr_become_backup(r, m->view); /* that view started without us */
    if (m->flags & MSG_FLAG_SNAPSHOT) {
        /* Only from the replica we asked: its chunks alone may start a
         * transfer into our snapshot directory. */
        if (m->from == r->state_asked) {
            r->awaiting_snapshot = true;
            r->snapshot_from = m->from;
        }
        return;
    }
    if (!vr_attaches(r, m))
        return;
    bool trusted = from_primary && m->view == r->view &&
                   r->status == STATUS_NORMAL && !replica_is_primary(r);
    uint64_t upto = trusted ? m->op : m->commit;
    uint64_t verified_before = r->op_verified;
    uint64_t last = vr_adopt_entries(r, m, upto);
    /* Untrusted, only what the sender knows committed is the group's: our
     * entries may match its log further, but that log may be superseded. */
    uint64_t known = trusted || last <= m->commit ? last : m->commit;
    if (known > r->op_verified)
        r->op_verified = known;
    vr_commit_to(r, trusted ? m->commit : known);
    /* Ask again at once only if this answer moved us on: one that did not
     * (our log is full, say) waits for the retry interval, or duplicated
     * answers would each draw a new request, without end. */
    if (r->op_verified > verified_before) {
        r->state_request_ms = 0;
        if (m->from == r->state_asked)
            r->state_prefer = m->from; /* its log is pinned for us */
    }
    if (trusted) {
        r->view_op = m->view_op;
        if (m->nonce == r->nonce) /* answers a request made since restart */
            vr_note_primary_op(r, m->op);
        if (last == m->op)
            vr_truncate_older_views_after(r, m->op);
        else
            vr_request_state(r);
    }
    vr_check_dvc_quorum(r);
}

void vr_on_snapshot_taken(struct replica *r, uint64_t op)
{
    r->snapshot_running = false;
    if (op <= r->snapshot_op || op > r->applied)
        return;
    r->snapshot_op = op;
    r->snapshot_checksum = vr_checksum_at(r, op);
    r->snapshot_timestamp_ms = log_header(&r->log, op)
                                   ? log_header(&r->log, op)->timestamp_ms
                                   : r->log.base_timestamp_ms;
    r->stats.snapshots_taken++;
    /* Keep some entries behind the snapshot for backups that lag a little,
     * so they catch up from the log rather than by a whole snapshot. */
    uint64_t keep = r->c.snapshot_interval_ops / 2;
    uint64_t to = op > keep ? op - keep : 0;
    /* ... but no more than a quarter of the arena's bytes. */
    uint64_t kept_bytes = 0;
    for (uint64_t o = op; o > to && o > r->log.base; o--) {
        kept_bytes += log_header(&r->log, o)->body_size;
        if (kept_bytes > r->log.bytes_max / 4) {
            to = o;
            break;
        }
    }
    /* A snapshot being sent keeps the log back to its op, within room:
     * half the slots and 3/8 of the arena, below the sizes that ask for a
     * snapshot (normal.c), so the log still compacts and never fills. */
    uint64_t floor = vr_bug(r, BUG_PIN_OFF) ? UINT64_MAX : pin_floor(r);
    if (floor < to) {
        uint64_t ops_room = r->log.ops_max / 2;
        uint64_t lim = r->log.op > ops_room ? r->log.op - ops_room : 0;
        uint64_t bytes = 0;
        for (uint64_t o = r->log.op; o > lim && o > r->log.base; o--) {
            bytes += log_header(&r->log, o)->body_size;
            if (bytes > r->log.bytes_max / 8 * 3) {
                lim = o;
                break;
            }
        }
        uint64_t held = floor > lim ? floor : lim;
        if (held < to) {
            r->stats.compactions_pinned++;
            if (held > floor)
                r->stats.pins_overrun++;
            vr_trace(r, "compaction held at %llu (pin %llu), not %llu",
                     (unsigned long long)held, (unsigned long long)floor,
                     (unsigned long long)to);
            to = held;
        }
    }
    if (to <= r->log.base)
        return;
    note_checkpoints(r, to);
    log_compact(&r->log, to);
    vr_persist_after_base(r);
    struct action *a = vr_action_push(r, ACT_LOG_COMPACT);
    a->compact.op = to;
}

void vr_on_snapshot_installed(struct replica *r, const struct event *ev)
{
    uint64_t op = ev->snapshot.op;
    ASSERT(op > r->applied);
    uint64_t ours;
    bool keep =
        log_checksum(&r->log, op, &ours) && ours == ev->snapshot.checksum;
    if (keep) {
        note_checkpoints(r, op); /* our log is the snapshot's history */
        log_compact(&r->log, op);
        vr_persist_after_base(r);
    } else {
        note_checkpoints(r, r->commit);
        log_reset(&r->log, op, ev->snapshot.checksum,
                  ev->snapshot.timestamp_ms);
        if (checkpoints_due(op))
            checkpoints_note(&r->checkpoints, op, ev->snapshot.checksum);
        r->op_persisted = op;
        r->persist_from = 0;
        r->prepare_sent_op = op;
        /* Nothing of our old log continues the snapshot: have the driver
         * drop it from disk too (a truncation after op). */
        vr_log_changed_from(r, op + 1);
    }
    bool decoded = client_table_decode(&r->table, ev->snapshot.client_table,
                                       ev->snapshot.client_table_size);
    ASSERT(decoded); /* the driver verified the snapshot's checksum */
    r->applied = op;
    if (r->commit < op)
        r->commit = op;
    if (r->op_verified < op)
        r->op_verified = op;
    if (r->op_persisted < op)
        r->op_persisted = op;
    r->snapshot_op = op;
    r->snapshot_checksum = ev->snapshot.checksum;
    r->snapshot_timestamp_ms = ev->snapshot.timestamp_ms;
    /* The sender pinned its log after op for us: ask it for the rest. */
    if (r->awaiting_snapshot)
        r->state_prefer = r->snapshot_from;
    r->awaiting_snapshot = false;
    r->state_request_ms = 0;
    r->stats.snapshots_installed++;
    struct action *a = vr_action_push(r, ACT_LOG_COMPACT);
    a->compact.op = op;
    vr_trace(r, "installed snapshot at %llu", (unsigned long long)op);
    vr_request_state(r);
}

/* The snapshot on its way grew: a transfer that makes progress is waited
 * for (the retry interval counts from its last chunk), not asked of
 * another replica, which would send its own snapshot from the start. */
void vr_on_snapshot_progress(struct replica *r, uint32_t from)
{
    if (r->awaiting_snapshot && from == r->snapshot_from && r->now_ms)
        r->state_request_ms = r->now_ms;
}
