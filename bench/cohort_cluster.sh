#!/usr/bin/env bash
# cohort_cluster.sh — a 3-replica cohort cluster on 127.0.0.1 for the
# benchmarks: client (RESP) ports 7401-7403, peer ports 7501-7503, default
# settings (every acknowledged write fsynced on a majority).
#
#   bench/cohort_cluster.sh start        start it (fresh data), wait for a primary
#   bench/cohort_cluster.sh stop         stop the processes it started (by PID)
#   bench/cohort_cluster.sh primary-pid  print the primary's PID
#   bench/cohort_cluster.sh status       each replica's PID and whether it runs
#
# Environment: BENCH_DIR (default /tmp/cohort-bench) holds replica-N/ (data),
# replica-N.log and replica-N.pid; COHORT is the binary (default
# build/cohort); BENCH_KEEP_DATA=1 keeps the data of an earlier run.
#
# Example:
#   bench/cohort_cluster.sh start
#   cohort bench --members 127.0.0.1:7401,127.0.0.1:7402,127.0.0.1:7403 \
#       --workload failover --kill-cmd "kill -9 $(bench/cohort_cluster.sh primary-pid)"
#   bench/cohort_cluster.sh stop
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${BENCH_DIR:-/tmp/cohort-bench}
cohort=${COHORT:-$root/build/cohort}
clients=127.0.0.1:7401,127.0.0.1:7402,127.0.0.1:7403
peers=127.0.0.1:7501,127.0.0.1:7502,127.0.0.1:7503
replicas=3

die() {
    echo "cohort_cluster: $*" >&2
    exit 1
}

# The PID in replica-$1.pid if that process is alive and is a cohort server.
live_pid() {
    local file=$dir/replica-$1.pid pid
    [ -f "$file" ] || return 1
    pid=$(cat "$file")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "server --id $1 " ||
        return 1
    echo "$pid"
}

start() {
    [ -x "$cohort" ] || die "no cohort binary at $cohort; build it (make) or set COHORT"
    mkdir -p "$dir"
    for i in $(seq 0 $((replicas - 1))); do
        if pid=$(live_pid "$i"); then
            die "replica $i is already running (pid $pid); run '$0 stop' first"
        fi
    done
    for i in $(seq 0 $((replicas - 1))); do
        [ "${BENCH_KEEP_DATA:-0}" = 1 ] || rm -rf "$dir/replica-$i"
        "$cohort" server --id "$i" --peers "$peers" --clients "$clients" \
            --data-dir "$dir/replica-$i" >"$dir/replica-$i.log" 2>&1 &
        echo $! >"$dir/replica-$i.pid"
    done
    if ! line=$("$cohort" bench --members "$clients" --print-primary); then
        tail -n 5 "$dir"/replica-*.log >&2 || true
        die "no primary within 10 s; logs are in $dir"
    fi
    echo "cohort_cluster: started in $dir, clients $clients; $line" >&2
}

stop() {
    local pids=() i pid
    for i in $(seq 0 $((replicas - 1))); do
        if pid=$(live_pid "$i"); then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
        rm -f "$dir/replica-$i.pid"
    done
    for _ in $(seq 1 50); do
        local alive=0
        for pid in "${pids[@]}"; do
            kill -0 "$pid" 2>/dev/null && alive=1
        done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    echo "cohort_cluster: stopped ${#pids[@]} replica(s)" >&2
}

primary_pid() {
    local line index pid
    line=$("$cohort" bench --members "$clients" --print-primary) ||
        die "cannot find the primary"
    index=$(echo "$line" | sed -n 's/.* index=\([0-9]*\).*/\1/p')
    pid=$(live_pid "$index") || die "the primary is replica $index but its pid file names no live process"
    echo "$pid"
}

status() {
    for i in $(seq 0 $((replicas - 1))); do
        if pid=$(live_pid "$i"); then
            echo "replica $i: pid $pid, running"
        else
            echo "replica $i: not running"
        fi
    done
}

case "${1:-}" in
start) start ;;
stop) stop ;;
primary-pid) primary_pid ;;
status) status ;;
*)
    echo "usage: $0 start|stop|primary-pid|status (env BENCH_DIR, COHORT)" >&2
    exit 2
    ;;
esac
