#!/usr/bin/env bash
# bench/run.sh — the side-by-side benchmark in one command (`make bench`):
# cohort, etcd and ZooKeeper (3 members each on 127.0.0.1) and a single
# durable redis-server, the same workloads through load generators that print
# the same result line, then bench/report.py writes bench/RESULTS.md.
#
#   bash bench/run.sh                  the full run (about 20 minutes)
#   BENCH_QUICK=1 bash bench/run.sh    smoke test: 3 s runs, 2 failover trials;
#                                      writes under $BENCH_DIR/quick, never
#                                      over bench/RESULTS.md
#   BENCH_STAGES=stall bash bench/run.sh
#                                      only the write-stall stage (below),
#                                      appended to an existing raw.txt, then
#                                      RESULTS.md regenerated (a few minutes)
#
# Steps: build cohort (Release, in build-bench/), bench/install.sh (Debian
# packages etcd-server, zookeeper, redis-server, golang-go, linux-perf, ...;
# builds bench/.build/etcd_bench and zk_bench), probe the disk (fsync cost,
# sequential O_DSYNC bandwidth with 64 KiB and 1 MiB writes), then for each
# system: start its cluster fresh, run every workload, stop it. cohort's
# load goes to all members; cohort alone also runs the key workloads with
# every connection to the primary, and one client through a backup (the
# second table of issue 16). Each run is wrapped in
# bench/procstat.py, which samples every server process's CPU time
# (utime+stime from /proc) and memory (VmRSS, VmHWM) and reports the CPU used
# in the measured window. Every run is bounded by `timeout`; only processes
# this script started are stopped (the cluster scripts kill by pid file, and
# a member restarted after a failover trial is killed by its recorded pid).
#
# The stall stage (issue 12), after cohort's cases: tests/system/stall_probe.py
# on groups of its own (the system tests' harness: their 10 ms heartbeat, a
# free port block it probes for, data under $BENCH_DIR/stall) runs 3 rounds
# of `cohort add 3`, `add 4`, `remove 3`, `remove 4` on 5 addresses with
# --voters 3, then 5 `cohort transfer` and 3 `cohort rejuvenate` rounds on 3
# members (quick: 1, 2 and 1; about 30 s in all), each command through a
# fresh load of the C client library (cohort-client-test, built next to
# cohort) and raw RESP writers; its `stall ...` lines (longest ack gap,
# longest C call, command time, failed calls per round) go to raw.txt.
#
# Output: bench/results/raw.txt (every result line, tagged, plus the
# per-process CPU/memory lines, snapshot counts and machine facts) and
# bench/RESULTS.md; per-run stdout/stderr in $BENCH_DIR/logs.
#
# Environment:
#   BENCH_QUICK=1           smoke test (above)
#   BENCH_SKIP_INSTALL=1    do not run bench/install.sh (packages and the
#                           etcd/zk load generators already there)
#   BENCH_SYSTEMS="cohort etcd zookeeper redis"   a subset, for testing
#   BENCH_SECONDS, BENCH_WARMUP, BENCH_FAILOVER_TRIALS   override durations
#   BENCH_SNAP_PAIRS        steady/loaded snapshot run pairs (full: 3)
#   BENCH_PROFILE=1         perf record the cohort primary during the
#                           100-byte, 128-outstanding write run; the report is
#                           bench/results/profile.txt
#   BENCH_DIR               scratch: data, logs (default /tmp/cohort-bench-run)
#   BENCH_CLIENT_PORT, BENCH_PEER_PORT   move cohort's port blocks (default
#                           7401-7403 and 7501-7503), e.g. for a test run on
#                           a machine where others use them
#   BENCH_BUILD             cohort build directory (default build-bench)
#   BENCH_OUT, BENCH_RESULTS   where raw.txt and RESULTS.md go
#   BENCH_STAGES="systems stall"   what to run (default both):
#                           systems: every system of BENCH_SYSTEMS (starts
#                             raw.txt afresh, with the machine facts);
#                           stall: the stall stage, after cohort's cases
#                             when with systems (and only if BENCH_SYSTEMS
#                             has cohort). Alone (BENCH_STAGES=stall) it
#                             builds cohort and cohort-client-test, removes
#                             the stall lines of an earlier stall stage from
#                             the existing raw.txt (every other line stays,
#                             meta total_seconds included), appends its own
#                             (and meta stall_* lines: date, commit, command,
#                             seconds) and regenerates RESULTS.md; no
#                             install, no other system
#   BENCH_STALL_TRANSFERS, BENCH_STALL_REJUVENATIONS   the stall stage's
#                           rounds (default 5 and 3; quick: 2 and 1)
#   BENCH_STALL_RECONFIGS   the stall stage's rounds of `cohort add 3`, `add
#                           4`, `remove 3`, `remove 4` (default 3; quick: 1)
#   BENCH_STALL_PORT_BASE   the stall stage's port block (6 ports from it;
#                           default a free block the harness finds in
#                           10000-32000)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE=$ROOT/bench
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
    SECS=${BENCH_SECONDS:-3}
    WARM=${BENCH_WARMUP:-1}
    TRIALS=${BENCH_FAILOVER_TRIALS:-2}
else
    SECS=${BENCH_SECONDS:-10}
    WARM=${BENCH_WARMUP:-2}
    TRIALS=${BENCH_FAILOVER_TRIALS:-5}
