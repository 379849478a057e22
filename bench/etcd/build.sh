#!/usr/bin/env bash
# bench/etcd/build.sh [OUTPUT] — build etcd_bench offline (default output
# bench/.build/etcd_bench).
#
# Debian 12's golang-go is 1.19 and has no module proxy here, so this builds
# in GOPATH mode (GO111MODULE=off) against the sources Debian ships in
# /usr/share/gocode/src: golang-etcd-server-dev provides
# go.etcd.io/etcd/clientv3 (3.4.23) and pulls in its dependencies (grpc,
# protobuf, zap, ...) as golang-*-dev packages. The package is copied into a
# throwaway GOPATH under /tmp because GOPATH mode only builds code that sits
# inside a GOPATH.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-$HERE/../.build/etcd_bench}
mkdir -p "$(dirname "$OUT")"
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
[ -d /usr/share/gocode/src/go.etcd.io/etcd/clientv3 ] ||
    { echo "build.sh: golang-etcd-server-dev missing (bench/install.sh)" >&2; exit 1; }
TMP=$(mktemp -d /tmp/etcd-bench-build.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/gopath/src/etcd_bench"
cp "$HERE"/*.go "$TMP/gopath/src/etcd_bench/"
cd "$TMP/gopath/src/etcd_bench"
export GO111MODULE=off GOFLAGS='' GOPROXY=off
export GOPATH="$TMP/gopath:/usr/share/gocode"
export GOCACHE=${GOCACHE:-/tmp/cohort-bench-gocache}
if [ "${ETCD_BENCH_TEST:-0}" = 1 ]; then go test .; fi
go build -o "$OUT" .
echo "build.sh: built $OUT" >&2
