/* sim/check — committed-op agreement, the reference model and the reply and
 * apply checks. See check.h. */
#include "sim/check.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/assert.h"
#include "common/grow.h"
#include "kv/lock.h"
#include "kv/session.h"

enum check_wait_kind {
    WAIT_APPLY = 1,
    WAIT_RESTORE = 2,
    WAIT_REPLY = 3,
};

static const char *ref_status_name(uint8_t status)
{
    switch (status) {
    case REF_APPLIED:
        return "applied";
    case REF_DUPLICATE:
        return "a duplicate of an applied request";
    case REF_EXPIRED:
        return "not applied (unknown client)";
    case REF_NOOP:
        return "a no-op";
    default:
        return "not reached";
    }
}

void check_init(struct check *c)
{
    memset(c, 0, sizeof(*c));
    kvsm_init(&c->ref);
}

void check_deinit(struct check *c)
{
    kvsm_deinit(&c->ref);
    free(c->entries);
    free(c->clients);
    free(c->primary_of_view);
    free(c->waits);
    free(c->sessions);
    memset(c, 0, sizeof(*c));
}

void check_fail(struct check *c, const char *what, const char *fmt, ...)
{
    if (c->failed)
        return;
    c->failed = true;
    snprintf(c->what, sizeof(c->what), "%s", what);
    c->failed_step = c->step;
    c->failed_ms = c->now_ms;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
    va_end(ap);
}

/* Room for need items of size bytes, the new ones zeroed. */
static void *grow(void *p, uint64_t *capacity, uint64_t need, size_t size)
{
    uint64_t old = *capacity;
    bool grown = grow_array_u64(&p, capacity, need, size, 64);
    ASSERT(grown);
    memset((uint8_t *)p + old * size, 0, (size_t)(*capacity - old) * size);
    return p;
}

static struct check_entry *entry_slot(struct check *c, uint64_t op)
{
    ASSERT(op >= 1);
    c->entries =
        grow(c->entries, &c->entry_capacity, op + 1, sizeof(*c->entries));
    return &c->entries[op];
}

const struct check_entry *check_entry_at(const struct check *c, uint64_t op)
{
    if (op == 0 || op >= c->entry_capacity || !c->entries[op].known)
        return NULL;
    return &c->entries[op];
}

void check_committed_entry(struct check *c, uint32_t replica,
                           const struct entry *e)
{
    struct check_entry *slot = entry_slot(c, e->h.op);
    if (slot->known) {
        if (slot->h.checksum != e->h.checksum)
            check_fail(
                c, "agreement",
                "replica %" PRIu32 " holds op %" PRIu64 " (view %" PRIu64
                ", client %" PRIu64 " request %" PRIu64 ", checksum %016" PRIx64
                ") at or below its commit number, but replica %" PRIu32
                " committed op %" PRIu64 " as (view %" PRIu64
                ", client %" PRIu64 " request %" PRIu64 ", checksum %016" PRIx64
                ")",
                replica, e->h.op, e->h.view, e->h.client_id, e->h.request_no,
                e->h.checksum, slot->learned_from, e->h.op, slot->h.view,
                slot->h.client_id, slot->h.request_no, slot->h.checksum);
        return;
    }
    if (e->h.op > 1) {
        const struct check_entry *prev = check_entry_at(c, e->h.op - 1);
        if (prev && prev->h.checksum != e->h.parent)
            check_fail(
                c, "agreement",
                "replica %" PRIu32 " committed op %" PRIu64
                " whose parent %016" PRIx64 " is not the committed op %" PRIu64
                " (checksum %016" PRIx64 ")",
                replica, e->h.op, e->h.parent, e->h.op - 1, prev->h.checksum);
    }
    slot->known = true;
    slot->learned_from = replica;
    slot->h = e->h;
    size_t n =
        e->h.body_size < CHECK_BODY_MAX ? e->h.body_size : CHECK_BODY_MAX;
    if (n)
        memcpy(slot->body, e->body, n);
    slot->body_hash = XXH3_64bits(e->body, e->h.body_size);
    if (e->h.op > c->commit_max)
        c->commit_max = e->h.op;
}

