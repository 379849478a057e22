#!/usr/bin/env bash
# bench/zk/cluster.sh — a 3-server ZooKeeper 3.8 ensemble on loopback for the
# benchmark (Debian's `zookeeper` package; see bench/install.sh).
#
#   cluster.sh start [--keep]  start servers 1-3 (fresh data unless --keep),
#                              wait until a leader serves
#   cluster.sh stop            stop the servers this script started (by pid)
#   cluster.sh leader-pid      pid of the current leader's JVM
#   cluster.sh pids            pids of all running servers, one per line
#   cluster.sh status          each server's mode (leader/follower/down)
#   cluster.sh members         127.0.0.1:12181,127.0.0.1:12182,127.0.0.1:12183
#
# Layout: client ports 12181-12183 (127.0.0.1), quorum ports 12801-12803,
# leader-election ports 12811-12813; server i keeps its config, data
# (snapshots and transaction log), pid file and log in $BENCH_DIR/zk/<i>
# (BENCH_DIR defaults to /tmp/cohort-bench).
#
# Configuration is ZooKeeper's default where durability and throughput are
# concerned: forceSync=yes (every transaction-log append is fsynced before
# the ack), snapCount=100000, tickTime=2000, globalOutstandingLimit=1000.
# Non-default, and why:
#   -Xmx2g -XX:G1HeapRegionSize=8m
#                           a 2 GiB heap ceiling per JVM (the JVM default
#                           would be 1/4 of RAM, 6 GiB, for each of three
#                           servers) with 8 MiB G1 regions. 1 GiB is plenty
#                           for 10000 keys of 100 B but not for 1 MiB values:
#                           every server keeps its last 500 committed
#                           proposals in memory (zookeeper.commitLogCount,
#                           to sync learners), 500+ MiB at 1 MiB each, plus
#                           the data tree and requests in flight. With the
#                           default region size (1 MiB at this heap) every
#                           1 MiB buffer is a "humongous" object that wastes
#                           most of its regions; -Xmx1g and -Xmx2g both died
#                           of OutOfMemoryError in 1 MiB runs, -Xmx2g with
#                           8 MiB regions does not. Override: ZK_HEAP=...
#   -Djute.maxbuffer=4194304 (4 MiB) the default 0xfffff bytes rejects a
#                           1 MiB value plus its request header
#   maxClientCnxns=0        no per-IP connection cap (the default 60 would
#                           refuse a 64-connection run from 127.0.0.1)
#   admin.enableServer=false three servers on one host would all want the
#                           AdminServer's port 8080
#   4lw.commands.whitelist=srvr,mntr,stat,ruok,conf  for leader detection
# Logging: slf4j-simple at INFO to $BENCH_DIR/zk/<i>/server.log.
#
# Leader detection: the `srvr` four-letter word on each client port; the
# server that answers "Mode: leader" is the leader.
set -euo pipefail

BENCH_DIR=${BENCH_DIR:-/tmp/cohort-bench}
ZK_DIR=$BENCH_DIR/zk
N=3
JAVA=${JAVA:-java}
ZK_HEAP=${ZK_HEAP:--Xmx2g -XX:G1HeapRegionSize=8m}
CLASSPATH=/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar

client_port() { echo $((12180 + $1)); }

pid_of() {
    local f=$ZK_DIR/$1/pid pid
    [ -f "$f" ] || return 1
    pid=$(cat "$f")
    # Only a live JVM that is this server (guards against pid reuse).
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] &&
        tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "$ZK_DIR/$1/zoo.cfg" &&
        echo "$pid"
}

fourlw() { # fourlw <server> <word>
    timeout 2 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "%s" "$2" >&3
        cat <&3' _ "$(client_port "$1")" "$2" 2>/dev/null || true
}

mode_of() {
    local m
    m=$(fourlw "$1" srvr | sed -n 's/^Mode: //p')
    echo "${m:-down}"
}

