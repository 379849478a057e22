/* cohort_client.h — libcohort-client, the C client of a cohort group that
 * hides failover from the application and applies every write exactly once.
 *
 *     const char *members[] = {"10.0.0.1:7001", "10.0.0.2:7001"};
 *     struct cohort_client_options o;
 *     cohort_client_options_init(&o);
 *     o.members = members;
 *     o.member_count = 2;
 *     struct cohort_client *c;
 *     if (cohort_client_open(&c, &o) != 0) ...
 *     int64_t n;
 *     int rc = cohort_client_incr(c, "visits", &n);  // survives failovers
 *     cohort_client_close(c);
 *
 * What a call does. A write (SET, DEL, INCR, INCRBY, DECR, DECRBY, MSET,
 * CAS, GETDEL, GETSET, SETNX, MSETNX, APPEND, SETRANGE, INCRBYFLOAT, UNLINK,
 * COPY, RENAME, RENAMENX, FLUSHDB, FLUSHALL, ACL SETUSER/DELUSER, or any
 * command called with COHORT_CALL_WRITE)
 * is sent to the primary as COHORT.REQ <client-id> <request-no> <command>.
 * On a closed connection, a timeout, -TRYAGAIN or -UNKNOWN the library
 * reconnects (to the next member, then to the primary that member names)
 * and sends the same COHORT.REQ again, with the same client id and request
 * number, until the call's deadline. The group's client table answers a
 * retry of a write it already applied with that write's first reply, so the
 * application sees one write and its one true reply. Reads are retried the
 * same way; they change nothing. A write or linearizable read unanswered
 * after hedge_ms is also sent, the same COHORT.REQ, to another member at
 * once (the first connection stays open; the first answer of either
 * wins), so a frozen or cut-off primary costs about the failover.
 *
 * Errors. Functions return 0 or a negative code from cohort.h.
 * cohort_client_error() gives the one-line message of the latest failure.
 * When a call's deadline passes without an answer:
 *   -COHORT_ENOTAPPLIED  the write certainly did not take effect (no member
 *                        could have received it, or each said -TRYAGAIN);
 *                        a read simply got no answer;
 *   -COHORT_EUNKNOWN     the write may or may not have taken effect (it
 *                        reached a member that then failed or said
 *                        -UNKNOWN, and no retry learnt the outcome).
 * An error reply of the store (-ERR wrong type, -OOM, -NOPERM, ...) is a
 * reply, not a failure: cohort_client_call() returns 0 with reply->type
 * COHORT_REPLY_ERROR; the convenience calls return -COHORT_EREPLY.
 * -COHORT_EAUTH: a member refused the configured user or password (nothing
 * was sent). -COHORT_EINVAL: bad arguments or options.
 *
 * Identity. A handle draws its client id at open (64 random bits from
 * getrandom(), never 0) and numbers its writes from 1, one more per write
 * whose outcome is known or unknown (a write that certainly was not applied
 * gives its number to the next one). The numbers live in the handle, so
 * they survive reconnects. A process that restarts opens a new handle and
 * so starts a new client: a write the old process had pending when it
 * died stays unknown to the new one (it may have been applied or not).
 * If the group forgot the client (idle for an hour, or evicted from a full
 * table: "-ERR client session expired") the handle draws a new id and goes
 * on from request 1, unless a retry of the pending write is what was
 * refused: then the write's outcome cannot be learnt and the call returns
 * -COHORT_EUNKNOWN at once.
 *
 * Threads. A handle is used by one thread at a time: calls on one handle
 * from two threads at once need the caller's lock. Separate handles share
 * nothing and may be used from separate threads freely. Each handle is
 * its own client (its own id), so open one per thread.
 *
 * Blocking or not. cohort_client_call() and the convenience calls block
 * until the answer or the deadline. The same call can be driven from the
 * caller's own event loop instead (see "Non-blocking calls" below): start
 * it, then poll the handle's fd for what it wants and call
 * cohort_client_process() until it is done. The blocking calls are that,
 * with poll().
 */