void check_commit_number(struct check *c, uint64_t op)
{
    if (op > c->commit_max)
        c->commit_max = op;
}

void check_primary(struct check *c, uint32_t replica, uint64_t view)
{
    if (view >= CHECK_VIEWS_MAX) {
        check_fail(c, "primary",
                   "replica %" PRIu32 " acted as primary of view %" PRIu64
                   ", beyond any view a simulation reaches",
                   replica, view);
        return;
    }
    uint64_t old = c->view_capacity;
    c->primary_of_view = grow(c->primary_of_view, &c->view_capacity,
                              (uint64_t)view + 1, sizeof(uint32_t));
    for (uint64_t v = old; v < c->view_capacity; v++)
        c->primary_of_view[v] = UINT32_MAX;
    uint32_t *p = &c->primary_of_view[view];
    if (*p == UINT32_MAX)
        *p = replica;
    else if (*p != replica)
        check_fail(c, "primary",
                   "replicas %" PRIu32 " and %" PRIu32
                   " both acted as primary of view %" PRIu64,
                   *p, replica, view);
}

static struct check_wait *wait_push(struct check *c, uint8_t kind,
                                    uint32_t replica, uint64_t op)
{
    c->waits =
        grow(c->waits, &c->wait_capacity, c->wait_count + 1, sizeof(*c->waits));
    struct check_wait *w = &c->waits[c->wait_count++];
    memset(w, 0, sizeof(*w));
    w->kind = kind;
    w->replica = replica;
    w->op = op;
    w->step = c->step;
    return w;
}

void check_apply(struct check *c, uint32_t replica, uint64_t op,
                 uint64_t timestamp_ms, const uint8_t *body, size_t size,
                 const uint8_t *reply, size_t reply_size, uint64_t state_hash)
{
    struct check_wait *w = wait_push(c, WAIT_APPLY, replica, op);
    w->timestamp_ms = timestamp_ms;
    w->body_hash = XXH3_64bits(body, size);
    w->hash = state_hash;
    w->size = reply_size <= KVSM_REPLY_MAX ? (uint32_t)reply_size
                                           : KVSM_REPLY_MAX + 1;
    if (w->size <= KVSM_REPLY_MAX)
        memcpy(w->data, reply, w->size);
}

void check_restore(struct check *c, uint32_t replica, uint64_t op,
                   uint64_t state_hash)
{
    struct check_wait *w = wait_push(c, WAIT_RESTORE, replica, op);
    w->hash = state_hash;
}

void check_reply(struct check *c, uint32_t replica, uint64_t client_id,
                 uint64_t request_no, uint64_t op, const uint8_t *data,
                 size_t size)
{
    struct check_wait *w = wait_push(c, WAIT_REPLY, replica, op);
    w->client_id = client_id;
    w->request_no = request_no;
    w->size = size <= KVSM_REPLY_MAX ? (uint32_t)size : KVSM_REPLY_MAX + 1;
    if (w->size <= KVSM_REPLY_MAX)
        memcpy(w->data, data, w->size);
}

static struct check_client *client_find(struct check *c, uint64_t client_id)
{
    for (uint64_t i = 0; i < c->client_count; i++)
        if (c->clients[i].client_id == client_id)
            return &c->clients[i];
    return NULL;
}

/* The reference's sessions before an op, for check_sessions_ended(). */
static void sessions_before(struct check *c)
{
    const struct kv_sessions *t = &c->ref.kv.sessions;
    c->sessions = grow(c->sessions, &c->session_capacity, t->count + 1,
                       sizeof(*c->sessions));
    for (uint64_t i = 0; i < t->count; i++)
        c->sessions[i] = (struct check_session){
            t->items[i].id, t->items[i].ttl_ms, t->items[i].deadline_ms};
    c->session_count = t->count;
}

