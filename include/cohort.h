/* cohort.h — the public API of libcohort, the replication library.
 *
 * An application hands cohort a deterministic state machine and gets a
 * replicated group: failure detection, views with notifications, total-order
 * delivery of commands, a durable log, snapshots, state transfer and
 * exactly-once client requests. This header holds what every user of the
 * library sees: error codes, the state machine interface and the view
 * notification. The protocol core itself lives in src/core.
 */
#ifndef COHORT_H
#define COHORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define COHORT_API __attribute__((visibility("default")))

#ifndef COHORT_VERSION
#define COHORT_VERSION "0.1.0"
#endif

/* Error codes. Functions return 0 on success or a negative code. The table
 * gives each code its name (for logs and RESP errors) and a message. */
#define COHORT_ERRORS(X)                                                       \
    X(EINVAL, 1, "invalid argument")                                           \
    X(ENOMEM, 2, "out of memory")                                              \
    X(EIO, 3, "input/output error")                                            \
    X(ENOSPC, 4, "no space left on device")                                    \
    X(ECORRUPT, 5, "corrupt data (checksum mismatch)")                         \
    X(ETOOBIG, 6, "too big")                                                   \
    X(EPROTO, 7, "protocol error")                                             \
    X(EAGAIN, 8, "try again")                                                  \
    X(ENOTFOUND, 9, "not found")                                               \
    X(EEXIST, 10, "already exists")                                            \
    X(ENOTPRIMARY, 11, "not the primary")                                      \
    X(ECONFIG, 12, "bad configuration")                                        \
    X(EADDRINUSE, 13, "address in use")                                        \
    X(ENOTSUP, 14, "not supported")                                            \
    X(ECLOSED, 15, "closed")                                                   \
    X(ENOTAPPLIED, 16, "no answer before the deadline; not applied")           \
    X(EUNKNOWN, 17, "no answer before the deadline; may have been applied")    \
    X(EAUTH, 18, "authentication refused")                                     \
    X(EREPLY, 19, "the server answered with an error")

enum cohort_error {
#define COHORT_ERROR_ENUM(name, code, text) COHORT_##name = code,
    COHORT_ERRORS(COHORT_ERROR_ENUM)
#undef COHORT_ERROR_ENUM
};

/* The message for a (positive or negative) error code; never NULL. */
COHORT_API const char *cohort_strerror(int code);
/* The code's name without the COHORT_ prefix ("EIO"); never NULL. */
COHORT_API const char *cohort_err_name(int code);
/* The library version, "MAJOR.MINOR.PATCH". */
COHORT_API const char *cohort_version(void);

/* A replica's role in the current view, as reported to the application. */
enum cohort_role {
    COHORT_ROLE_PRIMARY = 1,
    COHORT_ROLE_BACKUP = 2,
    COHORT_ROLE_RECOVERING = 3,
    COHORT_ROLE_VIEW_CHANGE = 4,
    /* A member of the epoch that receives the log but never votes. */
    COHORT_ROLE_LEARNER = 5,
    /* Not in the epoch's membership: a spare, or removed. */
    COHORT_ROLE_OUTSIDE = 6,
};

#define COHORT_REPLICAS_MAX 7
/* "No replica" in a replica index field. */
#define COHORT_REPLICA_NONE 0xffffffffu

/* Why a replica left its view, as that replica knows it. */
enum cohort_view_cause {
    COHORT_VIEW_CAUSE_UNKNOWN = 0,
    /* Replica `by` heard nothing from `suspect`, the primary of
     * `from_view`, for silence_ms. */
    COHORT_VIEW_CAUSE_SUSPECTED = 1,
    /* The primary (`by`) heard from too few backups for silence_ms. */
    COHORT_VIEW_CAUSE_LOST_QUORUM = 2,
    /* A quorum of replicas asked for a new view (START-VIEW-CHANGE),
     * replica `by` first; this replica had not suspected anyone. */
    COHORT_VIEW_CAUSE_VOTES = 3,
    /* The view change to `from_view` did not finish within silence_ms
     * (`suspect`: the primary it was waiting for). */
    COHORT_VIEW_CAUSE_TIMEOUT = 4,
    /* This replica restarted and learned the view from a quorum. */
    COHORT_VIEW_CAUSE_RECOVERY = 5,
    /* A message of the new view from `by`, its primary: this replica
     * missed the view change (it was cut off or paused). */
    COHORT_VIEW_CAUSE_LEARNED = 6,
    /* Replica `by`, the primary of `from_view`, resigned: it asked for a
     * view that replica `suspect` leads (a leadership transfer, `cohort
     * transfer`; at the old primary silence_ms is how long it drained). */
    COHORT_VIEW_CAUSE_TRANSFER = 7,
    /* A membership change committed: the epoch changed, and view 0 of the
     * new epoch (led by `by`) began; from_view is the last view of the
     * epoch before. */
    COHORT_VIEW_CAUSE_EPOCH = 8,
    /* A membership change that swapped one voter for a learner committed (a
     * spare replacing a silent voter, or `cohort replace`): `suspect` is the
     * voter that became a learner, `by` leads the new epoch's first view;
     * from_view as for EPOCH. */
    COHORT_VIEW_CAUSE_REPLACEMENT = 9,
};

struct cohort_view_why {
    enum cohort_view_cause cause;
    uint64_t from_view;  /* the view this replica left */
    uint32_t by;         /* COHORT_REPLICA_NONE if none */
    uint32_t suspect;    /* COHORT_REPLICA_NONE if none */
    uint32_t silence_ms; /* SUSPECTED, LOST_QUORUM, TIMEOUT */
    /* SUSPECTED: the failure detector's timeout for the suspect; a silence
     * shorter than it means a hint (its peer port refused connections). */
    uint32_t timeout_ms;
};

/* A view notification: every change of epoch, view or primary is reported
 * with the member list and each member's role as this replica knows it,
 * and why the replica left its previous view. */
struct cohort_view_info {
    uint64_t epoch;
    uint64_t view;
    uint32_t primary; /* replica index of the primary of this view */
    uint32_t self;    /* replica index of the reporting replica */
    uint32_t replica_count;
    enum cohort_role roles[COHORT_REPLICAS_MAX];
    struct cohort_view_why why;
};

/* The application's deterministic state machine. apply() must depend only on
 * the state and its arguments: it never reads a clock or random numbers. The
 * timestamp is the one the primary stamped on the batch (milliseconds of log
 * time, monotonic across views) and is the only time apply() may use.
 *
 * apply() writes its reply into reply (capacity reply_size_max) and returns
 * the reply's size; a reply that does not fit is the application's bug. */
struct cohort_sm {
    void *ctx;
    size_t (*apply)(void *ctx, uint64_t op, uint64_t timestamp_ms,
                    const uint8_t *body, size_t body_size, uint8_t *reply,
                    size_t reply_size_max);
};

#ifdef __cplusplus
}
#endif

#endif /* COHORT_H */
