#!/usr/bin/env bash
# prealloc_hist.sh — the storage side of pre-written segments: for ROUNDS
# rounds and each binary (A, B), a fresh 3-replica cluster with /metrics
# on each replica, 1-outstanding 100 B writes through a backup for SECS
# seconds, then, per replica, the share of its group-commit rounds
# (cohort_wal_fsync_duration_seconds, power-of-2 buckets) above 256 µs ..
# 4 ms. Ports: client PORT..PORT+2, peer PORT+10.., metrics PORT+20..
# (default 28601); data in a fresh /tmp/pa-hist.
#
#   A=/tmp/cohort.before B=build/cohort bench/prealloc_hist.sh [SECS] [ROUNDS] [PORT]
set -euo pipefail
secs=${1:-10}
rounds=${2:-2}
port=${3:-28601}
for ((round = 1; round <= rounds; round++)); do
for label in A B; do
  bin=${!label}
  d=/tmp/pa-hist; rm -rf $d; mkdir -p $d
  pids=()
  for i in 0 1 2; do
    $bin server --id $i --peers 127.0.0.1:$((port+10)),127.0.0.1:$((port+11)),127.0.0.1:$((port+12)) --clients 127.0.0.1:$port,127.0.0.1:$((port+1)),127.0.0.1:$((port+2)) --data-dir $d/r$i --metrics-port $((port+20+i)) > $d/log$i 2>&1 &
    pids+=($!)
  done
  all=127.0.0.1:$port,127.0.0.1:$((port+1)),127.0.0.1:$((port+2))
  sleep 1
  for t in $(seq 1 50); do p=$($bin bench --members $all --print-primary 2>/dev/null | sed 's/^primary=\([^ ]*\) .*/\1/') && [ -n "$p" ] && break; sleep 0.2; done
  b=127.0.0.1:$port; [ "$p" = "$b" ] && b=127.0.0.1:$((port+1))
  line=$($bin bench --quiet --members $b --seconds $secs --workload write --conc 1 --value-size 100)
  echo "$label round=$round via=backup ${line#bench system=cohort workload=write conc=1 conns=1 value=100 }"
  for i in 0 1 2; do
    a=127.0.0.1:$((port+i)); role=backup; [ "$a" = "$p" ] && role=primary
    curl -s 127.0.0.1:$((port+20+i))/metrics | awk -v l="  r$i $role" '/^cohort_wal_fsync_duration_seconds_bucket/ { match($0,/le="[^"]*"/); le=substr($0,RSTART+4,RLENGTH-5); v[le]=$2 } /^cohort_wal_fsync_duration_seconds_count/ {n=$2} END { printf "%s rounds=%d >256us=%.3f >512us=%.3f >1ms=%.4f >2ms=%.4f >4ms=%.4f\n", l, n, 1-v["0.000256"]/n, 1-v["0.000512"]/n, 1-v["0.001024"]/n, 1-v["0.002048"]/n, 1-v["0.004096"]/n }'
  done
  kill ${pids[@]}; wait ${pids[@]} 2>/dev/null || true
done
done
