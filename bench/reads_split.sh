#!/usr/bin/env bash
# reads_split.sh — linearizable reads (GET) at 128 outstanding through all
# three members of a fresh 3-replica cluster (bench/cohort_cluster.sh) for
# 4 s, and each replica's CPU time (user+system) per acknowledged read, so
# that the primary's share shows apart from the backups'. EXTRA adds
# `cohort bench` flags (e.g. EXTRA="--value-size 16384").
#
#   COHORT=build/cohort BENCH_CLIENT_PORT=24610 BENCH_PEER_PORT=24710 \
#       [EXTRA=...] bench/reads_split.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cohort=${COHORT:-$here/../build/cohort}
cbase=${BENCH_CLIENT_PORT}
all=127.0.0.1:$cbase,127.0.0.1:$((cbase + 1)),127.0.0.1:$((cbase + 2))
export COHORT=$cohort
"$here/cohort_cluster.sh" start >/dev/null
trap '"$here/cohort_cluster.sh" stop >/dev/null' EXIT
primary=$("$cohort" bench --members "$all" --print-primary | sed 's/^primary=\([^ ]*\) .*/\1/')
pids=$("$here/cohort_cluster.sh" pids)
tick=$(getconf CLK_TCK)
declare -A b
for p in $pids; do b[$p]=$(awk '{print $14 + $15}' /proc/$p/stat); done
line=$("$cohort" bench --quiet --members "$all" --seconds 4 --workload read --conc 128 --keys 1000 ${EXTRA:-})
ops=${line##* ops=}; ops=${ops%% *}
out="ops=$ops"
for p in $pids; do a=$(awk '{print $14 + $15}' /proc/$p/stat); port=$(tr '\0' ' ' < /proc/$p/cmdline | grep -o -- "--id [0-9]*\|--self [0-9]*" | head -1); out="$out | $port cpu_us_per_op=$(awk -v a=$a -v b=${b[$p]} -v o=$ops -v hz=$tick 'BEGIN{printf "%.2f", (a-b)*1e6/hz/o}')"; done
echo "primary=$primary $out"
