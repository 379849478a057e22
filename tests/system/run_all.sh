#!/bin/sh
# Run every system test against one cohort binary and print "N passed, M
# failed" (skipped tests are counted apart). Usage:
#     tests/system/run_all.sh [path/to/cohort] [test name ...]
# e.g. tests/system/run_all.sh build/cohort failover bad_input
# Each test's full output goes to stdout; COHORT_TEST_KEEP_ON_FAIL=1 keeps the
# data and logs of a failing test.
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../../build/cohort}
[ $# -gt 0 ] && shift
case $bin in /*) ;; *) bin=$(pwd)/$bin ;; esac
if [ $# -gt 0 ]; then
    tests="$*"
else
    tests="failover restart_catchup total_crash corruption redis_tools bad_input pause"
fi
PYTHONDONTWRITEBYTECODE=1
export PYTHONDONTWRITEBYTECODE
py=${PYTHON3:-python3}

passed=0 failed=0 skipped=0 failures=""
if "$py" "$here/resp.py" --selftest; then
    passed=$((passed + 1))
else
    failed=$((failed + 1)); failures="$failures resp_selftest"
fi
for t in $tests; do
    echo "=== $t"
    start=$(date +%s)
    "$py" "$here/test_$t.py" "$bin"
    rc=$?
    echo "=== $t: exit $rc after $(( $(date +%s) - start ))s"
    case $rc in
        0) passed=$((passed + 1)) ;;
        77) skipped=$((skipped + 1)) ;;
        *) failed=$((failed + 1)); failures="$failures $t" ;;
    esac
done
summary="$passed passed, $failed failed"
[ $skipped -gt 0 ] && summary="$summary, $skipped skipped"
[ -n "$failures" ] && summary="$summary (failed:$failures)"
echo "$summary"
[ $failed -eq 0 ]
