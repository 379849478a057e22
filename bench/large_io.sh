#!/usr/bin/env bash
# large_io.sh BIN — what large values cost the disk (issue 16). On a fresh
# bench/cohort_cluster.sh cluster of BIN: 64 KiB writes (1,000 keys), then
# 1 MiB writes (100 keys), each at 16 outstanding over 16 connections
# spread over all members, 10 s after 1 s of warm-up, as make bench runs
# them. Prints both results, the bytes the replicas wrote over the 1 MiB
# phase (write_bytes of /proc/PID/io, summed) and each replica's RSS.
# Ports: BENCH_CLIENT_PORT/BENCH_PEER_PORT (default 17401/17501).
set -eu
B=$(realpath "$1")
cd "$(dirname "$0")/.."
export BENCH_DIR=${BENCH_DIR:-/tmp/large-io-bench}
export BENCH_CLIENT_PORT=${BENCH_CLIENT_PORT:-17401}
export BENCH_PEER_PORT=${BENCH_PEER_PORT:-17501}
COHORT=$B bench/cohort_cluster.sh start >/dev/null
trap 'COHORT=$B bench/cohort_cluster.sh stop >/dev/null 2>&1' EXIT
pids=$(COHORT=$B bench/cohort_cluster.sh pids)
p=$BENCH_CLIENT_PORT
mem=127.0.0.1:$p,127.0.0.1:$((p + 1)),127.0.0.1:$((p + 2))
run() {
    "$B" bench --quiet --members "$mem" --workload write --value-size "$1" \
        --conc 16 --conns 16 --keys "$2" --seconds 10 --warmup-seconds 1 |
        tr ' ' '\n' | grep -E "^(ops|ops_per_s|p999_us|errors)=" | tr '\n' ' '
}
written() {
    local w=0
    for pid in $pids; do
        w=$((w + $(awk '/^write_bytes/{print $2}' /proc/"$pid"/io)))
    done
    echo $w
}
a=$(run 65536 1000)
w0=$(written)
b=$(run 1048576 100)
w1=$(written)
rss=""
for pid in $pids; do rss="$rss $(awk '/VmRSS/{print $2}' /proc/"$pid"/status)k"; done
echo "64 KiB: $a"
echo "1 MiB: $b"
echo "written over the 1 MiB phase: $(((w1 - w0) / 1000000)) MB; RSS:$rss"
