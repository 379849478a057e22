#!/usr/bin/env bash
# prealloc_ab.sh — pre-written log segments (issue 16), before/after: for
# each of ROUNDS rounds and each binary (A then B), a fresh 3-replica
# cluster (cohort_cluster.sh) and 1-outstanding 100 B writes for SECS
# seconds, first through a backup, then at the primary. Prints one
# `cohort bench` result line per run, prefixed by the binary's label, the
# round and where the load went.
#
#   A=/tmp/cohort.before B=build/cohort BENCH_CLIENT_PORT=28001 \
#       BENCH_PEER_PORT=28101 BENCH_DIR=/tmp/pa-bench bench/prealloc_ab.sh [SECS] [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
secs=${1:-10}
rounds=${2:-3}
cbase=${BENCH_CLIENT_PORT:-7401}
all=127.0.0.1:$cbase,127.0.0.1:$((cbase + 1)),127.0.0.1:$((cbase + 2))
trap '"$here/cohort_cluster.sh" stop >/dev/null 2>&1 || true' EXIT
for ((r = 1; r <= rounds; r++)); do
    for label in A B; do
        export COHORT=${!label}
        "$here/cohort_cluster.sh" start >/dev/null
        primary=$("$COHORT" bench --members "$all" --print-primary |
            sed 's/^primary=\([^ ]*\) .*/\1/')
        backup=
        for m in ${all//,/ }; do
            [ "$m" != "$primary" ] && backup=$m && break
        done
        for where in backup primary; do
            m=$backup
            [ "$where" = primary ] && m=$primary
            echo "$label round=$r via=$where $("$COHORT" bench --quiet \
                --members "$m" --seconds "$secs" --workload write --conc 1 \
                --value-size 100)"
        done
        "$here/cohort_cluster.sh" stop >/dev/null
    done
done
