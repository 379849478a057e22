/* session_cmd — the session commands: parsing, log encoding checks and
 * apply of COHORT.SESSION and of SET ... SESSION, and the primary's
 * EXTEND and EXPIRE ops. command.c hands these types here; the table of
 * sessions itself is kv/session.h.
 *
 *     COHORT.SESSION OPEN ttl-ms     :id (the op that opened it); the
 *                                    session lives until ttl-ms of log
 *                                    time pass without a KEEPALIVE
 *     COHORT.SESSION KEEPALIVE id    :ttl-ms; its deadline becomes the
 *                                    op's time + ttl-ms. An error if the
 *                                    session is gone (expired or closed)
 *     COHORT.SESSION CLOSE id        :1, or :0 if it was already gone;
 *                                    its ephemeral keys are deleted
 *     SET key value SESSION id [NX|XX|GET]   an ephemeral key: deleted in
 *                                    the op that ends the session (not with
 *                                    EX, PX, EXAT, PXAT or KEEPTTL)
 *
 * Log time, never a clock (as kv/expire.h): OPEN and KEEPALIVE set the
 * deadline from the op's timestamp. Only the primary ends a session by
 * expiry (server/session_sweep.c), with two ops of its own that clients
 * cannot send:
 *     EXTEND          every session's deadline becomes at least the op's
 *                     time + its ttl. A new primary commits one before it
 *                     proposes any EXPIRE, so the time no member could
 *                     take a KEEPALIVE (the failover) is never held against
 *                     a session: a failover expires no healthy session.
 *     EXPIRE id ...   ends the named sessions whose deadline is <= the
 *                     op's own time (a KEEPALIVE ordered before it in the
 *                     log saves the session).
 * Ending a session (CLOSE, EXPIRE) deletes its ephemeral keys that no
 * other command has written since (kv/session.h), releases its locks
 * (granting each to its next waiter) and removes its group members (a new
 * view of each group), in that same op.
 *
 * Locks with fencing tokens (kv/lock.h):
 *     COHORT.LOCK name session [WAIT [ms]]   :token if session holds the
 *                                    lock now (the op of the grant; asking
 *                                    again while holding answers the same
 *                                    token); else nil. With WAIT the
 *                                    session joins the lock's FIFO queue
 *                                    (once) and is granted in its turn; ask
 *                                    again to learn the token. WAIT ms is
 *                                    the same op: the server holds the nil
 *                                    answer up to ms for the grant
 *                                    (server/lock_wait.c).
 *     COHORT.UNLOCK name session     :1 if the session held or waited for
 *                                    it (the next waiter is granted in this
 *                                    op), else :0
 *     COHORT.FENCE name token key value   SET key value (no expiry) only if
 *                                    token is the lock's current token:
 *                                    +OK, else an error naming the current
 *                                    token. A paused holder whose session
 *                                    expired cannot write with its token.
 *
 * Groups (kv/group.h); VIEW and ELECT are log ops too, so that they are
 * linearizable without a read path of their own:
 *     COHORT.GROUP JOIN group member session [data]   :view; the member
 *                                    joins at the end (or changes its
 *                                    data); an error if another session
 *                                    holds the name
 *     COHORT.GROUP LEAVE group member    :1 if it was a member, else :0
 *     COHORT.GROUP VIEW group        *2 :view *2n member data ... (in join
 *                                    order; :0 and an empty list if none)
 *     COHORT.ELECT group             *3 :view leader data (the first
 *                                    member), or a null array if none
 *
 * KEEPALIVE goes through the log: one op per keepalive (a client sends one
 * every ttl/3), so every replica holds every deadline and a new primary
 * needs nothing but the log and EXTEND. etcd's primary-local keepalive
 * saves those ops; see docs/PROTOCOL.md for why we chose the log.
 *
 * Body layouts (command.h's format): arguments as decimal text, checked
 * again at apply (log bytes are untrusted): OPEN [ttl-ms], KEEPALIVE [id],
 * CLOSE [id], EXTEND [] and EXPIRE [id ...]; no flags. LOCK [name,
 * session] (flag KV_LOCK_WAIT), UNLOCK [name, session], FENCE [name, token,
 * key, value], GROUP_JOIN [group, member, session(, data)], GROUP_LEAVE
 * [group, member], GROUP_VIEW [group], ELECT [group]. SET ... SESSION is
 * SET with KV_SET_SESSION and the id in the header's delta.
 */
#ifndef COHORT_KV_SESSION_CMD_H
#define COHORT_KV_SESSION_CMD_H

#include <stdbool.h>
#include <stdint.h>

#include "common/resp.h"
#include "kv/command.h"
#include "kv/kv.h"

