#!/usr/bin/env bash
# prealloc_trace.sh — what pre-written segments change in the kernel: for
# each binary (A, B), a fresh 3-replica cluster, 1-outstanding 100 B writes
# through a backup for SECS seconds, with `perf stat` counting, on the three
# replica processes (every thread), the unwritten-extent conversions ext4
# handles (ext4:ext4_ext_handle_unwritten_extents) and the fdatasyncs
# (ext4:ext4_sync_file_enter). Prints one line per binary.
#
#   A=/tmp/cohort.before B=build/cohort BENCH_CLIENT_PORT=28001 \
#       BENCH_PEER_PORT=28101 BENCH_DIR=/tmp/pa-bench bench/prealloc_trace.sh [SECS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
secs=${1:-10}
cbase=${BENCH_CLIENT_PORT:-7401}
all=127.0.0.1:$cbase,127.0.0.1:$((cbase + 1)),127.0.0.1:$((cbase + 2))
trap '"$here/cohort_cluster.sh" stop >/dev/null 2>&1 || true' EXIT
for label in A B; do
    export COHORT=${!label}
    "$here/cohort_cluster.sh" start >/dev/null 2>&1
    primary=$("$COHORT" bench --members "$all" --print-primary |
        sed 's/^primary=\([^ ]*\) .*/\1/')
    backup=
    for m in ${all//,/ }; do
        [ "$m" != "$primary" ] && backup=$m && break
    done
    pids=$("$here/cohort_cluster.sh" pids | paste -sd,)
    out=$(mktemp)
    perf stat -x, -e ext4:ext4_ext_handle_unwritten_extents,ext4:ext4_sync_file_enter \
        -p "$pids" -o "$out" -- sleep "$secs" &
    perf_pid=$!
    line=$("$COHORT" bench --quiet --members "$backup" --seconds "$secs" \
        --workload write --conc 1 --value-size 100)
    wait "$perf_pid"
    conv=$(awk -F, '/unwritten/{print $1}' "$out")
    syncs=$(awk -F, '/sync_file_enter/{print $1}' "$out")
    ops=${line##* ops=}
    ops=${ops%% *}
    echo "$label $line unwritten_conversions=$conv fdatasyncs=$syncs conversions_per_sync=$(awk -v c="$conv" -v s="$syncs" 'BEGIN{printf "%.3f", c/s}')"
    rm -f "$out"
    "$here/cohort_cluster.sh" stop >/dev/null 2>&1
done
