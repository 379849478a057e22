#!/usr/bin/env bash
# cohort_cluster.sh — a 3-replica cohort cluster on 127.0.0.1 for the
# benchmarks: client (RESP) ports 7401-7403, peer ports 7501-7503, default
# settings (every acknowledged write fsynced on a majority).
#
#   bench/cohort_cluster.sh start        start it (fresh data), wait for a primary
#   bench/cohort_cluster.sh stop         stop the processes it started (by PID)
#   bench/cohort_cluster.sh primary-pid  print the primary's PID
#   bench/cohort_cluster.sh status       each replica's PID and whether it runs
#   bench/cohort_cluster.sh pids         the PIDs of the running replicas, one a line
#   bench/cohort_cluster.sh restart-dead start every replica that is not running
#                                        (same flags, its data kept), e.g. after
#                                        a failover trial killed the primary
#   bench/cohort_cluster.sh wait-healthy wait (up to 30 s) until the primary sees
#                                        every member ok and caught up
#
# Environment: BENCH_DIR (default /tmp/cohort-bench) holds replica-N/ (data),
# replica-N.log and replica-N.pid; COHORT is the binary (default
# build/cohort); BENCH_KEEP_DATA=1 keeps the data of an earlier run;
# BENCH_CLIENT_PORT and BENCH_PEER_PORT move the two port blocks (each the
# first of BENCH_REPLICAS; e.g. on a machine where others use 7401-7503);
# BENCH_REPLICAS (default 3) is the group's size (the port blocks grow with it);
# BENCH_METRICS_PORT (unset: none) gives replica i a Prometheus endpoint at
# --metrics-port BENCH_METRICS_PORT+i;
# COHORT_SERVER_ARGS is added to every `cohort server` command line (e.g.
# "--snapshot-interval-ops 20000").
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
cbase=${BENCH_CLIENT_PORT:-7401}
pbase=${BENCH_PEER_PORT:-7501}
replicas=${BENCH_REPLICAS:-3}
clients=127.0.0.1:$cbase peers=127.0.0.1:$pbase
for ((k = 1; k < replicas; k++)); do
    clients=$clients,127.0.0.1:$((cbase + k))
    peers=$peers,127.0.0.1:$((pbase + k))
done

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

# Start replica $1 in the background (its data directory as it is).
spawn() {
    local i=$1 metrics=()
    [ -n "${BENCH_METRICS_PORT:-}" ] &&
        metrics=(--metrics-port $((BENCH_METRICS_PORT + i)))
    # shellcheck disable=SC2086 # COHORT_SERVER_ARGS is a list of flags
    "$cohort" server --id "$i" --peers "$peers" --clients "$clients" \
        --data-dir "$dir/replica-$i" "${metrics[@]}" ${COHORT_SERVER_ARGS:-} \
        >>"$dir/replica-$i.log" 2>&1 &
    echo $! >"$dir/replica-$i.pid"
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
        if [ "${BENCH_KEEP_DATA:-0}" != 1 ]; then
            rm -rf "$dir/replica-$i"
            : >"$dir/replica-$i.log"
        fi
        spawn "$i"
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

restart_dead() {
    local i pid n=0
    for i in $(seq 0 $((replicas - 1))); do
        if ! pid=$(live_pid "$i"); then
            spawn "$i"
            n=$((n + 1))
            echo "cohort_cluster: restarted replica $i (pid $(cat "$dir/replica-$i.pid"))" >&2
        fi
    done
    [ $n -gt 0 ] || echo "cohort_cluster: every replica is running" >&2
}

# Healthy: a primary in a normal view that sees every other member as
# health=ok with a lag under 1000 ops.
wait_healthy() {
    local deadline=$((SECONDS + 30)) line port info bad
    while :; do
        if line=$("$cohort" bench --members "$clients" --print-primary 2>/dev/null); then
            port=$(echo "$line" | sed -n 's/^primary=[^ ]*:\([0-9]*\) .*/\1/p')
            info=$(timeout 2 redis-cli -p "$port" INFO replication 2>/dev/null | tr -d '\r' || true)
            if echo "$info" | grep -q '^role:primary'; then
                bad=$(echo "$info" | grep '^member[0-9]*:' | grep -v 'health=self' |
                    awk -F'lag=' '!/health=ok/ || $2 + 0 >= 1000' | wc -l)
                if [ "$bad" = 0 ] && [ "$(echo "$info" | grep -c '^member[0-9]*:')" = $replicas ]; then
                    return 0
                fi
            fi
        fi
        [ $SECONDS -lt $deadline ] || die "not healthy after 30 s: $(echo "$info" | grep '^member' | tr '\n' ' ')"
        sleep 0.2
    done
}

pids() {
    local i
    for i in $(seq 0 $((replicas - 1))); do
        live_pid "$i" || true
    done
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
pids) pids ;;
restart-dead) restart_dead ;;
wait-healthy) wait_healthy ;;
*)
    echo "usage: $0 start|stop|primary-pid|status|pids|restart-dead|wait-healthy" \
        "(env BENCH_DIR, COHORT, COHORT_SERVER_ARGS)" >&2
    exit 2
    ;;
esac