/* Op e ended sessions by expiry: each must have been due (its deadline,
 * its last renewal's time + TTL, at or before the op's time) and must
 * have had a whole TTL of log time in the term (epoch, view) that expires
 * it. */
static void check_sessions_ended(struct check *c, const struct check_entry *e)
{
    struct kv_sessions *t = &c->ref.kv.sessions;
    uint64_t at = e->h.timestamp_ms;
    for (uint64_t i = 0; i < c->session_count; i++) {
        const struct check_session *s = &c->sessions[i];
        if (kv_sessions_find(t, s->id) != NULL)
            continue;
        c->sessions_expired++;
        if (s->deadline_ms > at || at < c->view_start_ms + s->ttl_ms)
            check_fail(c, "session",
                       "op %" PRIu64 " (epoch %" PRIu32 " view %" PRIu64
                       ", log time %" PRIu64 ") expired session %" PRIu64
                       " (ttl %" PRIu64 " ms, deadline %" PRIu64
                       ") though that term began at log time %" PRIu64
                       ", less than a TTL before: a new primary must "
                       "extend every session before it expires any",
                       e->h.op, e->h.epoch, e->h.view, at, s->id, s->ttl_ms,
                       s->deadline_ms, c->view_start_ms);
    }
}

/* After op e: per lock, a new holder's token is e's op and above the
 * lock's last; the lock table keeps its invariants. */
static void check_locks(struct check *c, const struct check_entry *e)
{
    const struct kv_sessions *t = &c->ref.kv.sessions;
    for (uint64_t i = 0; i < t->lock_count; i++) {
        const struct kv_lock *l = &t->locks[i];
        uint64_t token = l->queue[0].token;
        uint32_t j = 0;
        while (j < c->lock_count &&
               (c->locks[j].size != l->name_size ||
                memcmp(c->locks[j].name, l->name, l->name_size)))
            j++;
        if (j == c->lock_count) {
            if (j == CHECK_LOCKS_MAX || l->name_size > sizeof(c->locks[j].name))
                continue; /* not one of the workload's */
            memcpy(c->locks[j].name, l->name, l->name_size);
            c->locks[j].size = l->name_size;
            c->locks[j].token = 0;
            c->lock_count++;
        }
        struct check_lock *k = &c->locks[j];
        if (token == k->token)
            continue;
        c->lock_grants++;
        if (token <= k->token || token != e->h.op)
            check_fail(c, "lock",
                       "op %" PRIu64 " left lock %.*s held with fencing token "
                       "%" PRIu64 " after token %" PRIu64
                       ": a grant's token must be its op, above every "
                       "earlier one",
                       e->h.op, (int)l->name_size, (const char *)l->name, token,
                       k->token);
        k->token = token;
    }
    if (t->lock_count > 0 && !kv_lock_invariants_hold(t))
        check_fail(c, "lock",
                   "after op %" PRIu64 " the lock table breaks its "
                   "invariants (kv/lock.h): a lock with two holders or a "
                   "waiter of no session",
                   e->h.op);
}

/* Apply e to the reference store, with the session and lock checks. */
static void reference_sm_apply(struct check *c, struct check_entry *e)
{
    uint64_t expired = c->ref.kv.sessions.expired;
    if (c->ref.kv.sessions.count > 0)
        sessions_before(c);
    else
        c->session_count = 0;
    uint8_t reply[KVSM_REPLY_MAX];
    e->reply_size = (uint32_t)kvsm_sm_apply(
        &c->ref, e->h.op, e->h.timestamp_ms, e->body,
        e->h.body_size <= CHECK_BODY_MAX ? e->h.body_size : 0, reply,
        sizeof(reply));
    memcpy(e->reply, reply, e->reply_size);
    if (c->ref.kv.sessions.expired != expired)
        check_sessions_ended(c, e);
    check_locks(c, e);
}

