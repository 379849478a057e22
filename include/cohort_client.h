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
 * same way; they change nothing.
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

#ifdef __cplusplus
}
#endif

#endif
