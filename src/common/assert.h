/* assert — always-on assertions. ASSERT() stays in release builds: a broken
 * invariant in a replicated system must stop the replica, not corrupt the
 * group. DEBUG_ASSERT() is for slow checks and only runs in test/sim builds
 * (COHORT_DEBUG_ASSERT). */
#ifndef COHORT_ASSERT_H
#define COHORT_ASSERT_H

#include <assert.h>

_Noreturn void cohort_assert_fail(const char *expr, const char *file, int line);

/* Optional context printed with a failed assertion (replica, view, op);
 * the simulator sets it before each step. Borrowed, may be NULL. */
extern const char *cohort_assert_context;

#define ASSERT(expr)                                                           \
    ((expr) ? (void)0 : cohort_assert_fail(#expr, __FILE__, __LINE__))

#if defined(COHORT_DEBUG_ASSERT) && COHORT_DEBUG_ASSERT
#define DEBUG_ASSERT(expr) ASSERT(expr)
#else
#define DEBUG_ASSERT(expr) ((void)0)
#endif

#define UNREACHABLE() cohort_assert_fail("unreachable", __FILE__, __LINE__)

#endif