stop_system_service() {
    # Debian's `zookeeper` package ships no service (zookeeperd does); stop
    # one if something started it, so it neither eats CPU nor holds ports.
    local pids
    if id zookeeper >/dev/null 2>&1; then
        pids=$(pgrep -u zookeeper java 2>/dev/null || true)
        if [ -n "$pids" ]; then
            echo "cluster.sh: stopping system zookeeper service (pids $pids)" >&2
            if command -v systemctl >/dev/null 2>&1 &&
               [ "$(systemctl is-system-running 2>/dev/null || true)" != offline ]; then
                systemctl stop zookeeper >/dev/null 2>&1 || true
                systemctl disable zookeeper >/dev/null 2>&1 || true
            fi
            kill $pids 2>/dev/null || true
        fi
    fi
}

write_config() {
    local i=$1 d=$ZK_DIR/$1
    mkdir -p "$d/data"
    echo "$i" > "$d/data/myid"
    cat > "$d/zoo.cfg" <<CFG
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$d/data
clientPort=$(client_port "$i")
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=srvr,mntr,stat,ruok,conf
server.1=127.0.0.1:12801:12811
server.2=127.0.0.1:12802:12812
server.3=127.0.0.1:12803:12813
CFG
}

start() {
    local keep=0
    [ "${1:-}" = "--keep" ] && keep=1
    command -v "$JAVA" >/dev/null || { echo "cluster.sh: java not found (bench/install.sh)" >&2; exit 1; }
    [ -f /usr/share/java/zookeeper.jar ] || { echo "cluster.sh: zookeeper not installed (bench/install.sh)" >&2; exit 1; }
    stop_system_service
    for i in $(seq 1 $N); do
        if pid_of "$i" >/dev/null; then
            echo "cluster.sh: server $i already running (pid $(pid_of "$i")); stop first" >&2
            exit 1
        fi
    done
    for i in $(seq 1 $N); do
        local d=$ZK_DIR/$i
        [ "$keep" = 1 ] || rm -rf "$d"
        write_config "$i"
        # setsid: its own session, so a Ctrl-C meant for the benchmark does
        # not reach it. $! is the JVM itself (setsid execs without forking).
        setsid "$JAVA" $ZK_HEAP -Djute.maxbuffer=4194304 \
            -Dorg.slf4j.simpleLogger.defaultLogLevel=info \
            -Dorg.slf4j.simpleLogger.showDateTime=true \
            -cp "$CLASSPATH" org.apache.zookeeper.server.quorum.QuorumPeerMain \
            "$d/zoo.cfg" >> "$d/server.log" 2>&1 < /dev/null &
        echo $! > "$d/pid"
    done
    local deadline=$((SECONDS + 60)) modes
    while :; do
        modes=""
        for i in $(seq 1 $N); do modes="$modes $(mode_of "$i")"; done
        if [[ "$modes" == *leader* ]] && [[ "$modes" != *down* ]]; then
            echo "cluster.sh: zookeeper up:$modes (pids $(pids | tr '\n' ' '))" >&2
            return 0
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "cluster.sh: ensemble not serving after 60 s:$modes; see $ZK_DIR/*/server.log" >&2
            exit 1
        fi
        sleep 0.2
    done
}

stop() {
    local pids=() pid
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
    for i in $(seq 1 $N); do rm -f "$ZK_DIR/$i/pid"; done
    echo "cluster.sh: zookeeper stopped (pids ${pids[*]})" >&2
}

pids() {
    for i in $(seq 1 $N); do pid_of "$i" || true; done
}

leader_pid() {
    for i in $(seq 1 $N); do
        if [ "$(mode_of "$i")" = leader ]; then
            pid_of "$i" && return 0
        fi
    done
    echo "cluster.sh: no leader" >&2
    return 1
}

status() {
    for i in $(seq 1 $N); do
        echo "server $i 127.0.0.1:$(client_port "$i") pid=$(pid_of "$i" || echo -) mode=$(mode_of "$i")"
    done
}

case "${1:-}" in
start) shift; start "$@" ;;
stop) stop ;;
leader-pid) leader_pid ;;
pids) pids ;;
status) status ;;
members) echo "127.0.0.1:12181,127.0.0.1:12182,127.0.0.1:12183" ;;
*) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