#ifndef COHORT_CLIENT_H
#define COHORT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "cohort.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Defaults of the options (0 in an option picks them). */
#define COHORT_CLIENT_DEADLINE_MS_DEFAULT 10000u
#define COHORT_CLIENT_ATTEMPT_TIMEOUT_MS_DEFAULT 1000u
#define COHORT_CLIENT_CONNECT_TIMEOUT_MS_DEFAULT 500u
#define COHORT_CLIENT_HEDGE_MS_DEFAULT 200u
/* hedge_ms: never hedge (wait the whole attempt timeout). */
#define COHORT_CLIENT_HEDGE_OFF UINT32_MAX
/* Members a handle knows, given and discovered. */
#define COHORT_CLIENT_MEMBERS_MAX 16u

struct cohort_client;

struct cohort_client_options {
    /* "host:port" client addresses of one or more members; the others
     * are discovered from INFO replication. Copied by open. */
    const char *const *members;
    size_t member_count;
    /* With password: log in as username ("AUTH username password"), or as
     * Redis's default user when username is NULL ("AUTH password"), on
     * every connection. NULL password: no AUTH. Copied by open. */
    const char *username;
    const char *password;
    /* A call's deadline from its start: past it the call fails with
     * -COHORT_ENOTAPPLIED or -COHORT_EUNKNOWN. */
    uint32_t deadline_ms;
    /* One attempt's wait for its reply before the library gives up on
     * that member and retries elsewhere (a frozen primary). */
    uint32_t attempt_timeout_ms;
    /* One TCP connect. */
    uint32_t connect_timeout_ms;
    /* Hedging: a write or linearizable read unanswered this long after it
     * was sent is sent again, the same COHORT.REQ <client-id>
     * <request-no>, to another member at once (which forwards it to the
     * primary it knows, or answers after the view change), while the
     * first connection stays open: the first answer of either is the
     * call's. The client table applies the request once, so a frozen or
     * cut-off primary costs about the failover instead of the attempt
     * timeout. Default 200 ms; COHORT_CLIENT_HEDGE_OFF (or any value not
     * below attempt_timeout_ms) never hedges. Local reads are not hedged
     * (they go round the members anyway). */
    uint32_t hedge_ms;
    /* Read your writes (default 1, set by cohort_client_options_init): the
     * first COHORT_CALL_READ_LOCAL read after a write of this handle
     * first asks the primary (linearizable COHORT.GET <the write's first
     * key> WITHREV) for the store revision, which covers the write, and
     * raises the minimum revision (cohort_client_set_min_revision) to it,
     * so a bounded-staleness read on any member sees the handle's own
     * writes. One round trip to the primary per run of writes, none for
     * the reads that follow. 0: local reads see what the member has,
     * bounded only by the revision the application sets. */
    int read_your_writes;
    /* TLS (nonzero tls): members are then the replicas' --tls-port
     * addresses, all of them (INFO names plain client addresses, so none
     * is discovered; the primary is found by asking each member's role).
     * The server certificate must chain to tls_ca_cert_file (NULL: the
     * system's CAs) and name the member's host (IP address or DNS name).
     * tls_cert_file and tls_key_file (PEM; NULL key: in the cert file)
     * give a client certificate, which --tls-auth-clients yes requires. */
    int tls;
    const char *tls_ca_cert_file;
    const char *tls_cert_file;
    const char *tls_key_file;
};

/* Fill o with the defaults and no members. */
COHORT_API void cohort_client_options_init(struct cohort_client_options *o);

/* Make a handle. No connection is made yet (the first call makes it), so
 * open fails only on bad options (-COHORT_EINVAL), TLS files that cannot
 * be loaded (-COHORT_ECONFIG; the reason goes to stderr, as there is no
 * handle to hold it) or memory. *out is NULL on failure. */
COHORT_API int cohort_client_open(struct cohort_client **out,
                                  const struct cohort_client_options *o);
/* Close the connections and free the handle. NULL does nothing. */
COHORT_API void cohort_client_close(struct cohort_client *c);

/* The latest failure's one-line message ("" before any); valid until the
 * next call on c. */
COHORT_API const char *cohort_client_error(const struct cohort_client *c);
/* This handle's client id (changes only after "session expired"). */
COHORT_API uint64_t cohort_client_id(const struct cohort_client *c);
/* The number the next write will carry. */
COHORT_API uint64_t
cohort_client_next_request_no(const struct cohort_client *c);
/* Change the deadline of the calls that follow (0: the default). */
COHORT_API void cohort_client_set_deadline(struct cohort_client *c,
                                           uint32_t deadline_ms);