fi
SYSTEMS=${BENCH_SYSTEMS:-cohort etcd zookeeper redis}
STAGES=${BENCH_STAGES:-systems stall}
if [ "$QUICK" = 1 ]; then
    STALL_TRANSFERS=${BENCH_STALL_TRANSFERS:-2}
    STALL_REJUVENATIONS=${BENCH_STALL_REJUVENATIONS:-1}
    STALL_RECONFIGS=${BENCH_STALL_RECONFIGS:-1}
else
    STALL_TRANSFERS=${BENCH_STALL_TRANSFERS:-5}
    STALL_REJUVENATIONS=${BENCH_STALL_REJUVENATIONS:-3}
    STALL_RECONFIGS=${BENCH_STALL_RECONFIGS:-3}
fi
export BENCH_DIR=${BENCH_DIR:-/tmp/cohort-bench-run}
BUILD=${BENCH_BUILD:-$ROOT/build-bench}
if [ "$QUICK" = 1 ]; then
    OUT=${BENCH_OUT:-$BENCH_DIR/quick}
    RESULTS_MD=${BENCH_RESULTS:-$OUT/RESULTS.md}
else
    OUT=${BENCH_OUT:-$HERE/results}
    RESULTS_MD=${BENCH_RESULTS:-$HERE/RESULTS.md}
fi
RAW=$OUT/raw.txt
LOGS=$BENCH_DIR/logs
export COHORT=$BUILD/cohort
# cohort's client and peer port blocks (bench/cohort_cluster.sh reads the same
# variables).
export BENCH_CLIENT_PORT=${BENCH_CLIENT_PORT:-7401}
export BENCH_PEER_PORT=${BENCH_PEER_PORT:-7501}
CP=$BENCH_CLIENT_PORT
PP=$BENCH_PEER_PORT
ETCD_BENCH=$HERE/.build/etcd_bench
ZK_BENCH=$HERE/.build/zk_bench

# Workload parameters.
KEYS=10000
BIG_VALUE=1048576
BIG_KEYS=100              # 1 MiB values: 100 MiB of data, not 10 GiB
MID_VALUE=65536
MID_KEYS=1000             # 64 KiB values: 64 MiB of data
SNAP_LOADED=20000         # snapshot interval of the "snapshot under load" run
SNAP_STEADY=1000000       # ... and of its steady-state baseline (no snapshot)
# cohort also snapshots when the log's bodies fill half its arena, which is
# 16 x --max-value-size but at least 64 MiB: at tens of thousands of 100-byte
# writes a second that is every few seconds. Both snapshot runs (and only
# those) raise --max-value-size to 12 MiB (the most the peer transport's
# 64 MiB send queue allows), making the arena ~193 MiB (~800,000 100-byte
# writes before half of it fills), and last at most 6 s, so that only the
# interval decides when snapshots happen. The report shows the count.
SNAP_COHORT_ARGS="--max-value-size 12582912"
SNAP_SECS=$((SECS < 6 ? SECS : 6))
# Steady and loaded runs alternate this many times; the report takes the
# median of each, since one p99.9 from a shared VM varies by 2x run to run.
if [ "$QUICK" = 1 ]; then
    SNAP_PAIRS=${BENCH_SNAP_PAIRS:-1}
else
    SNAP_PAIRS=${BENCH_SNAP_PAIRS:-3}
fi
FAILOVER_KILL_AFTER_MS=2000
# cohort bench keeps writing --after-ms after the first acknowledgement after
# the kill; etcd_bench and zk_bench keep writing --after-ms after the kill
# itself, so theirs must outlast their failover (etcd's election timeout is
# 1 s, ZooKeeper's session reconnects take seconds).
COHORT_FAILOVER_AFTER_MS=1000
PEER_FAILOVER_AFTER_MS=8000
[ "$QUICK" = 1 ] && PEER_FAILOVER_AFTER_MS=5000

RUN_ID=0
STARTED=()          # systems whose cluster may be running
RESPAWNED=()        # pids of members this script restarted itself
CUR_SW=""           # the running snapwatch.py, if any
CUR_PERF=""         # the running perf record, if any
START_WHY=""        # why start_cluster failed
T0=$SECONDS

log() { echo "run.sh: $(date +%T) $*" >&2; }
raw() { echo "$*" >>"$RAW"; }

script_of() {
    case $1 in
    cohort) echo "$HERE/cohort_cluster.sh" ;;
    etcd) echo "$HERE/etcd/cluster.sh" ;;
    zookeeper) echo "$HERE/zk/cluster.sh" ;;
    redis) echo "$HERE/redis/cluster.sh" ;;
    esac
}

members_of() {
    case $1 in
    cohort) echo "127.0.0.1:$CP,127.0.0.1:$((CP + 1)),127.0.0.1:$((CP + 2))" ;;
    etcd) echo 127.0.0.1:12379,127.0.0.1:12389,127.0.0.1:12399 ;;
    zookeeper) echo 127.0.0.1:12181,127.0.0.1:12182,127.0.0.1:12183 ;;
    redis) echo 127.0.0.1:7601 ;;
    esac
}

# The load generator's command (an array in LOADGEN).
loadgen() {
    case $1 in
    cohort) LOADGEN=("$COHORT" bench --system cohort) ;;
    redis) LOADGEN=("$COHORT" bench --system redis) ;;
    etcd) LOADGEN=("$ETCD_BENCH" --system etcd) ;;
    zookeeper) LOADGEN=("$ZK_BENCH" --system zookeeper) ;;
    esac
}

