#!/usr/bin/env bash
# bench/etcd/cluster.sh — a 3-member etcd 3.4 cluster on loopback for the
# benchmark (Debian's `etcd-server`; see bench/install.sh).
#
#   cluster.sh start [--keep]  start members 1-3 (fresh data unless --keep),
#                              wait until a leader serves
#   cluster.sh stop            stop the members this script started (by pid)
#   cluster.sh leader-pid      pid of the current leader
#   cluster.sh pids            pids of all running members, one per line
#   cluster.sh status          each member's role (leader/follower/down)
#   cluster.sh members         127.0.0.1:12379,127.0.0.1:12389,127.0.0.1:12399
#
# Layout: member i (1-3) serves clients on 127.0.0.1:12379/12389/12399 and
# peers on 12380/12390/12400 (plain HTTP); its data (WAL and bbolt backend),
# pid file and log are in $BENCH_DIR/etcd/<i> (BENCH_DIR defaults to
# /tmp/cohort-bench).
#
# Configuration is etcd's default where durability and speed are concerned:
# the WAL is fsynced before an entry is acknowledged, snapshot-count 100000,
# heartbeat 100 ms, election timeout 1000 ms (so failover takes at least
# about a second), max-request-bytes 1.5 MiB (a 1 MiB value fits).
# Non-default, and why:
#   --quota-backend-bytes 8 GiB  (default 2 GiB) etcd keeps every revision
#                        until compaction, and a few 1 MiB-value runs would
#                        otherwise fill the quota and turn the cluster
#                        read-only ("database space exceeded"); etcd_bench
#                        also compacts after its preload
#   --logger zap --log-level warn  the 3.4 default logger is deprecated and
#                        chatty
#
# Leader detection: `etcdctl endpoint status` on each member's client URL;
# the member whose MemberID equals the Leader it reports is the leader.
set -euo pipefail

BENCH_DIR=${BENCH_DIR:-/tmp/cohort-bench}
ET_DIR=$BENCH_DIR/etcd
N=3
ETCD=${ETCD:-/usr/bin/etcd}
ETCDCTL=${ETCDCTL:-/usr/bin/etcdctl}

client_port() { echo $((12369 + 10 * $1)); }
peer_port() { echo $((12370 + 10 * $1)); }

initial_cluster() {
    local s="" i
    for i in $(seq 1 $N); do
        s="${s:+$s,}m$i=http://127.0.0.1:$(peer_port "$i")"
    done
    echo "$s"
}

pid_of() {
    local f=$ET_DIR/$1/pid pid
    [ -f "$f" ] || return 1
    pid=$(cat "$f")
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] &&
        tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "--data-dir $ET_DIR/$1/data" &&
        echo "$pid"
}

# role_of <i>: leader, follower or down.
role_of() {
    local out mid lead
    out=$(ETCDCTL_API=3 timeout 3 "$ETCDCTL" --endpoints="127.0.0.1:$(client_port "$1")" \
        --dial-timeout=1s --command-timeout=2s endpoint status -w fields 2>/dev/null) ||
        { echo down; return; }
    mid=$(sed -n 's/^"MemberID" : //p' <<<"$out")
    lead=$(sed -n 's/^"Leader" : //p' <<<"$out")
    if [ -z "$mid" ] || [ -z "$lead" ] || [ "$lead" = 0 ]; then
        echo down
    elif [ "$mid" = "$lead" ]; then
        echo leader
    else
        echo follower
    fi
}

stop_system_service() {
    local pids
    if id etcd >/dev/null 2>&1; then
        pids=$(pgrep -u etcd etcd 2>/dev/null || true)
        if [ -n "$pids" ]; then
            echo "cluster.sh: stopping system etcd service (pids $pids)" >&2
            if command -v systemctl >/dev/null 2>&1 &&
               [ "$(systemctl is-system-running 2>/dev/null || true)" != offline ]; then
                systemctl stop etcd >/dev/null 2>&1 || true
                systemctl disable etcd >/dev/null 2>&1 || true
            fi
            kill $pids 2>/dev/null || true
        fi
    fi
}

start() {
    local keep=0 i
    [ "${1:-}" = "--keep" ] && keep=1
    [ -x "$ETCD" ] || { echo "cluster.sh: etcd not installed (bench/install.sh)" >&2; exit 1; }
    stop_system_service
    for i in $(seq 1 $N); do
        if pid_of "$i" >/dev/null; then
            echo "cluster.sh: member $i already running (pid $(pid_of "$i")); stop first" >&2
            exit 1
        fi
    done
    local state=new
    for i in $(seq 1 $N); do
        local d=$ET_DIR/$i
        [ "$keep" = 1 ] || rm -rf "$d"
        [ -d "$d/data/member" ] && state=existing
        mkdir -p "$d"
        local cu pu
        cu="http://127.0.0.1:$(client_port "$i")"
        pu="http://127.0.0.1:$(peer_port "$i")"
        # setsid: its own session, so a Ctrl-C meant for the benchmark does
        # not reach it; $! is etcd itself.
        setsid "$ETCD" --name "m$i" --data-dir "$d/data" \
            --listen-client-urls "$cu" --advertise-client-urls "$cu" \
            --listen-peer-urls "$pu" --initial-advertise-peer-urls "$pu" \
            --initial-cluster "$(initial_cluster)" --initial-cluster-token cohort-bench \
            --initial-cluster-state "$state" \
            --quota-backend-bytes 8589934592 \
            --logger zap --log-outputs stderr --log-level warn \
            >> "$d/server.log" 2>&1 < /dev/null &
        echo $! > "$d/pid"
    done
    local deadline=$((SECONDS + 60)) roles
    while :; do
        roles=""
        for i in $(seq 1 $N); do roles="$roles $(role_of "$i")"; done
        if [[ "$roles" == *leader* ]] && [[ "$roles" != *down* ]]; then
            echo "cluster.sh: etcd up:$roles (pids $(pids | tr '\n' ' '))" >&2
            return 0
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "cluster.sh: etcd not serving after 60 s:$roles; see $ET_DIR/*/server.log" >&2
            exit 1
        fi
        sleep 0.2
    done
}

stop() {
    local pids=() pid i
    for i in $(seq 1 $N); do
        pid=$(pid_of "$i" || true)
        [ -n "$pid" ] && pids+=("$pid")
    done
    [ ${#pids[@]} -eq 0 ] && return 0
    kill "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 1 100); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    for i in $(seq 1 $N); do rm -f "$ET_DIR/$i/pid"; done
    echo "cluster.sh: etcd stopped (pids ${pids[*]})" >&2
}

pids() {
    local i
    for i in $(seq 1 $N); do pid_of "$i" || true; done
}

leader_pid() {
    local i
    for i in $(seq 1 $N); do
        if [ "$(role_of "$i")" = leader ]; then
            pid_of "$i" && return 0
        fi
    done
    echo "cluster.sh: no leader" >&2
    return 1
}

status() {
    local i
    for i in $(seq 1 $N); do
        echo "member $i 127.0.0.1:$(client_port "$i") pid=$(pid_of "$i" || echo -) role=$(role_of "$i")"
    done
}

case "${1:-}" in
start) shift; start "$@" ;;
stop) stop ;;
leader-pid) leader_pid ;;
pids) pids ;;
status) status ;;
members) echo "127.0.0.1:12379,127.0.0.1:12389,127.0.0.1:12399" ;;
*) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
