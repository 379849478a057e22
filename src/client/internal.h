/* client/internal — the handle of libcohort-client, shared by the files of
 * src/client. The public contract is include/cohort_client.h.
 *
 * Invariants: (1) client_id != 0 and next_request_no >= 1; (2) primary is
 * a member index or -1 (unknown), and the write connection, when open, is
 * to member wconn.member; (3) member_count <= COHORT_CLIENT_MEMBERS_MAX and
 * the first given_count members are the caller's, the rest discovered;
 * (4) phase != IDLE exactly while a call is started and not yet handed
 * over by cohort_client_process(), and in CONNECT..REQUEST conn is open;
 * (5) linger is open only while a call is in progress (phase != IDLE and
 * != DONE), and then it is not conn. */
#ifndef COHORT_CLIENT_INTERNAL_H
#define COHORT_CLIENT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "client/call.h"
#include "client/conn.h"
#include "client/discover.h"
#include "cohort_client.h"
#include "common/err.h"
#include "common/resp.h"

/* Where the call in progress is (engine.c). */
enum client_phase {
    CLIENT_PHASE_IDLE = 0,  /* no call */
    CLIENT_PHASE_BACKOFF,   /* waiting for call.retry_at_ms */
    CLIENT_PHASE_CONNECT,   /* a non-blocking connect */
    CLIENT_PHASE_HANDSHAKE, /* the TLS handshake */
    CLIENT_PHASE_AUTH,      /* AUTH sent */
    CLIENT_PHASE_INFO,      /* INFO replication sent (discovery) */
    CLIENT_PHASE_READONLY,  /* READONLY sent */
    CLIENT_PHASE_APPLIED,   /* COHORT.APPLIED, then the read, sent */
    CLIENT_PHASE_REQUEST,   /* the command sent */
    CLIENT_PHASE_DONE,      /* result (and reply) ready to hand over */
};

struct cohort_client {
    char members[COHORT_CLIENT_MEMBERS_MAX][CLIENT_ADDR_MAX];
    uint32_t member_count;
    uint32_t given_count;
    char *username; /* owned; NULL: the default user */
    char *password; /* owned; NULL: no AUTH */
    uint32_t deadline_ms;
    uint32_t attempt_timeout_ms;
    uint32_t connect_timeout_ms;
    uint32_t hedge_ms; /* COHORT_CLIENT_HEDGE_OFF: never */
    void *tls_ctx;     /* SSL_CTX *, owned; NULL: plain TCP */

    uint64_t client_id;
    uint64_t next_request_no;
    /* Local reads only from a member that applied at least this (0: any). */
    uint64_t min_revision;
    /* Read your writes: a write ended since the primary was last asked
     * for its revision, so the next local read asks first (probing). */
    bool read_your_writes;
    bool revision_wanted;
    char *probe_key; /* owned: the last write's first key (NULL: "") */
    size_t probe_key_len;
    struct resp_arg probe_args[3]; /* COHORT.GET key WITHREV */

    int primary;            /* member index, -1: unknown */
    bool primary_confirmed; /* INFO named it (else a member that forwards) */
    uint32_t next_try;      /* the member to try when the primary is unknown */
    uint32_t next_read;
    struct client_conn wconn;                             /* writes */
    struct client_conn rconns[COHORT_CLIENT_MEMBERS_MAX]; /* READONLY */
    /* A hedged attempt's write connection, open while it may still answer
     * (its request sent whole, unanswered), and its member: writes and
     * discovery avoid that member while it is open. */
    struct client_conn linger;
    uint32_t linger_member;

    /* The call in progress (engine.c). */
    enum client_phase phase;
    struct client_call call;
    bool is_write, local;
    /* Asking the primary for its revision before a local read (read your
     * writes): the call runs COHORT.GET probe_key WITHREV first. */
    bool probing;
    uint64_t hedge_at_ms; /* the attempt's hedge time (UINT64_MAX: none) */
    /* After a hedge: until then, a member that names the hedged member as
     * primary is asked again every CLIENT_REASK_MS instead of forwarding. */
    uint64_t reask_until_ms;
    bool discovering;         /* ask INFO replication after login */
    uint32_t hops;            /* TLS: members asked for their role */
    struct client_conn *conn; /* the attempt's connection */
    uint64_t attempt_deadline_ms;
    uint64_t connect_deadline_ms;
    bool request_flushed;  /* the command was handed to the kernel whole */
    char name[32];         /* the command's name, for messages */
    struct resp_arg *args; /* 3 reserved slots, then the caller's copies */
    uint32_t argc;         /* the caller's */
    uint32_t arg_capacity;
    char *arg_bytes; /* owned copies of the caller's arguments */
    size_t arg_bytes_capacity;
    struct cohort_reply *reply; /* CLIENT_PHASE_DONE: the answer */
    int result;                 /* CLIENT_PHASE_DONE: the call's result */

    struct cohort_err err;
    struct cohort_err attempt_err; /* the latest attempt's failure */
    /* The call's first attempt that failed on a member's TLS certificate:
     * named in the final error even if later attempts failed otherwise
     * (a timeout as the deadline ran out), since it is what to fix. */
    struct cohort_err cert_err;
    /* The call's latest COHORT.APPLIED refusal (a member behind the
     * minimum revision): named in the final error too, since an attempt
     * cut short by the deadline says less. */
    struct cohort_err behind_err;
};

/* Milliseconds until the call must move on (cohort_client_timeout_ms);
 * capped: the caller polls only cohort_client_fd(), not a hedged
 * attempt's connection, which is then read at least every
 * CLIENT_LINGER_POLL_MS. */
int client_timeout_ms(const struct cohort_client *c, bool capped);
#define CLIENT_LINGER_POLL_MS 10
#define CLIENT_REASK_MS 20
/* 64 random bits, never 0. */
uint64_t client_random_id(void);
/* Abandon the call in progress (if any): its connection is closed, a write
 * gives up its request number, and the handle is free for the next call. */
void client_call_abort(struct cohort_client *c);

#endif