cluster() { # cluster <system> <command> [args]
    local s=$1
    shift
    bash "$(script_of "$s")" "$@"
}

server_pids() {
    case $1 in
    cohort) cluster cohort pids ;;
    *) cluster "$1" pids ;;
    esac 2>/dev/null | grep -E '^[0-9]+$'
}

leader_pid() {
    case $1 in
    cohort) cluster cohort primary-pid ;;
    *) cluster "$1" leader-pid ;;
    esac 2>/dev/null | grep -E '^[0-9]+$' | head -n 1
}

# Why a system cannot run here, or nothing.
missing() {
    local s=$1 f
    f=$(script_of "$s")
    [ -f "$f" ] || { echo "no $f"; return; }
    case $s in
    cohort | redis) [ -x "$COHORT" ] || { echo "no $COHORT"; return; } ;;
    etcd) [ -x "$ETCD_BENCH" ] || { echo "no $ETCD_BENCH (bench/install.sh)"; return; } ;;
    zookeeper) [ -x "$ZK_BENCH" ] || { echo "no $ZK_BENCH (bench/install.sh)"; return; } ;;
    esac
    case $s in
    etcd) command -v etcd >/dev/null || echo "etcd not installed" ;;
    zookeeper) [ -f /usr/share/java/zookeeper.jar ] || echo "zookeeper not installed" ;;
    redis) command -v redis-server >/dev/null || echo "redis-server not installed" ;;
    esac
}

ports_of() {
    case $1 in
    cohort) echo "$CP $((CP + 1)) $((CP + 2)) $PP $((PP + 1)) $((PP + 2))" ;;
    etcd) echo 12379 12380 12389 12390 12399 12400 ;;
    zookeeper) echo 12181 12182 12183 12801 12802 12803 12811 12812 12813 ;;
    redis) echo 7601 ;;
    esac
}

# The system's ports that something already listens on (after waiting up to
# 10 s for a previous cluster's processes to let go).
busy_ports() {
    local p busy
    for _ in $(seq 1 20); do
        busy=""
        for p in $(ports_of "$1"); do
            ss -Hltn "sport = :$p" 2>/dev/null | grep -q . && busy="$busy $p"
        done
        [ -z "$busy" ] && return 0
        sleep 0.5
    done
    echo "$busy"
}

# start_cluster <system> [VAR=value ...]: start it fresh with extra
# environment (snapshot settings); 0 if it serves.
start_cluster() {
    local s=$1 busy
    shift
    busy=$(busy_ports "$s")
    if [ -n "$busy" ]; then
        # Someone else's server: starting ours would fail, or worse, the
        # benchmark would measure theirs.
        log "$s: ports in use by other processes:$busy; not starting"
        START_WHY="ports in use by other processes:$busy"
        return 1
    fi
    START_WHY="the cluster did not start (see $LOGS/cluster-$s.log)"
    log "starting $s ${*:-}"
    STARTED+=("$s")
    if ! env "$@" bash "$(script_of "$s")" start >>"$LOGS/cluster-$s.log" 2>&1; then
        log "$s did not start; see $LOGS/cluster-$s.log"
        tail -n 5 "$LOGS/cluster-$s.log" >&2
        stop_cluster "$s"
        return 1
    fi
    return 0
}

stop_cluster() {
    local s=$1 pid keep=()
    cluster "$s" stop >>"$LOGS/cluster-$s.log" 2>&1 || true
    # Members this script restarted itself whose pid files the cluster
    # script no longer recognised.
    for pid in "${RESPAWNED[@]}"; do
        # Still alive and still ours (its command line names $BENCH_DIR).
        if alive "$pid" &&
            tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$BENCH_DIR"; then
            kill -TERM "$pid" 2>/dev/null
            sleep 1
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    RESPAWNED=()
    for x in "${STARTED[@]}"; do [ "$x" = "$s" ] || keep+=("$x"); done
    STARTED=("${keep[@]}")
}