/* The reference model applies committed op `op` by the client table rules
 * the core follows (see check.h). */
static void reference_apply(struct check *c, struct check_entry *e)
{
    if (e->h.epoch > c->epoch ||
        (e->h.epoch == c->epoch && e->h.view > c->view) || c->ref_op == 1) {
        c->epoch = e->h.epoch;
        c->view = e->h.view;
        c->view_start_ms = e->h.timestamp_ms;
    }
    if (e->h.kind != ENTRY_CLIENT) {
        e->ref_status = REF_NOOP;
    } else {
        struct check_client *cl = client_find(c, e->h.client_id);
        if (cl && e->h.request_no <= cl->request_no) {
            e->ref_status = REF_DUPLICATE;
        } else if (!cl && e->h.request_no > 1) {
            e->ref_status = REF_EXPIRED;
        } else {
            e->ref_status = REF_APPLIED;
            reference_sm_apply(c, e);
            if (!cl) {
                c->clients = grow(c->clients, &c->client_capacity,
                                  c->client_count + 1, sizeof(*c->clients));
                cl = &c->clients[c->client_count++];
                cl->client_id = e->h.client_id;
            }
            cl->request_no = e->h.request_no;
            cl->op = e->h.op;
        }
    }
    e->state_hash = kvsm_hash(&c->ref);
}

static void run_apply(struct check *c, const struct check_wait *w)
{
    const struct check_entry *e = &c->entries[w->op];
    c->applies_checked++;
    if (w->body_hash != e->body_hash || w->timestamp_ms != e->h.timestamp_ms)
        check_fail(c, "apply",
                   "replica %" PRIu32 " applied op %" PRIu64 " (step %" PRIu64
                   ") with a body or timestamp other than "
                   "the committed entry's (client %" PRIu64 " request %" PRIu64
                   ")",
                   w->replica, w->op, w->step, e->h.client_id, e->h.request_no);
    else if (e->ref_status != REF_APPLIED)
        check_fail(c, "apply",
                   "replica %" PRIu32 " applied op %" PRIu64 " (step %" PRIu64
                   ", client %" PRIu64 " request %" PRIu64
                   "), which the reference model finds %s",
                   w->replica, w->op, w->step, e->h.client_id, e->h.request_no,
                   ref_status_name(e->ref_status));
    else if (w->hash != e->state_hash)
        check_fail(c, "apply",
                   "replica %" PRIu32 " state after applying op %" PRIu64
                   " (step %" PRIu64 ") is %016" PRIx64
                   "; the reference model's is %016" PRIx64,
                   w->replica, w->op, w->step, w->hash, e->state_hash);
    else if (w->size != e->reply_size || memcmp(w->data, e->reply, w->size))
        check_fail(c, "apply",
                   "replica %" PRIu32 " state machine answered op %" PRIu64
                   " differently from the reference model",
                   w->replica, w->op);
}

static void run_restore(struct check *c, const struct check_wait *w)
{
    if (w->hash != c->entries[w->op].state_hash)
        check_fail(c, "apply",
                   "replica %" PRIu32 " restored a snapshot at op %" PRIu64
                   " (step %" PRIu64 ") whose state %016" PRIx64
                   " is not the reference state %016" PRIx64 " at that op",
                   w->replica, w->op, w->step, w->hash,
                   c->entries[w->op].state_hash);
}

/* A RESP reply in quotes, its control bytes escaped, for reports. */
static void reply_text(char *out, size_t size, const uint8_t *data, uint32_t n)
{
    size_t k = 0;
    out[k++] = '"';
    for (uint32_t i = 0; i < n && k + 6 < size; i++) {
        if (data[i] == '\r' || data[i] == '\n')
            k += (size_t)snprintf(out + k, size - k, "\\%c",
                                  data[i] == '\r' ? 'r' : 'n');
        else if (data[i] < 32 || data[i] > 126)
            k += (size_t)snprintf(out + k, size - k, "\\x%02x", data[i]);
        else
            out[k++] = (char)data[i];
    }
    out[k++] = '"';
    out[k] = 0;
}

