/* client/internal — the handle of libcohort-client, shared by the files of
 * src/client. The public contract is include/cohort_client.h.
 *
 * Invariants: (1) client_id != 0 and next_request_no >= 1; (2) primary is
 * a member index or -1 (unknown), and the write connection, when open, is
 * to member wconn.member; (3) member_count <= COHORT_CLIENT_MEMBERS_MAX and
 * the first given_count members are the caller's, the rest discovered. */
#ifndef COHORT_CLIENT_INTERNAL_H
#define COHORT_CLIENT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "client/conn.h"
#include "client/discover.h"
#include "cohort_client.h"
#include "common/err.h"
#include "common/resp.h"

struct cohort_client {
    char members[COHORT_CLIENT_MEMBERS_MAX][CLIENT_ADDR_MAX];
    uint32_t member_count;
    uint32_t given_count;
    char *username; /* owned; NULL: the default user */
    char *password; /* owned; NULL: no AUTH */
    uint32_t deadline_ms;
    uint32_t attempt_timeout_ms;
    uint32_t connect_timeout_ms;

    uint64_t client_id;
    uint64_t next_request_no;

    int primary;       /* member index, -1: unknown */
    uint32_t next_try; /* the member to try when the primary is unknown */
    uint32_t next_read;
    struct client_conn wconn;                             /* writes */
    struct client_conn rconns[COHORT_CLIENT_MEMBERS_MAX]; /* READONLY */

    struct resp_buf out; /* the command being sent */
    struct resp_arg *args;
    uint32_t arg_capacity;
    struct cohort_err err;
    struct cohort_err attempt_err; /* the latest attempt's failure */
};

/* 64 random bits, never 0. */
uint64_t client_random_id(void);

#endif