cleanup() {
    local s
    [ -n "$CUR_SW" ] && kill "$CUR_SW" 2>/dev/null
    [ -n "$CUR_PERF" ] && kill "$CUR_PERF" 2>/dev/null
    for s in "${STARTED[@]}"; do
        log "stopping $s (cleanup)"
        stop_cluster "$s"
    done
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# Snapshot counters of etcd and ZooKeeper (cohort's are watched live by
# bench/snapwatch.py): etcd's snapshot-save histogram count summed over the
# members, ZooKeeper's "Snapshotting" log lines.
snap_counter() {
    local s=$1 n=0 port c
    case $s in
    etcd)
        for port in 12379 12389 12399; do
            c=$(curl -s -m 2 "http://127.0.0.1:$port/metrics" 2>/dev/null |
                sed -n 's/^etcd_debugging_snap_save_total_duration_seconds_count \([0-9]*\).*/\1/p')
            n=$((n + ${c:-0}))
        done
        ;;
    zookeeper)
        n=$(cat "$BENCH_DIR"/zk/*/server.log 2>/dev/null | grep -c 'Snapshotting:' || true)
        ;;
    esac
    echo "${n:-0}"
}

# /proc/stat's aggregate cpu line: "busy idle iowait" in ticks.
cpu_ticks() {
    awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5, $6}' /proc/stat
}

# run_case <system> <tag> <loadgen args...>: one run, bounded in time;
# appends its tagged result line and CPU/memory lines to raw.txt. The load
# goes to every member (--members), or to RUN_MEMBERS if set (the
# primary-only and through-a-backup runs).
run_case() {
    local s=$1 tag=$2
    shift 2
    RUN_ID=$((RUN_ID + 1))
    local id=$RUN_ID pids snap0=0 snap1 sw="" perf="" rc line t0 c0 c1 client
    pids=$(server_pids "$s" | paste -sd, -)
    if [ -z "$pids" ]; then
        raw "fail run=$id tag=$tag system=$s reason=no server processes"
        log "[$id] $s $tag: no server processes"
        return 1
    fi
    loadgen "$s"
    local cmd=("${LOADGEN[@]}" --members "${RUN_MEMBERS:-$(members_of "$s")}" "$@")
    case $s in
    cohort) python3 "$HERE/snapwatch.py" "$CP" $((CP + 1)) $((CP + 2)) >"$LOGS/run-$id.snap" 2>&1 &
        sw=$!
        CUR_SW=$sw ;;
    etcd | zookeeper) snap0=$(snap_counter "$s") ;;
    esac
    if [ "${BENCH_PROFILE:-0}" = 1 ] && [ "$s" = cohort ] && [ "$tag" = write-100-c128 ]; then
        local ppid
        ppid=$(leader_pid cohort)
        perf record -e cpu-clock -F 999 -g -p "$ppid" -o "$BENCH_DIR/perf.data" \
            -- sleep "$((WARM + SECS))" >"$LOGS/perf-record.log" 2>&1 &
        perf=$!
        CUR_PERF=$perf
    fi
    log "[$id] $s $tag: ${cmd[*]:1}"
    local idle0 io0 idle1 io1
    read -r c0 idle0 io0 <<<"$(cpu_ticks)"
    t0=$(date +%s.%N)
    # bash's `time` of the whole pipeline child: the load generator's CPU
    # (and procstat's own sampling, a few percent of one core at most).
    local TIMEFORMAT='%U %S'
    {
        time timeout -k 5 "$((WARM + SECS + 180))" \
            python3 "$HERE/procstat.py" run --pids "$pids" -- "${cmd[@]}" \
            >"$LOGS/run-$id.out" 2>"$LOGS/run-$id.err"
    } 2>"$LOGS/run-$id.time"
    rc=$?
    local elapsed
    elapsed=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b - a}')
    read -r c1 idle1 io1 <<<"$(cpu_ticks)"
    client=$(awk '{printf "%.2f", $1 + $2}' "$LOGS/run-$id.time" 2>/dev/null)
    if [ -n "$sw" ]; then
        kill -TERM "$sw" 2>/dev/null
        wait "$sw" 2>/dev/null
        CUR_SW=""
        snap1=$(sed -n 's/^snapshots count=\([0-9]*\).*/\1/p' "$LOGS/run-$id.snap")
        raw "snapshots run=$id count=${snap1:-0}"
    elif [ "$s" = etcd ] || [ "$s" = zookeeper ]; then
        snap1=$(snap_counter "$s")
        raw "snapshots run=$id count=$((snap1 - snap0))"
    fi
    if [ -n "$perf" ]; then
        wait "$perf" 2>/dev/null
        CUR_PERF=""
        perf report -i "$BENCH_DIR/perf.data" --no-children --sort dso,sym --stdio \
            -g none 2>/dev/null | grep -v '^$' | head -n 80 >"$OUT/profile.txt" || true
        log "profile of the cohort primary: $OUT/profile.txt"
    fi
    line=$(grep -m1 '^bench ' "$LOGS/run-$id.out")
    if [ -z "$line" ]; then
        local why
        why=$(grep -v '^\s*$' "$LOGS/run-$id.err" | tail -n 1 | tr -s ' \t' '  ' | cut -c1-160)
        raw "fail run=$id tag=$tag system=$s rc=$rc reason=${why:-none}"
        log "[$id] $s $tag FAILED (exit $rc): see $LOGS/run-$id.err"
        return 1
    fi
    raw "$line tag=$tag run=$id elapsed_s=$elapsed client_cpu_s=${client:-0}${RUN_MEMBERS:+ via=$RUN_MEMBERS}"
    grep '^procstat ' "$LOGS/run-$id.out" | sed "s/\$/ run=$id/" >>"$RAW"
    local dt=$(((c1 - c0) + (idle1 - idle0) + (io1 - io0)))
    [ "$dt" -gt 0 ] && raw "machine_cpu run=$id busy_pct=$((100 * (c1 - c0) / dt)) iowait_pct=$((100 * (io1 - io0) / dt))"
    log "[$id] $(echo "$line" | grep -o 'ops_per_s=[^ ]*\|p50_us=[^ ]*\|p99_us=[^ ]*\|errors=[^ ]*\|failover_ms=[^ ]*' | tr '\n' ' ')"
    return 0
}

