#!/usr/bin/env bash
# hop_profile.sh — what the forward hop costs, counted per acknowledged write
# on each replica of a fresh 3-replica cluster (bench/cohort_cluster.sh):
# socket reads and writes, epoll_waits (loop wake-ups), futex calls (the
# storage thread hand-offs), pwrite+fdatasync (group commits) and context
# switches, from `perf stat` on each server process (all its threads) for
# 3 s in the middle of a 5 s `cohort bench` write run. Four runs: 1
# outstanding through one backup and at the primary, 16 outstanding through
# all members and at the primary only. Counts do not depend on the machine's
# load the way ops/s do; the ops/s and p50 are printed for reference.
#
#   COHORT=build/cohort BENCH_CLIENT_PORT=28000 BENCH_PEER_PORT=28010 \
#       BENCH_DIR=/tmp/hop bench/hop_profile.sh
#
# Needs perf (linux-perf) and permission to trace the servers (root, or
# kernel.perf_event_paranoid <= 1).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cohort=${COHORT:-$here/../build/cohort}
cbase=${BENCH_CLIENT_PORT:-7401}
all=127.0.0.1:$cbase,127.0.0.1:$((cbase + 1)),127.0.0.1:$((cbase + 2))
export COHORT=$cohort
"$here/cohort_cluster.sh" start >/dev/null
trap '"$here/cohort_cluster.sh" stop >/dev/null; rm -rf "$tmp"' EXIT
tmp=$(mktemp -d)
info=$("$cohort" bench --members "$all" --print-primary)
primary=$(echo "$info" | sed 's/^primary=\([^ ]*\) .*/\1/')
ppid=$(echo "$info" | sed 's/.* pid=\([0-9]*\).*/\1/')
backup=127.0.0.1:$cbase
[ "$primary" = "$backup" ] && backup=127.0.0.1:$((cbase + 1))
pids=$("$here/cohort_cluster.sh" pids)
ev=syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_epoll_wait
ev=$ev,syscalls:sys_enter_futex,syscalls:sys_enter_pwrite64
ev=$ev,syscalls:sys_enter_fdatasync,context-switches
"$cohort" bench --quiet --members "$all" --conc 16 --seconds 2 >/dev/null

run() { # label members conc
    "$cohort" bench --quiet --members "$2" --conc "$3" --seconds 5 \
        >"$tmp/bench" &
    local p
    sleep 1
    for p in $pids; do
        perf stat -x, -e "$ev" -p "$p" -o "$tmp/stat.$p" -- sleep 3 &
    done
    wait
    local line ops
    line=$(cat "$tmp/bench")
    ops=${line##* ops=}
    ops=${ops%% *}
    echo "$1: $(echo "$line" | grep -o 'ops_per_s=[0-9.]* p50_us=[0-9.]*')"
    for p in $pids; do
        local role=backup
        [ "$p" = "$ppid" ] && role=primary
        # Per op: the 3 s window's count / (ops * 3/5), the run's rate.
        awk -F, -v ops="$ops" -v role="$role" -v p="$p" '
            $3 ~ /sys_enter|context/ {
                n = $3; sub(/syscalls:sys_enter_/, "", n)
                s = s sprintf(" %s=%.2f", n, $1 / (ops * 3 / 5)) }
            END { printf "  %-7s pid %-7s per op:%s\n", role, p, s }' \
            "$tmp/stat.$p"
    done
}
run "1 outstanding through backup $backup" "$backup" 1
run "1 outstanding at the primary $primary" "$primary" 1
run "16 outstanding through all members" "$all" 16
run "16 outstanding at the primary only" "$primary" 16
