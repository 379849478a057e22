#!/usr/bin/env bash
# bench/redis/cluster.sh — one durable redis-server (Debian's redis-server
# 7.0) on 127.0.0.1:7601 as the single-node baseline of the benchmark
# (`cohort bench --system redis --members 127.0.0.1:7601`).
#
#   cluster.sh start [--keep]  start it (fresh data unless --keep), wait for PING
#   cluster.sh stop            stop the server this script started (by pid)
#   cluster.sh pid             its pid
#   cluster.sh pids            the same (same interface as the other two)
#   cluster.sh members         127.0.0.1:7601
#
# Durability: --appendonly yes --appendfsync always (every write is fsynced
# to the AOF before the reply, like the replicated systems' logs). RDB
# snapshots are off (--save ""): the AOF is the durability mechanism, and a
# background RDB save forks a child whose CPU the process sampling would not
# see. AOF rewrites keep their defaults. Data, pid file and log are in
# $BENCH_DIR/redis (BENCH_DIR defaults to /tmp/cohort-bench).
set -euo pipefail

BENCH_DIR=${BENCH_DIR:-/tmp/cohort-bench}
RD=$BENCH_DIR/redis
PORT=7601
REDIS=${REDIS:-/usr/bin/redis-server}

pid_of() {
    local pid
    [ -f "$RD/pid" ] || return 1
    pid=$(cat "$RD/pid")
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] &&
        tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q "127.0.0.1:$PORT" &&
        echo "$pid"
}

stop_system_service() {
    local pids
    if id redis >/dev/null 2>&1; then
        pids=$(pgrep -u redis redis-server 2>/dev/null || true)
        if [ -n "$pids" ]; then
            echo "cluster.sh: stopping system redis-server service (pids $pids)" >&2
            if command -v systemctl >/dev/null 2>&1 &&
               [ "$(systemctl is-system-running 2>/dev/null || true)" != offline ]; then
                systemctl stop redis-server >/dev/null 2>&1 || true
                systemctl disable redis-server >/dev/null 2>&1 || true
            fi
            kill $pids 2>/dev/null || true
        fi
    fi
}

ping() {
    timeout 2 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "PING\r\n" >&3
        IFS= read -r line <&3
        [[ "$line" == "+PONG"* ]]' _ "$PORT" 2>/dev/null
}

start() {
    [ -x "$REDIS" ] || { echo "cluster.sh: redis-server not installed (bench/install.sh)" >&2; exit 1; }
    stop_system_service
    if pid_of >/dev/null; then
        echo "cluster.sh: redis already running (pid $(pid_of)); stop first" >&2
        exit 1
    fi
    [ "${1:-}" = "--keep" ] || rm -rf "$RD"
    mkdir -p "$RD"
    setsid "$REDIS" --bind 127.0.0.1 --port "$PORT" --dir "$RD" \
        --appendonly yes --appendfsync always --save "" \
        --daemonize no --logfile "$RD/server.log" >> "$RD/server.log" 2>&1 < /dev/null &
    echo $! > "$RD/pid"
    for _ in $(seq 1 100); do
        if ping; then
            echo "cluster.sh: redis up on 127.0.0.1:$PORT (pid $(pid_of))" >&2
            return 0
        fi
        sleep 0.1
    done
    echo "cluster.sh: redis not answering after 10 s; see $RD/server.log" >&2
    exit 1
}

stop() {
    local pid
    pid=$(pid_of || true)
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$RD/pid"
    echo "cluster.sh: redis stopped (pid $pid)" >&2
}

case "${1:-}" in
start) shift; start "$@" ;;
stop) stop ;;
pid|pids|leader-pid) pid_of ;;
members) echo "127.0.0.1:$PORT" ;;
*) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