# Running and not a zombie (servers started in the background are reparented
# to init, which may reap them late).
alive() {
    local st
    st=$(sed -n 's/^State:\s*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

conns_for() { if [ "$1" -lt 64 ]; then echo "$1"; else echo 64; fi; }

common() { echo --seconds "$SECS" --warmup-seconds "$WARM"; }

write_cases() {
    local s=$1 v c
    for v in 100 1024; do
        for c in 1 16 128 1000; do
            # shellcheck disable=SC2046
            run_case "$s" "write-$v-c$c" --workload write --value-size "$v" \
                --conc "$c" --conns "$(conns_for "$c")" --keys $KEYS $(common)
        done
    done
}

read_cases() {
    local s=$1 w
    for w in read lread mixed; do
        # shellcheck disable=SC2046
        run_case "$s" "$w-c128" --workload $w --conc 128 --conns 64 --keys $KEYS \
            --value-size 100 $(common)
    done
}

# cohort only: a transaction of 5 INCRs (what EXEC commits for MULTI,
# INCR x 5, EXEC) at 128 outstanding.
exec_case() {
    # shellcheck disable=SC2046
    run_case "$1" exec5-c128 --workload exec --conc 128 --conns 64 --keys $KEYS \
        $(common)
}

# cohort only: PUBLISH of 100 B to one channel with 100 subscribers spread
# over the members (bench/subscribers.py), at 128 outstanding; the
# subscribers' line (messages each received) goes to the raw file too.
publish_case() {
    local ready="$LOGS/subscribers.ready" subs
    rm -f "$ready"
    python3 "$HERE/subscribers.py" --members "$(members_of "$1")" --n 100 \
        --channel k0 --ready-file "$ready" >"$LOGS/subscribers.out" \
        2>"$LOGS/subscribers.err" &
    subs=$!
    for _ in $(seq 1 200); do
        [ -e "$ready" ] && break
        sleep 0.05
    done
    if [ ! -e "$ready" ]; then
        raw "fail tag=publish-fanout100-c128 system=$1 reason=subscribers did not start"
        kill -TERM "$subs" 2>/dev/null
        wait "$subs" 2>/dev/null
        return 1
    fi
    # shellcheck disable=SC2046
    run_case "$1" publish-fanout100-c128 --workload publish --keys 1 \
        --value-size 100 --conc 128 --conns 64 $(common)
    kill -TERM "$subs" 2>/dev/null
    wait "$subs" 2>/dev/null
    grep '^subscribers ' "$LOGS/subscribers.out" | sed "s/\$/ run=$RUN_ID/" >>"$RAW"
}

big_case() {
    # shellcheck disable=SC2046
    run_case "$1" write-64k-c16 --workload write --value-size $MID_VALUE --conc 16 \
        --conns 16 --keys $MID_KEYS $(common)
    # shellcheck disable=SC2046
    run_case "$1" write-1m-c16 --workload write --value-size $BIG_VALUE --conc 16 \
        --conns 16 --keys $BIG_KEYS $(common)
}

# cohort's primary (host:port) as it answers now, or nothing.
cohort_primary() {
    "$COHORT" bench --members "$(members_of cohort)" --print-primary 2>/dev/null |
        sed -n 's/^primary=\([^ ]*\) .*/\1/p'
}

# cohort only, the second table of issue 16: the key workloads with all the
# load on the primary (every connection to it), and one client through a
# backup (a member that is not the primary, which forwards its writes). The
# primary is asked again before each run; nothing is run (a fail line says
# why) if there is none.
primary_cases() {
    local s=$1 p b m args tag
    for tag in write-100-c1 write-100-c16 write-100-c128 read-c128 backup; do
        p=$(cohort_primary)
        if [ -z "$p" ]; then
            raw "fail tag=$([ $tag = backup ] && echo backup-write-100-c1 || echo primary-$tag) system=$s reason=no primary (cohort bench --print-primary)"
            continue
        fi
        case $tag in
        write-100-c*)
            local c=${tag##*-c}
            args=(--workload write --value-size 100 --conc "$c" --conns "$(conns_for "$c")" --keys "$KEYS")
            tag=primary-$tag
            m=$p ;;
        read-c128)
            args=(--workload read --conc 128 --conns 64 --keys "$KEYS" --value-size 100)
            tag=primary-$tag
            m=$p ;;
        backup)
            for b in $(members_of cohort | tr , ' '); do
                [ "$b" != "$p" ] && break
            done
            args=(--workload write --value-size 100 --conc 1 --conns 1 --keys "$KEYS")
            tag=backup-write-100-c1
            m=$b ;;
        esac
        # shellcheck disable=SC2046
        RUN_MEMBERS=$m run_case "$s" "$tag" "${args[@]}" $(common)
    done
}

# save_member <pid> before a failover trial kills it, respawn_member after:
# the member restarts with the command line, environment, working directory
# and log it had, and its new pid goes into the cluster script's pid file
# (the file under $BENCH_DIR that held the old pid), so `cluster.sh stop`
# and `leader-pid` know it.
save_member() {
    local pid=$1
    mapfile -d '' SAVED_ARGV <"/proc/$pid/cmdline"
    mapfile -d '' SAVED_ENV <"/proc/$pid/environ"
    SAVED_CWD=$(readlink "/proc/$pid/cwd")
    SAVED_LOG=$(readlink "/proc/$pid/fd/1")
    [ -f "$SAVED_LOG" ] || SAVED_LOG=$LOGS/respawn.log
    SAVED_PIDFILE=$(grep -rlx --include='*pid' "$pid" "$BENCH_DIR" 2>/dev/null | head -n 1)
}

respawn_member() {
    local new
    (cd "$SAVED_CWD" && exec setsid env -i "${SAVED_ENV[@]}" "${SAVED_ARGV[@]}" \
        >>"$SAVED_LOG" 2>&1 </dev/null) &
    new=$!
    RESPAWNED+=("$new")
    [ -n "$SAVED_PIDFILE" ] && echo "$new" >"$SAVED_PIDFILE"
    log "restarted the killed member as pid $new"
}