/* Bounded staleness: from now on, reads with COHORT_CALL_READ_LOCAL are
 * answered only by a member that has applied at least revision (0: by any
 * member, the default; with the read_your_writes option, the library
 * raises it itself after the handle's writes). The library sends COHORT.APPLIED
 * revision before the read on the member's READONLY connection; a member that
 * is behind answers -TRYAGAIN and the read is retried (on the next member, with
 * backoff) until the call's deadline, whose error then names the last
 * member's revision. Revisions come from COHORT.GET key WITHREV (its
 * store-revision) or a watch event; read your writes needs nothing (the
 * read_your_writes option). */
COHORT_API void cohort_client_set_min_revision(struct cohort_client *c,
                                               uint64_t revision);
COHORT_API uint64_t cohort_client_min_revision(const struct cohort_client *c);

/* ------------------------------------------------------------ replies */

enum cohort_reply_type {
    COHORT_REPLY_STRING = 1, /* bulk string, verbatim string */
    COHORT_REPLY_STATUS = 2, /* +OK */
    COHORT_REPLY_ERROR = 3,  /* -ERR ..., whole text in str */
    COHORT_REPLY_INTEGER = 4,
    COHORT_REPLY_NIL = 5,
    COHORT_REPLY_ARRAY = 6, /* also RESP3 sets and pushes */
    COHORT_REPLY_MAP = 7,   /* elements alternate key, value */
    COHORT_REPLY_DOUBLE = 8,
    COHORT_REPLY_BOOLEAN = 9, /* integer is 1 or 0 */
};

/* One reply, a tree. str is NUL-terminated (len excludes the NUL) for
 * STRING, STATUS, ERROR and DOUBLE (its text); elements/element for ARRAY
 * and MAP (2 * pairs). Owned by the caller: cohort_reply_free(). */
struct cohort_reply {
    enum cohort_reply_type type;
    int64_t integer;
    double dbl;
    char *str;
    size_t len;
    size_t elements;
    struct cohort_reply **element;
};

COHORT_API void cohort_reply_free(struct cohort_reply *r);

/* ------------------------------------------------------------ calls */

enum cohort_call_flags {
    /* Wrap the command in COHORT.REQ and send it to the primary although
     * the library does not know it as a write (a newer server's write). */
    COHORT_CALL_WRITE = 1,
    /* A read served by any member from its own state (READONLY): spread
     * round robin over the members, faster, possibly stale, never
     * uncommitted. Without it reads are linearizable, at the primary. */
    COHORT_CALL_READ_LOCAL = 2,
};

/* Run one command: argv[0, argc) with lengths argv_len (NULL: each is a
 * C string). On 0, *reply holds the answer (which may be an error reply).
 * Connection state (AUTH, HELLO, SELECT, READONLY, CLIENT SETNAME) is the
 * library's: do not send it, it would not survive a reconnect. Nor the
 * subscribing commands (SUBSCRIBE, PSUBSCRIBE, COHORT.SUBSCRIBE): their
 * messages are not replies to calls; PUBLISH is a write, sent exactly
 * once like SET. */
COHORT_API int cohort_client_call(struct cohort_client *c, int flags, int argc,
                                  const char *const *argv,
                                  const size_t *argv_len,
                                  struct cohort_reply **reply);

/* GET key: 0 and a malloc'd copy in *value (NUL-terminated, size in *size,
 * which may be NULL), or -COHORT_ENOTFOUND for a missing key. flags as in
 * cohort_client_call (0 or COHORT_CALL_READ_LOCAL). */
COHORT_API int cohort_client_get(struct cohort_client *c, int flags,
                                 const char *key, char **value, size_t *size);
/* SET key value (exactly once). */
COHORT_API int cohort_client_set(struct cohort_client *c, const char *key,
                                 const void *value, size_t size);
/* INCRBY key by (exactly once); *value (may be NULL) gets the new value. */
COHORT_API int cohort_client_incrby(struct cohort_client *c, const char *key,
                                    int64_t by, int64_t *value);
/* INCR key: cohort_client_incrby(c, key, 1, value). */
COHORT_API int cohort_client_incr(struct cohort_client *c, const char *key,
                                  int64_t *value);

