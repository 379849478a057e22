/* linearize — a linearizability checker for client histories recorded by the
 * simulator, over the key-value model of the coordination store.
 *
 * The model: each key holds either nothing (absent) or an int64, and starts
 * absent. Operations follow Redis:
 *     GET           returns absent or the value
 *     SET v         stores v; returns OK (result not checked)
 *     CAS exp new   stores new only if the key exists and equals exp;
 *                   returns 1 if it stored, else 0 (absent never matches)
 *     INCR d        absent counts as 0; stores and returns the sum. An INCR
 *                   that would overflow fails in Redis and changes nothing,
 *                   so an ok INCR never overflows in the model
 *     DEL           removes the key; returns 1 if it existed, else 0
 *     CLEAR         removes the key; returns OK (result not checked): one
 *                   key's share of a FLUSHALL. A FLUSHALL is recorded as a
 *                   CLEAR of every key, each linearized on its own, which
 *                   checks each key but not that the flush removed them all
 *                   at one instant (sound: the projection of a linearizable
 *                   history onto one key is linearizable)
 *
 * Keys are independent, so the history is checked one key at a time
 * (locality, Herlihy & Wing 1990; P-compositionality): a history is
 * linearizable exactly when every key's sub-history is.
 *
 * Per key the search is Wing & Gong's with Lowe's memoization, as in
 * Porcupine and Knossos' "wgl" checker: call and return events sorted by
 * time in one list; a depth-first search that linearizes a pending op only
 * while no response has passed, lifting the op's events out of the list; a
 * cache of failed configurations (set of linearized ops, model state) so
 * that none is explored twice. The cache also prunes a configuration that
 * differs from a failed one only by having spent more unknown ops, which
 * keeps histories with many timeouts tractable.
 *
 * Time: op A precedes op B in real time only if A.response < B.invoke; ops
 * that touch at one instant are treated as concurrent (the lenient choice:
 * the checker never fails a history because of a tie).
 *
 * Unknown outcome (timeout, lost connection): the op may take effect at any
 * point after its invoke, or never, and its result is not checked. It has
 * no return event, so a key passes once every ok op is linearized. An
 * unknown GET changes nothing and is skipped.
 *
 * Cost: the search is exponential in the worst case (NP-complete, Gibbons &
 * Korach 1997), so it is bounded by a budget of explored configurations per
 * key; hitting it is reported as inconclusive, never as a failure. What
 * drives the cost is how many ops on one key overlap: a few hundred ops with
 * up to ~10 clients in flight take thousands of configurations to accept;
 * refuting a history, or many unknown ops, can take much more. Each
 * configuration costs well under a microsecond and, in the cache, about
 * (ops of the key / 8 + 64) bytes. */
#ifndef COHORT_SIM_LINEARIZE_H
#define COHORT_SIM_LINEARIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Under a second and about 100 MB at a few hundred ops per key. */
#define LIN_BUDGET_DEFAULT 1000000u
#define LIN_BUDGET_UNLIMITED UINT64_MAX
#define LIN_MESSAGE_MAX 512

enum lin_kind {
    LIN_GET = 1,
    LIN_SET = 2,  /* arg1: value */
    LIN_CAS = 3,  /* arg1: expected, arg2: new */
    LIN_INCR = 4, /* arg1: delta (may be negative) */
    LIN_DEL = 5,
    LIN_CLEAR = 6, /* result not checked */
};

/* One client operation as the client saw it. */
struct lin_op {
    uint64_t key;
    enum lin_kind kind;
    int64_t arg1;
    int64_t arg2;
    uint64_t invoke;    /* virtual time the request was sent */
    uint64_t response;  /* virtual time the reply arrived; >= invoke.
                         * Ignored when unknown. */
    bool unknown;       /* no reply: may or may not have taken effect */
    bool result_absent; /* GET only: the key was absent */
    int64_t result;     /* GET: the value; CAS, DEL: 0 or 1; INCR: the new
                         * value; SET: ignored. Ignored when unknown. */
    uint64_t id;        /* the caller's name for the op, used in messages;
                         * ties in the search are broken by it */
};

struct lin_result {
    bool ok;      /* false only if some key was proven not linearizable */
    bool gave_up; /* some key hit the budget; its verdict is unknown */
    uint64_t key; /* the failing key, else the first key that gave up */
    uint64_t ops_checked;          /* ops in the keys that were checked */
    uint64_t states_explored;      /* configurations, summed over keys */
    char message[LIN_MESSAGE_MAX]; /* one paragraph for a human */
};

/* Check a whole history: ops in any order, any mix of keys. Keys are
 * checked in ascending order and checking stops at the first key that is
 * not linearizable; the message then names it, the op that could not be
 * linearized (the smallest id among equals), the deepest linearizable prefix
 * found and the ops pending there. budget bounds the configurations explored
 * per key (LIN_BUDGET_UNLIMITED for no bound).
 *
 * Borrows ops for the call only. Allocates its working memory and frees it
 * before returning; asserts that allocation succeeds (simulator code). */
void lin_check(const struct lin_op *ops, size_t count, uint64_t budget,
               struct lin_result *out);

/* Describe one op for a message: "op 12 GET -> 5 [40,50]". Returns buf. */
const char *lin_op_describe(const struct lin_op *op, char *buf, size_t size);

#endif