# Until every member serves again (60 s at most).
wait_healthy() {
    local s=$1 deadline=$((SECONDS + 60)) st
    if [ "$s" = cohort ]; then
        cluster cohort wait-healthy >>"$LOGS/cluster-$s.log" 2>&1
        return
    fi
    while [ $SECONDS -lt $deadline ]; do
        st=$(cluster "$s" status 2>/dev/null)
        if [ "$(grep -cE '(mode|role)=(leader|follower)' <<<"$st")" = 3 ]; then
            return 0
        fi
        sleep 0.3
    done
    log "$s not healthy after 60 s: $(tr '\n' ' ' <<<"$st")"
    return 1
}

failover_cases() {
    local s=$1 t leader after
    after=$PEER_FAILOVER_AFTER_MS
    [ "$s" = cohort ] && after=$COHORT_FAILOVER_AFTER_MS
    for t in $(seq 1 "$TRIALS"); do
        if ! leader=$(leader_pid "$s") || [ -z "$leader" ]; then
            raw "fail run=$((RUN_ID + 1)) tag=failover system=$s reason=no leader before the trial"
            log "$s: no leader before failover trial $t"
            return 1
        fi
        [ "$s" = cohort ] || save_member "$leader"
        run_case "$s" failover --workload failover --conc 1 \
            --kill-cmd "kill -9 $leader" --kill-after-ms $FAILOVER_KILL_AFTER_MS \
            --after-ms "$after" --seconds 60
        for _ in $(seq 1 50); do alive "$leader" || break; sleep 0.1; done
        alive "$leader" && log "$s: the leader (pid $leader) survived its kill?"
        if [ "$s" = cohort ]; then
            cluster cohort restart-dead >>"$LOGS/cluster-$s.log" 2>&1
        else
            respawn_member
        fi
        wait_healthy "$s" || return 1
        sleep 1
    done
}

snapshot_cases() {
    local s=$1 mode interval pair
    for pair in $(seq 1 "$SNAP_PAIRS"); do
    for mode in steady loaded; do
        interval=$SNAP_STEADY
        [ $mode = loaded ] && interval=$SNAP_LOADED
        local envs=()
        case $s in
        cohort) envs=(COHORT_SERVER_ARGS="--snapshot-interval-ops $interval $SNAP_COHORT_ARGS") ;;
        etcd) envs=("ETCD_SNAPSHOT_COUNT=$interval") ;;
        # ZooKeeper reads snapCount from the zookeeper.snapCount property.
        zookeeper) envs=("JAVA_TOOL_OPTIONS=-Dzookeeper.snapCount=$interval") ;;
        esac
        raw "snapconfig system=$s mode=$mode interval=$interval"
        start_cluster "$s" "${envs[@]}" || { raw "fail tag=snap-$mode system=$s reason=$START_WHY"; continue; }
        run_case "$s" "snap-$mode" --workload write --value-size 100 --conc 128 \
            --conns 64 --keys $KEYS --seconds "$SNAP_SECS" --warmup-seconds "$WARM"
        stop_cluster "$s"
    done
    done
}

meta_facts() {
    raw "meta date $(date -u '+%Y-%m-%d %H:%M UTC')"
    raw "meta command $([ "$QUICK" = 1 ] && echo 'BENCH_QUICK=1 ')${BENCH_COMMAND:-bash bench/run.sh}"
    raw "meta mode $([ "$QUICK" = 1 ] && echo quick || echo full)"
    raw "meta durations seconds=$SECS warmup=$WARM failover_trials=$TRIALS"
    raw "meta nproc $(nproc)"
    raw "meta cpu $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)"
    raw "meta mem $(awk '/^MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    raw "meta kernel $(uname -sr)"
    # shellcheck disable=SC1091
    raw "meta os $(. /etc/os-release && echo "$PRETTY_NAME")"
    raw "meta disk $BENCH_DIR on $(df -h "$BENCH_DIR" | awk 'NR==2{print $1", "$2", "$5" used"}')$(lsblk -dno NAME,SIZE,ROTA,MODEL 2>/dev/null | awk '$2!="0B" {printf "; %s %s %s%s", $1, $2, ($3=="1" ? "rotational" : "non-rotational"), ($4=="" ? "" : " " $4)}')"
    raw "meta fs $(df -T "$BENCH_DIR" | awk 'NR==2{print $2}')"
    # Other load on the machine, which would distort every figure.
    local a0 i0 w0 a1 i1 w1
    read -r a0 i0 w0 <<<"$(cpu_ticks)"
    sleep 2
    read -r a1 i1 w1 <<<"$(cpu_ticks)"
    raw "meta idle_check $((100 * (a1 - a0) / ((a1 - a0) + (i1 - i0) + (w1 - w0) + 1)))% busy over 2 s before the first run; load average $(cut -d' ' -f1-3 /proc/loadavg)"
    # What one fsync costs on this disk: 500 4 KiB writes, each O_DSYNC.
    local t TIMEFORMAT=%R
    t=$( { time dd if=/dev/zero of="$BENCH_DIR/fsync-probe" bs=4k count=500 \
        oflag=dsync 2>/dev/null; } 2>&1 | tail -n 1)
    rm -f "$BENCH_DIR/fsync-probe"
    [ -n "$t" ] && raw "meta fsync_probe $(awk -v t="$t" 'BEGIN{printf "%.0f us per 4 KiB O_DSYNC write (500 in %.2f s)", t*1e6/500, t}')"
    # What the disk can fdatasync sequentially with 64 KiB and 1 MiB blocks
    # (the bound of the 64 KiB and 1 MiB write runs): writes of that size,
    # each O_DSYNC (an fdatasync per write), one after the other into a
    # preallocated file, as cohort's WAL writes its preallocated segments.
    dsync_probe 65536 512
    dsync_probe 1048576 128
    raw "meta cohort_rev $(rev_of_checkout)"
    raw "meta cohort_build $BUILD (Release)"
    raw "meta etcd_version $(etcd --version 2>/dev/null | head -n 1 | sed 's/etcd Version: //') (Debian etcd-server $(dpkg-query -W -f '${Version}' etcd-server 2>/dev/null))"
    raw "meta zookeeper_version $(dpkg-query -W -f '${Version}' zookeeper 2>/dev/null) (Debian zookeeper), $(java -version 2>&1 | head -n 1)"
    raw "meta redis_version $(redis-server --version 2>/dev/null | sed 's/Redis server //;s/ sha=.*//') (Debian redis-server $(dpkg-query -W -f '${Version}' redis-server 2>/dev/null))"
}

