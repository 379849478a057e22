#!/usr/bin/env bash
# through_members.sh — a short before/after comparison of cohort through all
# members against the primary alone: writes at 1, 16 and 128 outstanding,
# linearizable reads (GET) and local reads (READONLY GET) at 128, each for
# SECS seconds (default 5) on a fresh 3-replica cluster (cohort_cluster.sh;
# BENCH_REPLICAS=5 for 5 replicas).
# Prints one `cohort bench` result line per run, prefixed by where the load
# went ("all" or "primary") and followed by the replicas' CPU time per op
# (user+system of the server processes over the run, divided by the
# acknowledged ops; the read runs' preload of 1,000 keys is in it, a
# negligible share) and their voluntary context switches per op. The
# machine's other load shows in the throughput, much less in these two.
#
#   COHORT=build/cohort BENCH_CLIENT_PORT=24610 BENCH_PEER_PORT=24710 \
#       bench/through_members.sh [SECS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cohort=${COHORT:-$here/../build/cohort}
secs=${1:-5}
cbase=${BENCH_CLIENT_PORT:-7401}
all=127.0.0.1:$cbase
for ((k = 1; k < ${BENCH_REPLICAS:-3}; k++)); do
    all=$all,127.0.0.1:$((cbase + k))
done
export COHORT=$cohort
"$here/cohort_cluster.sh" start
trap '"$here/cohort_cluster.sh" stop' EXIT
primary=$("$cohort" bench --members "$all" --print-primary |
    sed 's/^primary=\([^ ]*\) .*/\1/')
pids=$("$here/cohort_cluster.sh" pids)
tick=$(getconf CLK_TCK)
cpu() { # total utime+stime ticks and voluntary switches of the replicas
    local p t=0 v=0
    for p in $pids; do
        t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
        v=$((v + $(awk '/^voluntary_ctxt_switches/{print $2}' "/proc/$p/status")))
    done
    echo "$t $v"
}
run() { # label members args...
    local label=$1 members=$2 before after line ops
    shift 2
    before=$(cpu)
    line=$("$cohort" bench --quiet --members "$members" --seconds "$secs" "$@")
    after=$(cpu)
    ops=${line##* ops=}
    ops=${ops%% *}
    awk -v l="$label $line" -v b="$before" -v a="$after" -v o="$ops" -v hz="$tick" '
        BEGIN { split(b, x, " "); split(a, y, " ");
                printf "%s server_cpu_us_per_op=%.1f csw_per_op=%.2f\n", l,
                    (y[1] - x[1]) * 1e6 / hz / o, (y[2] - x[2]) / o }'
}
for where in all primary; do
    m=$all
    [ "$where" = primary ] && m=$primary
    run "$where" "$m" --workload write --conc 1
    run "$where" "$m" --workload write --conc 16
    run "$where" "$m" --workload write --conc 128
    run "$where" "$m" --workload read --conc 128 --keys 1000
    run "$where" "$m" --workload lread --conc 128 --keys 1000
done
