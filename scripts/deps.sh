#!/usr/bin/env bash
# deps.sh — install the Debian packages cohort needs, only if missing.
# Called by `make run` and `make test`. As root it installs them; otherwise it
# prints what is missing and the command to install it, and fails.
# COHORT_NO_BROWSER=1 leaves out Chromium (see below).
set -euo pipefail

packages=(
    build-essential cmake pkg-config clang
    libcmocka-dev      # unit test framework
    libuv1-dev         # event loop (runtime)
    libxxhash-dev      # 64-bit hashing for log hash chains
    libssl-dev         # OpenSSL: client and peer TLS, HMAC, SHA-256
    openssl            # the system tests make their certificates with it
    redis-tools        # redis-cli / redis-benchmark for system tests
    iproute2 iptables  # network namespaces and packet drops in system tests
    python3            # system test drivers
    python3-redis      # redis-py: the client_tls test drives it as users do
)
# The status page's test renders it in headless Chromium, driven through
# chromedriver (tests/browser). About 300 MB with its libraries; set
# COHORT_NO_BROWSER=1 to leave them out (that test then skips, saying so).
if [ "${COHORT_NO_BROWSER:-0}" != "1" ]; then
    packages+=(chromium chromium-driver)
fi

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "cohort: missing Debian packages: ${missing[*]}" >&2
    echo "cohort: install them with: sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

echo "cohort: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Update the package lists once if they are empty or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
    apt-get update -qq
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