# dsync_probe <block bytes> <count>: a "meta dsync_<block>" line with the
# time per O_DSYNC write and the bandwidth that gives: the best of 3 passes
# (what the disk can do; another process's I/O only slows a pass), each
# pass's seconds listed.
dsync_probe() {
    local bs=$1 n=$2 f=$BENCH_DIR/dsync-probe t all="" TIMEFORMAT=%R
    for _ in 1 2 3; do
        rm -f "$f"
        fallocate -l $((bs * n)) "$f" 2>/dev/null || true
        sync "$f" 2>/dev/null
        t=$( { time dd if=/dev/zero of="$f" bs="$bs" count="$n" oflag=dsync \
            conv=notrunc 2>/dev/null; } 2>&1 | tail -n 1)
        [ -n "$t" ] && all="$all${all:+,}$t"
    done
    rm -f "$f"
    [ -n "$all" ] && raw "meta dsync_$bs $(awk -v all="$all" -v bs="$bs" -v n="$n" 'BEGIN{
        k = split(all, x, ","); t = x[1]; for (i = 2; i <= k; i++) if (x[i] < t) t = x[i];
        printf "us_per_write=%.0f mib_per_s=%.1f writes=%d secs=%.3f passes_s=%s", t*1e6/n, (t > 0 ? bs*n/t/1048576 : 0), n, t, all}')"
}

