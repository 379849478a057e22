#!/usr/bin/env bash
# tests/tidy/run.sh — proves that scripts/tidy.sh fails on each kind of
# violation it exists to catch, and passes the clean tree and the allowed
# patterns. Each case copies the checker and src/core, src/common into a
# temp tree, adds one snippet as a new file, runs tidy.sh there and checks
# its exit status (and, for a failure, that it names the file).
#
# Usage: tests/tidy/run.sh [repo root]   (ctest: label tidy)
set -euo pipefail
root=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cohort-tidy-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failures=0
cases=0

fresh_tree() {
    rm -rf "$tmp/tree"
    mkdir -p "$tmp/tree/scripts" "$tmp/tree/src"
    cp "$root/scripts/tidy.sh" "$root/scripts/tidy.awk" "$tmp/tree/scripts/"
    cp -r "$root/src/core" "$root/src/common" "$tmp/tree/src/"
}

# expect NAME pass|fail DIR SNIPPET: add SNIPPET as src/DIR/tidy_case.c.
expect() {
    local name=$1 want=$2 dir=$3 snippet=$4
    cases=$((cases + 1))
    fresh_tree
    if [ -n "$snippet" ]; then
        printf '%s\n' "$snippet" >"$tmp/tree/src/$dir/tidy_case.c"
    fi
    local rc=0
    "$tmp/tree/scripts/tidy.sh" >"$tmp/out" 2>&1 || rc=$?
    local ok=1
    if [ "$want" = pass ] && [ $rc -ne 0 ]; then
        ok=0
    elif [ "$want" = fail ]; then
        if [ $rc -eq 0 ] || ! grep -q "tidy_case.c:[0-9]" "$tmp/out"; then
            ok=0
        fi
    fi
    if [ $ok -eq 1 ]; then
        echo "ok   $name ($want, exit $rc)"
    else
        echo "FAIL $name: expected $want, tidy.sh exited $rc:"
        sed 's/^/     /' "$tmp/out"
        failures=$((failures + 1))
    fi
}

expect clean_tree_passes pass core ""

expect malloc_in_a_step_function_fails fail core '
#include <stdlib.h>
void bad_step(int n);
void bad_step(int n)
{
    char *p = malloc((size_t)n);
    free(p);
}'

expect helper_used_only_by_init_may_allocate pass core '
#include <stdlib.h>
int *bad_init(void);
static int *helper(void)
{
    return calloc(4, sizeof(int));
}
int *bad_init(void)
{
    return helper();
}'

expect helper_also_used_by_step_fails fail core '
#include <stdlib.h>
int *bad_init(void);
int *bad_step(void);
static int *helper(void)
{
    return calloc(4, sizeof(int));
}
int *bad_init(void)
{
    return helper();
}
int *bad_step(void)
{
    return helper();
}'

expect helper_of_a_helper_of_step_fails fail core '
#include <stdlib.h>
void bad_step(void);
static void *inner(void)
{
    return malloc(1);
}
static void *outer(void)
{
    return inner();
}
void bad_step(void)
{
    free(outer());
}'

expect helper_whose_address_is_taken_fails fail core '
#include <stdlib.h>
int *bad_init(void);
static int *helper(void)
{
    return calloc(4, sizeof(int));
}
int *(*const bad_table[])(void) = {helper};
int *bad_init(void)
{
    return helper();
}'

expect realloc_on_one_line_with_other_code_fails fail core '
#include <stdlib.h>
void bad_grow(char **p);
void bad_grow(char **p) { *p = realloc(*p, 64); }'

expect clock_in_core_fails fail core '
#include <time.h>
long bad_now(void);
long bad_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec;
}'

expect printf_in_a_static_inline_function_fails fail core '
static inline void bad_trace(int x)
{
    printf("%d\n", x);
}'

expect getenv_in_common_fails fail common '
#include <stdlib.h>
const char *bad_home(void);
const char *bad_home(void)
{
    return getenv("HOME");
}'

expect pthread_in_core_fails fail core '
#include <pthread.h>
void bad_lock(pthread_mutex_t *m);
void bad_lock(pthread_mutex_t *m)
{
    pthread_mutex_lock(m);
}'

expect names_in_comments_and_strings_pass pass core '
/* clock_gettime(CLOCK_MONOTONIC) and malloc(n) belong elsewhere:
 * read(2), write(2) and printf("x") too. */
const char *bad_text(void);
const char *bad_text(void)
{
    return "malloc(1) printf(x) time(NULL)"; // free(p)
}'

expect member_functions_named_like_io_pass pass core '
struct bad_io {
    int (*write)(int);
    int (*read)(int);
};
int bad_call(struct bad_io *io);
int bad_call(struct bad_io *io)
{
    return io->write(1) + io->read(2);
}'

expect tidy_allow_marker_exempts_the_next_line pass core '
#include <stdio.h>
void bad_report(int x);
void bad_report(int x)
{
    /* tidy: allow printing: this test says why. */
    printf("%d\n", x);
}'

expect tidy_allow_marker_exempts_one_line_only fail core '
#include <stdio.h>
void bad_report(int x);
void bad_report(int x)
{
    /* tidy: allow printing: this test says why. */
    printf("%d\n", x);
    printf("%d\n", x + 1);
}'

# A broken checker must not pass: without its awk program tidy.sh fails.
cases=$((cases + 1))
fresh_tree
rm "$tmp/tree/scripts/tidy.awk"
if "$tmp/tree/scripts/tidy.sh" >"$tmp/out" 2>&1; then
    echo "FAIL a_missing_checker_fails: tidy.sh passed without tidy.awk"
    failures=$((failures + 1))
else
    echo "ok   a_missing_checker_fails"
fi

echo "tidy tests: $((cases - failures)) of $cases passed"
[ $failures -eq 0 ]