/* ------------------------------------------------------------ non-blocking */

/* One call at a time per handle, driven by the caller's loop:
 *
 *     cohort_client_start(c, 0, argc, argv, NULL);
 *     while ((rc = cohort_client_process(c, &reply)) == -COHORT_EAGAIN) {
 *         struct pollfd p = {cohort_client_fd(c), 0, 0};
 *         int w = cohort_client_wants(c);
 *         p.events = (w & COHORT_CLIENT_WANT_READ ? POLLIN : 0) |
 *                    (w & COHORT_CLIENT_WANT_WRITE ? POLLOUT : 0);
 *         poll(&p, p.fd >= 0, cohort_client_timeout_ms(c));
 *     }
 *
 * The fd, what it waits for and the timeout change as the call moves on
 * (reconnects open new sockets): ask again after every process. Name
 * resolution (getaddrinfo) blocks: give numeric member addresses to
 * keep a loop from ever blocking. */

#define COHORT_CLIENT_WANT_READ 1
#define COHORT_CLIENT_WANT_WRITE 2

/* Start a call (as cohort_client_call; the arguments are copied). 0, or
 * -COHORT_EINVAL (bad arguments, or a call is already in progress). */
COHORT_API int cohort_client_start(struct cohort_client *c, int flags, int argc,
                                   const char *const *argv,
                                   const size_t *argv_len);
/* Move the call on as far as it goes without blocking. -COHORT_EAGAIN:
 * not done, wait (fd, wants, timeout) and call again. Otherwise the
 * call's result, as cohort_client_call() returns it, with *reply set on
 * 0; the handle is then free for the next call. */
COHORT_API int cohort_client_process(struct cohort_client *c,
                                     struct cohort_reply **reply);
/* The socket to wait on, or -1 when only the timeout matters. */
COHORT_API int cohort_client_fd(const struct cohort_client *c);
/* COHORT_CLIENT_WANT_READ and/or COHORT_CLIENT_WANT_WRITE on the fd. */
COHORT_API int cohort_client_wants(const struct cohort_client *c);
/* Milliseconds until cohort_client_process() must run even if the fd is
 * quiet (a backoff, an attempt timeout, the deadline); 0: now. */
COHORT_API int cohort_client_timeout_ms(const struct cohort_client *c);

/* ------------------------------------------------------------ sessions */

/* A session (COHORT.SESSION) kept alive by the library: its ephemeral keys
 * (SET ... SESSION id), locks and group memberships last while it lives.
 *
 *     struct cohort_session *s;
 *     cohort_session_open(&s, &o, 10000, on_lost, ctx);  // OPEN, blocks
 *     cohort_session_start_thread(s);        // KEEPALIVE every TTL/3
 *     ... SET key value SESSION cohort_session_id(s) on any handle ...
 *     cohort_session_close(s);               // CLOSE: its keys go now
 *
 * A session object owns a client handle of its own (made from the same
 * options), so its KEEPALIVEs never wait behind the application's calls
 * and fail over like any call: each is COHORT.REQ-wrapped, retried on
 * another member until it is answered. The group extends every session by
 * one TTL at each new primary, so a session whose KEEPALIVEs keep coming
 * survives failovers (0 expiries measured across primary kills).
 *
 * Lost: only the group says a session ended ("no such session" to a
 * KEEPALIVE: it expired because no KEEPALIVE reached the group for a TTL,
 * as when this process was paused or cut off). The state becomes
 * COHORT_SESSION_LOST, on_lost (if not NULL) runs once, and keepalives
 * stop: the session's ephemeral keys and locks are gone; open a new one.
 * While no member answers the state stays LIVE (the group may still hold
 * it); cohort_session_last_ok_ms() says how long ago a KEEPALIVE was last
 * answered.
 *
 * Driving the keepalives, one of:
 *   - cohort_session_start_thread(): a background thread (on_lost runs on
 *     it). Then only cohort_session_id(), _state(), _keepalives(),
 *     _last_ok_ms() and _close() may be called, from any thread.
 *   - the caller's loop, as a non-blocking call: wait on
 *     cohort_session_fd() for cohort_session_wants() or
 *     cohort_session_timeout_ms(), then call cohort_session_process()
 *     (on_lost runs inside it). One thread at a time per session.
 */

struct cohort_session;