# The checked-out commit, read from .git without running git (.git may be a
# file naming the git directory, as in a worktree, whose refs live in the
# common directory).
rev_of_checkout() {
    local gd=$ROOT/.git common head ref f
    if [ -f "$gd" ]; then
        gd=$(sed -n 's/^gitdir: //p' "$gd")
        [[ $gd == /* ]] || gd=$ROOT/$gd
    fi
    common=$gd
    if [ -f "$gd/commondir" ]; then
        common=$(cat "$gd/commondir")
        [[ $common == /* ]] || common=$gd/$common
    fi
    head=$(cat "$gd/HEAD" 2>/dev/null) || { echo unknown; return; }
    if [[ $head == ref:* ]]; then
        ref=${head#ref: }
        for f in "$gd/$ref" "$common/$ref"; do
            [ -f "$f" ] && { cut -c1-12 "$f"; return; }
        done
        awk -v r="$ref" '$2==r{print substr($1,1,12)}' "$common/packed-refs" 2>/dev/null
    else
        echo "${head:0:12}"
    fi
}

has_stage() { [[ " $STAGES " == *" $1 "* ]]; }

# The write stall during a leadership transfer and a rolling restart (issue
# 12): tests/system/stall_probe.py (see the header), bounded by `timeout`,
# appending its lines to raw.txt after removing an earlier stall stage's.
stall_stage() {
    local t0=$SECONDS rc why limit tmp cmd
    local client=$BUILD/cohort-client-test
    tmp=$(mktemp "$OUT/raw.XXXXXX") || return 1
    grep -vE '^(stall|stall_config|stall_summary) |^meta stall_|^fail (run=[0-9]+ )?tag=stall ' \
        "$RAW" >"$tmp"
    cat "$tmp" >"$RAW" # the same file, every other line kept
    rm -f "$tmp"
    raw "meta stall_date $(date -u '+%Y-%m-%d %H:%M UTC')"
    if has_stage systems; then
        cmd=${BENCH_COMMAND:-bash bench/run.sh}
    else
        cmd="BENCH_STAGES=stall bash bench/run.sh"
    fi
    raw "meta stall_command $([ "$QUICK" = 1 ] && echo 'BENCH_QUICK=1 ')$cmd"
    raw "meta stall_mode $([ "$QUICK" = 1 ] && echo quick || echo full)"
    raw "meta stall_rev $(rev_of_checkout)"
    raw "meta stall_load $(cut -d' ' -f1-3 /proc/loadavg)"
    if [ ! -x "$COHORT" ] || [ ! -x "$client" ]; then
        raw "fail tag=stall system=cohort reason=not built: $([ -x "$COHORT" ] || echo "$COHORT ")$([ -x "$client" ] || echo "$client")"
        log "stall stage: cohort or cohort-client-test not built"
        return 1
    fi
    limit=$((120 + 60 * (STALL_TRANSFERS + STALL_REJUVENATIONS + 4 * STALL_RECONFIGS)))
    mkdir -p "$BENCH_DIR/stall"
    log "stall stage: $STALL_TRANSFERS transfers, $STALL_REJUVENATIONS rejuvenations, $STALL_RECONFIGS add/remove rounds (at most $limit s)"
    (
        [ -n "${BENCH_STALL_PORT_BASE:-}" ] && export COHORT_TEST_PORT_BASE=$BENCH_STALL_PORT_BASE
        export TMPDIR=$BENCH_DIR/stall # the group's data directories
        exec timeout -k 10 "$limit" python3 "$ROOT/tests/system/stall_probe.py" "$COHORT" \
            --transfers "$STALL_TRANSFERS" --rejuvenations "$STALL_REJUVENATIONS" \
            --reconfigs "$STALL_RECONFIGS" --raw "$RAW"
    ) >"$LOGS/stall.out" 2>"$LOGS/stall.err"
    rc=$?
    if [ "$rc" != 0 ]; then
        if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
            why="stall_probe.py timed out after $limit s"
        else
            # The exception's line (a TestFailure is followed by the
            # servers' log tails), else the last line.
            why=$(grep -E '^[A-Za-z_.]*(Error|Failure|Exception|Exit)\b|^stall_probe: ' \
                "$LOGS/stall.err" | tail -n 1)
            [ -n "$why" ] || why=$(grep -v '^\s*$' "$LOGS/stall.err" | tail -n 1)
            why="stall_probe.py exit $rc: $(cut -c1-300 <<<"$why")"
        fi
        raw "fail tag=stall system=cohort reason=$why (logs: $LOGS/stall.out, stall.err)"
        log "stall stage: $why"
    fi
    raw "meta stall_seconds $((SECONDS - t0))"
    log "stall stage done in $((SECONDS - t0)) s: $(grep -c '^stall ' "$RAW") rounds"
    return 0
}

main() {
    local st
    for st in $STAGES; do
        case $st in
        systems | stall) ;;
        *) log "BENCH_STAGES: unknown stage $st (systems, stall)"; exit 2 ;;
        esac
    done
    mkdir -p "$BENCH_DIR" "$LOGS" "$OUT"
    if has_stage systems; then
        rm -f "$LOGS"/run-*.* "$LOGS"/cluster-*.log
        [ "${BENCH_PROFILE:-0}" = 1 ] && rm -f "$OUT/profile.txt"
        : >"$RAW"
    elif [ ! -s "$RAW" ]; then
        log "no $RAW to append to: the report will have the stall stage alone"
        touch "$RAW"
    fi
    log "stages: $STAGES; output: $RAW, $RESULTS_MD; logs: $LOGS"

    local targets=(--target cohort)
    has_stage stall && targets+=(--target cohort-client-test)
    log "building $(has_stage stall && echo "cohort and cohort-client-test" || echo cohort) (Release) in $BUILD"
    if ! { cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null &&
        cmake --build "$BUILD" -j "$(nproc)" "${targets[@]}" >"$LOGS/build.log" 2>&1; }; then
        tail -n 20 "$LOGS/build.log" >&2
        log "cohort build failed"
        exit 1
    fi
    if ! has_stage systems; then
        stall_stage
        report
        return
    fi
    if [ "${BENCH_SKIP_INSTALL:-0}" != 1 ]; then
        log "bench/install.sh (Debian packages, etcd_bench, zk_bench)"
        if ! bash "$HERE/install.sh" >"$LOGS/install.log" 2>&1; then
            tail -n 20 "$LOGS/install.log" >&2
            log "bench/install.sh failed; the systems it provides will be skipped"
        fi
    fi
    meta_facts

    local s why
    for s in $SYSTEMS; do
        why=$(missing "$s")
        if [ -n "$why" ]; then
            raw "skip system=$s reason=$why"
            log "SKIPPING $s: $why"
            continue
        fi
        local t_sys=$SECONDS
        if start_cluster "$s"; then
            write_cases "$s"
            # The reads and cohort's own cases run before the 64 KiB and
            # 1 MiB writes: after those the store holds ~160 MB of large
            # values, whose snapshots would land in the read stage.
            if [ "$s" != redis ]; then
                read_cases "$s"
                if [ "$s" = cohort ]; then
                    exec_case "$s"
                    publish_case "$s"
                    primary_cases "$s"
                fi
            fi
            big_case "$s"
            if [ "$s" != redis ]; then
                failover_cases "$s"
            fi
            stop_cluster "$s"
        else
            raw "fail tag=all system=$s reason=$START_WHY"
        fi
        [ "$s" != redis ] && snapshot_cases "$s"
        raw "meta time_$s $((SECONDS - t_sys)) s"
        log "$s done in $((SECONDS - t_sys)) s"
        [ "$s" = cohort ] && has_stage stall && stall_stage
    done
    raw "meta total_seconds $((SECONDS - T0))"
    log "all runs done in $((SECONDS - T0)) s"
    report
}

report() {
    log "writing $RESULTS_MD"
    local prof=()
    [ "${BENCH_PROFILE:-0}" = 1 ] && [ -s "$OUT/profile.txt" ] && prof=(--profile "$OUT/profile.txt")
    python3 "$HERE/report.py" "$RAW" -o "$RESULTS_MD" "${prof[@]}"
}

main "$@"
