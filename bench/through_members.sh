#!/usr/bin/env bash
# through_members.sh — a short before/after comparison of cohort through all
# members against the primary alone: writes at 1, 16 and 128 outstanding,
# linearizable reads (GET) and local reads (READONLY GET) at 128, each for
# SECS seconds (default 5) on a fresh 3-replica cluster (cohort_cluster.sh).
# Prints one `cohort bench` result line per run, prefixed by where the load
# went ("all" or "primary").
#
#   COHORT=build/cohort BENCH_CLIENT_PORT=24610 BENCH_PEER_PORT=24710 \
#       bench/through_members.sh [SECS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cohort=${COHORT:-$here/../build/cohort}
secs=${1:-5}
cbase=${BENCH_CLIENT_PORT:-7401}
all=127.0.0.1:$cbase,127.0.0.1:$((cbase + 1)),127.0.0.1:$((cbase + 2))
export COHORT=$cohort
"$here/cohort_cluster.sh" start
trap '"$here/cohort_cluster.sh" stop' EXIT
primary=$("$cohort" bench --members "$all" --print-primary |
    sed 's/^primary=\([^ ]*\) .*/\1/')
run() { # label members args...
    local label=$1 members=$2
    shift 2
    printf '%s ' "$label"
    "$cohort" bench --quiet --members "$members" --seconds "$secs" "$@"
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