static void run_reply(struct check *c, const struct check_wait *w)
{
    const struct check_entry *e = &c->entries[w->op];
    c->replies_checked++;
    char want[4 * KVSM_REPLY_MAX + 8], got[4 * KVSM_REPLY_MAX + 8];
    reply_text(want, sizeof(want), e->reply, e->reply_size);
    if (w->size <= KVSM_REPLY_MAX)
        reply_text(got, sizeof(got), w->data, w->size);
    else
        snprintf(got, sizeof(got), "a reply over %u bytes", KVSM_REPLY_MAX);
    if (e->h.client_id != w->client_id || e->h.request_no != w->request_no)
        check_fail(c, "reply",
                   "replica %" PRIu32 " answered client %" PRIu64
                   " request %" PRIu64 " with REPLY_OK op %" PRIu64
                   " (step %" PRIu64 "), but committed op %" PRIu64
                   " is client %" PRIu64 " request %" PRIu64,
                   w->replica, w->client_id, w->request_no, w->op, w->step,
                   w->op, e->h.client_id, e->h.request_no);
    else if (e->ref_status != REF_APPLIED)
        check_fail(c, "reply",
                   "replica %" PRIu32 " answered client %" PRIu64
                   " request %" PRIu64 " with REPLY_OK op %" PRIu64
                   " (step %" PRIu64 "), but that op is %s",
                   w->replica, w->client_id, w->request_no, w->op, w->step,
                   ref_status_name(e->ref_status));
    else if (w->size != e->reply_size || memcmp(w->data, e->reply, w->size))
        check_fail(c, "reply",
                   "replica %" PRIu32 " answered client %" PRIu64
                   " request %" PRIu64 " (op %" PRIu64 ", step %" PRIu64
                   ") with %s; the reference model answers %s",
                   w->replica, w->client_id, w->request_no, w->op, w->step, got,
                   want);
}

static void run_waits(struct check *c)
{
    uint64_t kept = 0;
    for (uint64_t i = 0; i < c->wait_count; i++) {
        struct check_wait *w = &c->waits[i];
        if (w->op > c->ref_op) {
            c->waits[kept++] = *w;
            continue;
        }
        if (w->kind == WAIT_APPLY)
            run_apply(c, w);
        else if (w->kind == WAIT_RESTORE)
            run_restore(c, w);
        else
            run_reply(c, w);
    }
    c->wait_count = kept;
}

void check_advance(struct check *c)
{
    while (c->ref_op + 1 < c->entry_capacity &&
           c->entries[c->ref_op + 1].known) {
        c->ref_op++;
        reference_apply(c, &c->entries[c->ref_op]);
    }
    if (c->wait_count > 0)
        run_waits(c);
}

void check_finish(struct check *c)
{
    check_advance(c);
    run_waits(c);
    if (c->wait_count == 0)
        return;
    const struct check_wait *w = &c->waits[0];
    check_fail(c, w->kind == WAIT_REPLY ? "reply" : "apply",
               "replica %" PRIu32 " %s op %" PRIu64 " at step %" PRIu64
               ", but the group never committed up to it (%" PRIu64
               " ops known committed, %" PRIu64 " checks waiting)",
               w->replica,
               w->kind == WAIT_REPLY ? "answered REPLY_OK for" : "applied",
               w->op, w->step, c->ref_op, c->wait_count);
}

uint64_t check_state_hash(const struct check *c, uint64_t op)
{
    if (op == 0) {
        return kvsm_empty_hash();
    }
    ASSERT(op <= c->ref_op);
    return c->entries[op].state_hash;
}
