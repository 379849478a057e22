#!/usr/bin/env bash
# fuzz.sh — run libFuzzer targets one after another (make fuzz calls it).
#
#   scripts/fuzz.sh BUILD_DIR SECONDS TARGET...
#
# Each target <t> runs for SECONDS with the checked-in seed corpus
# tests/fuzz/corpus/<t> (read only) and a working corpus BUILD_DIR/corpus/<t>
# that keeps what libFuzzer finds across runs. A crash leaves its input in
# BUILD_DIR/crashes/<t>/ (crash-*, leak-*, timeout-*); replay it with
# BUILD_DIR/<t>_fuzz FILE, or with any build's <t>_fuzz_smoke --inputs 0
# FILE, and add it to tests/fuzz/corpus/<t>/ as regression-<what> once
# fixed. One line per target: CPU seconds, executions, crash files. Exits 1
# if any target crashed. FUZZ_NICE (default 0) is passed to nice; FUZZ_ARGS
# are extra libFuzzer flags.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 3 ]; then
    echo "usage: scripts/fuzz.sh BUILD_DIR SECONDS TARGET..." >&2
    exit 2
fi
build=$1
seconds=$2
shift 2
status=0
printf '%-10s %8s %12s %8s\n' target cpu_s execs crashes
for t in "$@"; do
    bin="$build/${t}_fuzz"
    if [ ! -x "$bin" ]; then
        echo "fuzz: $bin is missing: build it with make fuzz" >&2
        exit 2
    fi
    mkdir -p "$build/corpus/$t" "$build/crashes/$t"
    dict=()
    [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
    log="$build/crashes/$t.log"
    before=$(ls "$build/crashes/$t" | wc -l)
    TIMEFORMAT='%U %S'
    { time nice -n "${FUZZ_NICE:-0}" "$bin" -max_total_time="$seconds" \
        -print_final_stats=1 -artifact_prefix="$build/crashes/$t/" \
        "${dict[@]}" ${FUZZ_ARGS:-} "$build/corpus/$t" "tests/fuzz/corpus/$t" \
        >"$log" 2>&1; } 2>"$build/crashes/$t.time"
    rc=$?
    cpu=$(awk '{printf "%.0f", $1 + $2}' "$build/crashes/$t.time")
    execs=$(awk '/stat::number_of_executed_units/ {print $NF}' "$log")
    after=$(ls "$build/crashes/$t" | wc -l)
    printf '%-10s %8s %12s %8s\n' "$t" "$cpu" "${execs:-?}" "$((after - before))"
    if [ $rc -ne 0 ] || [ "$after" -ne "$before" ]; then
        echo "fuzz: $t failed (exit $rc); see $log and $build/crashes/$t/" >&2
        grep -m 5 -E "ERROR|assertion failed|SUMMARY" "$log" >&2
        status=1
    fi
done
exit $status