enum cohort_session_state {
    COHORT_SESSION_LIVE = 1,
    COHORT_SESSION_LOST = 2, /* the group ended it: keys and locks gone */
};

typedef void (*cohort_session_lost_fn)(struct cohort_session *s, void *ctx);

/* Open a session with a TTL of ttl_ms (100 ms to 24 h) through a handle
 * of its own made from o; blocks until the group answers or o's deadline.
 * 0, or the error of cohort_client_open/call (the message goes to stderr
 * when there is no session to hold it; -COHORT_EREPLY: the group refused,
 * e.g. a TTL out of range). *out is NULL on failure. */
COHORT_API int cohort_session_open(struct cohort_session **out,
                                   const struct cohort_client_options *o,
                                   uint32_t ttl_ms,
                                   cohort_session_lost_fn on_lost, void *ctx);
/* The session's id, for SET ... SESSION id, COHORT.LOCK, COHORT.GROUP. */
COHORT_API uint64_t cohort_session_id(const struct cohort_session *s);
COHORT_API enum cohort_session_state
cohort_session_state(const struct cohort_session *s);
/* KEEPALIVEs answered so far. */
COHORT_API uint64_t cohort_session_keepalives(const struct cohort_session *s);
/* Milliseconds since the last answered KEEPALIVE (or the OPEN). */
COHORT_API uint64_t cohort_session_last_ok_ms(const struct cohort_session *s);
/* Keep the session alive from a background thread. 0, or -COHORT_EINVAL
 * (started already, or lost), -COHORT_ENOMEM/-COHORT_EIO (no thread). */
COHORT_API int cohort_session_start_thread(struct cohort_session *s);
/* Poll-loop driving (not with the thread): move the keepalives on without
 * blocking. -COHORT_EAGAIN while the session lives (wait and call again),
 * -COHORT_ENOTFOUND once it is lost. */
COHORT_API int cohort_session_process(struct cohort_session *s);
/* The socket to wait on (-1: only the timeout matters), what for
 * (COHORT_CLIENT_WANT_*), and the milliseconds until process must run. */
COHORT_API int cohort_session_fd(const struct cohort_session *s);
COHORT_API int cohort_session_wants(const struct cohort_session *s);
COHORT_API int cohort_session_timeout_ms(const struct cohort_session *s);
/* The latest keepalive failure's one-line message ("" before any). Not
 * while the thread runs. */
COHORT_API const char *cohort_session_error(const struct cohort_session *s);
/* Stop the thread, CLOSE the session if it lives (its ephemeral keys are
 * deleted now, not at expiry; blocks up to the deadline), free it. 0, or
 * the CLOSE's error (the session then expires after its TTL). NULL: 0. */
COHORT_API int cohort_session_close(struct cohort_session *s);

/* ------------------------------------------------------------ watches */

/* A watch (COHORT.WATCH) on a key, a prefix or a group's views that
 * survives failovers,
 * member restarts and cut links: the library remembers the last revision
 * it delivered and, on a new connection to any member, asks for the
 * changes after it (FROM), dropping the ones it already delivered, so the
 * callback sees every change once, in revision order.
 *
 *     static void on_event(struct cohort_watch *w,
 *                          const struct cohort_watch_event *e, void *ctx)
 *     { printf("%llu %s\n", (unsigned long long)e->revision, e->key); }
 *     struct cohort_watch *w;
 *     cohort_watch_open(&w, &o, COHORT_WATCH_PREFIX, "jobs/", 5, 0,
 *                       on_event, NULL);
 *     for (;;)
 *         if (cohort_watch_run(w, 1000) != 0) break;   // a refusal
 *     cohort_watch_close(w);
 *
 * Each watch has its own connection (COHORT.WATCH FROM needs one without
 * watches), to the given members in turn (give them all: a watch does not
 * discover members). A member that stays quiet is PINGed every
 * attempt_timeout_ms and left for the next one after 3 times that without
 * a byte. A member serves a watch from its own applied state, so a backup
 * delivers a change when it has applied it.
 *
 * The watch ends only on a refusal, which is returned by
 * cohort_watch_run()/process() with the group's message in
 * cohort_watch_error():
 *   -COHORT_ENOTFOUND  the changes after the last delivered revision are
 *                      compacted on the members asked (as etcd's
 *                      ErrCompacted): re-read the keys (COHORT.GET key
 *                      WITHREV) and watch again from the revision read;
 *   -COHORT_EREPLY     another refusal (NOPERM, a name too long).
 * Threads: one thread at a time per watch; the callback runs inside
 * cohort_watch_run()/process() and must not close the watch. */