/* The ids of this module's table start here; the two reads
 * (kv/session_query.c) have these. */
#define KV_SESSION_ID_FIRST 200
#define KV_SESSION_ID_SESSIONS 300
#define KV_SESSION_ID_LOCKS 301
/* The most sessions one EXPIRE op names. */
#define KV_SESSION_EXPIRE_BATCH 64u
/* Room for one id as decimal text. */
#define KV_SESSION_ID_TEXT 24u

const struct kv_command_def *kv_session_find(const struct resp_arg *name);

static inline bool kv_session_owns(const struct kv_command_def *def)
{
    return def->id >= KV_SESSION_ID_FIRST;
}

/* Whether a body type is one of this module's. */
bool kv_session_owns_type(enum kv_command_type type);
/* What argument i of one of this module's bodies is (the limit checks). */
enum kv_arg_role kv_session_arg_role(enum kv_command_type type, uint32_t i);
/* kv_command_growth() of one of this module's writes. */
uint64_t kv_session_growth(const struct kv *kv, const struct kv_write *w);

/* Fill w for COHORT.SESSION, COHORT.LOCK, COHORT.UNLOCK or COHORT.FENCE
 * (arity checked); -COHORT_EINVAL after the error. */
int kv_session_parse(const struct kv_command_def *def, uint32_t argc,
                     const struct resp_arg *argv, struct kv_write *w,
                     struct resp_buf *r);

/* SET's SESSION option at argv[*j]: 1 (and *j advanced past the id), 0 if
 * it is another option, or -COHORT_EINVAL after the error. */
int kv_session_parse_set_option(uint32_t argc, const struct resp_arg *argv,
                                uint32_t *j, struct kv_write *w,
                                struct resp_buf *r);

const char *kv_session_check_header(const struct kv_command *c);

/* Answer COHORT.SESSIONS or COHORT.LOCKS (def one of this module's reads,
 * arity checked) at log time now_ms (session_query.c). */
void kv_session_query(const struct kv *kv, uint64_t now_ms,
                      const struct kv_command_def *def, uint32_t argc,
                      const struct resp_arg *argv, struct resp_buf *r);

void kv_session_apply(struct kv *kv, uint64_t op, uint64_t now_ms,
                      struct kv_command *c, struct resp_buf *r);

/* SET ... SESSION, before the value is written: whether the session exists
 * (else the error is written and the SET must do nothing). */
bool kv_session_set_check(struct kv *kv, const struct kv_command *c,
                          struct resp_buf *r);
/* ... and after: remember key as the session's (if the SET wrote it). */
void kv_session_set_attach(struct kv *kv, const struct kv_command *c,
                           const uint8_t *key, size_t key_size);

/* The primary's ops. EXTEND: w with no arguments. EXPIRE: the sessions due
 * at now_ms, at most KV_SESSION_EXPIRE_BATCH, their ids written into text
 * and named by args; returns how many (0: none due, w untouched). */
void kv_session_extend_write(struct kv_write *w);
uint32_t kv_session_expire_batch(const struct kv *kv, uint64_t now_ms,
                                 char text[][KV_SESSION_ID_TEXT],
                                 struct resp_arg *args, struct kv_write *w);
/* The earliest deadline of any session, UINT64_MAX if none. */
uint64_t kv_session_first_deadline(const struct kv *kv);

/* A primary's term: the (epoch, view) it leads. Views are ordered by
 * (epoch, view) and each epoch's views start at 0, so a view number alone
 * does not name a term: a member may lead view 1 of two epochs. */
struct kv_term {
    uint32_t epoch;
    uint64_t view;
};

static inline bool kv_term_equal(struct kv_term a, struct kv_term b)
{
    return a.epoch == b.epoch && a.view == b.view;
}

/* The primary's session sweeper's next op, shared by the server
 * (server/session_sweep.c) and the simulator (sim/sweep.c): as primary of
 * `term`, with an EXTEND proposed in *extended done (NULL: none yet), at
 * log time now_ms. KV_SWEEP_EXTEND (w: EXTEND) until the term's EXTEND is
 * done, then KV_SWEEP_EXPIRE (w: EXPIRE of the sessions due, their ids in
 * text and args) or KV_SWEEP_IDLE when none is due. */
enum kv_session_sweep {
    KV_SWEEP_IDLE = 0,
    KV_SWEEP_EXTEND = 1,
    KV_SWEEP_EXPIRE = 2,
};
enum kv_session_sweep
kv_session_sweep_next(const struct kv *kv, struct kv_term term,
                      const struct kv_term *extended, uint64_t now_ms,
                      char text[][KV_SESSION_ID_TEXT], struct resp_arg *args,
                      struct kv_write *w);

#endif
