#!/usr/bin/env bash
# bench/install.sh — install what the side-by-side benchmark needs and build
# the peers' load generators.
#
#   bench/install.sh            install packages (as root) and build
#   bench/install.sh --build    build only (packages already installed)
#
# Packages (Debian 12): zookeeper 3.8 + libzookeeper-mt-dev (C client),
# etcd-server/etcd-client 3.4, golang-go 1.19 + golang-etcd-server-dev
# (clientv3 source, built offline from /usr/share/gocode), redis-server 7.0,
# linux-perf. Idempotent: apt-get install of installed packages is a no-op.
#
# No system service is left running: a policy-rc.d that forbids service
# starts is in place during the install (an existing one is kept), and the
# zookeeper/etcd/redis services are stopped and disabled afterwards in case
# something started them anyway. The benchmark runs its own processes
# (bench/*/cluster.sh).
#
# Output: bench/.build/zk_bench and bench/.build/etcd_bench (gitignored).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BUILD_ONLY=0
[ "${1:-}" = "--build" ] && BUILD_ONLY=1

# libslf4j-java: slf4j-simple, the log binding bench/zk/cluster.sh uses
# (already a dependency of libzookeeper-java; named for clarity).
PKGS=(zookeeper libzookeeper-mt-dev libslf4j-java etcd-server etcd-client
      golang-go golang-etcd-server-dev redis-server redis-tools linux-perf
      build-essential procps python3)

stop_services() {
    # Disable the services these packages ship (etcd.service,
    # redis-server.service; Debian's zookeeper package has none) so a boot
    # does not start them, and stop any that runs now. `systemctl disable`
    # works without a running systemd; stop only where systemd runs.
    local svc user pids running=0
    if command -v systemctl >/dev/null 2>&1; then
        case "$(systemctl is-system-running 2>/dev/null || true)" in
        offline | unknown | "") ;;
        *) running=1 ;;
        esac
    fi
    for svc in zookeeper etcd redis-server; do
        if command -v systemctl >/dev/null 2>&1; then
            [ "$running" = 1 ] && systemctl stop "$svc.service" >/dev/null 2>&1 || true
            systemctl disable "$svc.service" >/dev/null 2>&1 || true
        fi
        if [ -x "/etc/init.d/$svc" ]; then
            [ "$running" = 1 ] || "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
            command -v update-rc.d >/dev/null 2>&1 &&
                update-rc.d "$svc" disable >/dev/null 2>&1 || true
        fi
    done
    # The packaged daemons run as their own users (the benchmark's as the
    # invoking user): stop any still running.
    for user in zookeeper etcd redis; do
        id "$user" >/dev/null 2>&1 || continue
        pids=$(pgrep -u "$user" 2>/dev/null || true)
        if [ -n "$pids" ]; then
            echo "install.sh: stopping packaged $user service (pids $pids)"
            kill $pids 2>/dev/null || true
        fi
    done
}

if [ "$BUILD_ONLY" = 0 ]; then
    missing=()
    for p in "${PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        if [ "$(id -u)" != 0 ]; then
            echo "install.sh: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
            exit 1
        fi
        POLICY=/usr/sbin/policy-rc.d
        made_policy=0
        if [ ! -e "$POLICY" ]; then
            printf '#!/bin/sh\nexit 101\n' > "$POLICY"
            chmod 755 "$POLICY"
            made_policy=1
        fi
        trap '[ "$made_policy" = 1 ] && rm -f "$POLICY"' EXIT
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q || true
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
    stop_services
fi

mkdir -p "$HERE/.build"
echo "install.sh: building zk_bench"
make -s -C "$HERE/zk" OUT="$HERE/.build"
echo "install.sh: building etcd_bench"
"$HERE/etcd/build.sh" "$HERE/.build/etcd_bench"
echo "install.sh: done: $HERE/.build/zk_bench $HERE/.build/etcd_bench"