struct cohort_watch;

enum cohort_watch_kind {
    COHORT_WATCH_SET = 1,
    COHORT_WATCH_DEL = 2,    /* any removal but expiry (DEL, FLUSHALL...) */
    COHORT_WATCH_EXPIRE = 3, /* the key's TTL passed */
    COHORT_WATCH_VIEW = 4,   /* a group watch: the group's new view */
};

/* One member of a group's view: its name and data (COHORT.GROUP JOIN). */
struct cohort_watch_member {
    const char *name;
    size_t name_len;
    const char *data;
    size_t data_len;
};

/* One change. Everything points into the library's buffers, valid during
 * the callback. value is NULL for DEL, EXPIRE and VIEW. For VIEW (a
 * COHORT_WATCH_GROUP watch), key is the group, revision the view (the
 * number COHORT.GROUP JOIN and VIEW answer) and members[0, member_count)
 * the members in join order (none when the last one left); otherwise
 * member_count is 0. */
struct cohort_watch_event {
    uint64_t revision;
    enum cohort_watch_kind kind;
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
    size_t member_count;
    const struct cohort_watch_member *members;
};

typedef void (*cohort_watch_fn)(struct cohort_watch *w,
                                const struct cohort_watch_event *e, void *ctx);

/* Flags of cohort_watch_open. */
#define COHORT_WATCH_PREFIX 1 /* name is a prefix ("" watches every key) */
#define COHORT_WATCH_AFTER 2  /* start after revision after (else: now) */
/* name is a group (COHORT.WATCH GROUP): one COHORT_WATCH_VIEW event per
 * new view of it, resumed like a key's. To start from the current view,
 * read it (COHORT.GROUP VIEW g answers [view, members]) and watch with
 * COHORT_WATCH_AFTER from that view. Not with COHORT_WATCH_PREFIX. */
#define COHORT_WATCH_GROUP 4

/* Make a watch on name (name_len bytes). No connection is made yet: the
 * first cohort_watch_run()/process() makes it. Without COHORT_WATCH_AFTER
 * the watch starts at the revision the first member it reaches has
 * applied. 0, -COHORT_EINVAL (bad options or arguments), -COHORT_ENOMEM,
 * -COHORT_ECONFIG (TLS files). */
COHORT_API int cohort_watch_open(struct cohort_watch **out,
                                 const struct cohort_client_options *o,
                                 int flags, const char *name, size_t name_len,
                                 uint64_t after, cohort_watch_fn on_event,
                                 void *ctx);
/* Deliver events for up to timeout_ms (blocking): 0 when the time is up,
 * or the refusal that ended the watch. */
COHORT_API int cohort_watch_run(struct cohort_watch *w, int timeout_ms);
/* Non-blocking: deliver what has arrived. -COHORT_EAGAIN (wait on fd,
 * wants, timeout_ms and call again) or the refusal that ended it. */
COHORT_API int cohort_watch_process(struct cohort_watch *w);
COHORT_API int cohort_watch_fd(const struct cohort_watch *w);
COHORT_API int cohort_watch_wants(const struct cohort_watch *w);
COHORT_API int cohort_watch_timeout_ms(const struct cohort_watch *w);
/* The highest revision delivered (or the starting point; 0 before the
 * first member confirmed a watch started "now"). */
COHORT_API uint64_t cohort_watch_revision(const struct cohort_watch *w);
/* The member the watch is connected to, or last tried ("host:port"). */
COHORT_API const char *cohort_watch_member(const struct cohort_watch *w);
/* Connections made after the first (resumes). */
COHORT_API uint64_t cohort_watch_resumes(const struct cohort_watch *w);
/* The refusal's, or the latest reconnect's, one-line message. */
COHORT_API const char *cohort_watch_error(const struct cohort_watch *w);
/* Close the connection and free the watch. NULL does nothing. */
COHORT_API void cohort_watch_close(struct cohort_watch *w);

#ifdef __cplusplus
}
#endif

#endif
