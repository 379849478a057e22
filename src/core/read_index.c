/* read_index — linearizable reads without a log op (docs/PROTOCOL.md,
 * "Read index"): the primary records an index for each read, confirms with
 * one PING/PONG round to f backups that it still leads its view, and
 * answers once it has applied the index.
 *
 * Invariants: (1) reads are answered in arrival order; (2) a read is served
 * (REPLY_OK) only when a quorum answered a PING numbered at or after the
 * read's own, in the view the read arrived in, and applied >= its index;
 * (3) PING numbers only grow within a replica's life. */
#include "core/replica_internal.h"

/* Why a read answered this way is linearizable (docs/PROTOCOL.md, "Read
 * index"): the primary of view v, NORMAL when the read arrives, knows every
 * op committed so far is at or below max(commit, view_op). f backups that
 * answer a PING sent after the read arrived were NORMAL in view v when they
 * answered, so they had not yet sent a DO-VIEW-CHANGE for a later view; with
 * the primary they are a majority, which every later view needs, so no later
 * view had started (nor committed anything) when the read arrived. */

static void read_answer(struct replica *r, uint64_t tag,
                        enum reply_status status)
{
    struct action *a = vr_action_push(r, ACT_READ);
    a->read.tag = tag;
    a->read.status = status;
    a->read.primary_hint = vr_primary_of(r, r->view);
    if (status == REPLY_OK)
        r->stats.reads_served++;
}

/* Why a read cannot be served here now. */
static enum reply_status not_serving(const struct replica *r)
{
    switch (r->status) {
    case STATUS_RECOVERING:
        return REPLY_RECOVERING;
    case STATUS_VIEW_CHANGE:
        return REPLY_VIEW_CHANGE;
    case STATUS_NORMAL:
    default:
        return replica_is_primary(r) ? REPLY_VIEW_CHANGE : REPLY_NOT_PRIMARY;
    }
}

void vr_on_read(struct replica *r, uint64_t tag, uint64_t min_op)
{
    if (!replica_is_primary(r)) {
        read_answer(r, tag, not_serving(r));
        return;
    }
    if (r->read_count == REPLICA_READS_MAX) {
        read_answer(r, tag, REPLY_BUSY);
        return;
    }
    if (r->read_count == 0)
        r->reads_view = r->view;
    struct pending_read *p =
        &r->reads[(r->read_head + r->read_count) % REPLICA_READS_MAX];
    r->read_count++;
    p->tag = tag;
    p->index = r->commit > r->view_op ? r->commit : r->view_op;
    if (min_op > p->index)
        p->index = min_op < r->log.op ? min_op : r->log.op;
    p->seq = 0;
    r->reads_unpinged = true;
}

static void send_ping(struct replica *r)
{
    /* Backups learn the commit point with the round, not at the next
     * PREPARE or heartbeat: a backup that serves a read after this round
     * (its server's COHORT.READINDEX) needs to apply up to the commit
     * point of the read's arrival here, which is at most this one. */
    if (r->commit > r->commit_sent)
        vr_send_commit(r);
    r->ping_seq++;
    r->ping_sent_ms = r->now_ms;
    r->stats.read_rounds++;
    struct message m = {
        .type = MSG_PING,
        .view = r->view,
        .nonce = r->ping_seq,
    };
    vr_broadcast(r, &m, NULL);
}

/* The newest PING that a quorum (the primary and f backups) has answered
 * in this view; the primary counts as having answered its own last PING,
 * and no PONG is above it (on_pong). */
static uint64_t ping_confirmed(const struct replica *r)
{
    uint64_t seqs[COHORT_REPLICAS_MAX];
    uint32_t n = r->cfg.voter_count; /* the primary is one */
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = r->cfg.voters[k];
        seqs[k] = i == r->c.self ? r->ping_seq : r->pong_seq[i];
    }
    return vr_kth_largest(seqs, n, vr_quorum(r));
}

/* After every step: fail reads if the primary lost its view, send one PING
 * for the reads that arrived, answer the reads that are now safe. */
void vr_reads_progress(struct replica *r)
{
    if (r->read_count == 0)
        return;
    /* Answers need room among the step's actions; what does not fit is
     * answered in a later step (every tick is one). */
    if (!replica_is_primary(r) || r->view != r->reads_view) {
        enum reply_status status = not_serving(r);
        for (; r->read_count > 0 && r->action_count < r->action_max;
             r->read_count--) {
            read_answer(r, r->reads[r->read_head].tag, status);
            r->read_head = (r->read_head + 1) % REPLICA_READS_MAX;
        }
        if (r->read_count == 0)
            r->reads_unpinged = false;
        return;
    }
    if (r->reads_unpinged) {
        send_ping(r);
        for (uint32_t k = r->read_count; k > 0; k--) {
            struct pending_read *p =
                &r->reads[(r->read_head + k - 1) % REPLICA_READS_MAX];
            if (p->seq != 0)
                break; /* the unpinged reads are the newest ones */
            p->seq = r->ping_seq;
        }
        r->reads_unpinged = false;
    }
    uint64_t confirmed =
        vr_bug(r, BUG_READ_WITHOUT_QUORUM) ? UINT64_MAX : ping_confirmed(r);
    while (r->read_count > 0 && r->action_count < r->action_max) {
        const struct pending_read *p = &r->reads[r->read_head];
        if (p->seq > confirmed ||
            (r->applied < p->index && !vr_bug(r, BUG_READ_WITHOUT_INDEX)))
            break;
        read_answer(r, p->tag, REPLY_OK);
        r->read_head = (r->read_head + 1) % REPLICA_READS_MAX;
        r->read_count--;
    }
}

/* Backup: answer the primary's PING if we are NORMAL in its view. */
void vr_on_ping(struct replica *r, const struct message *m)
{
    if (r->status != STATUS_NORMAL || m->view != r->view ||
        m->from != vr_primary_of(r, r->view) || replica_is_primary(r))
        return;
    struct message pong = {
        .type = MSG_PONG,
        .view = r->view,
        .nonce = m->nonce,
    };
    vr_send_to(r, m->from, &pong, NULL);
}

void vr_on_pong(struct replica *r, const struct message *m)
{
    if (!replica_is_primary(r) || m->view != r->view || m->nonce > r->ping_seq)
        return;
    if (m->nonce > r->pong_seq[m->from])
        r->pong_seq[m->from] = m->nonce;
}
