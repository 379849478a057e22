#!/usr/bin/env bash
# fsync_probe.sh — bench/fsync_probe.c, its three modes interleaved (so a
# noisy neighbour hits each alike): ROUNDS rounds of 500 writes per mode and
# block size (4096, and 256 ≈ one 100 B SET's 216-byte WAL record), in DIR
# (default a mktemp -d under /tmp, removed after); prints percentiles over all rounds.
#
#   bench/fsync_probe.sh [ROUNDS] [DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rounds=${1:-20}
dir=${2:-}
made=0
if [ -z "$dir" ]; then
    dir=$(mktemp -d /tmp/fsync-probe.XXXXXX)
    made=1
fi
rm -f "$dir"/lat_*
cc -O2 -o "$dir/fsync_probe" "$here/fsync_probe.c"
for ((r = 1; r <= rounds; r++)); do
    for bs in 4096 256; do
        for m in append fallocate prewrite; do
            "$dir/fsync_probe" $m 500 "$dir/f" $bs "$dir/lat_${m}_$bs" >/dev/null
        done
    done
done
for bs in 4096 256; do
    for m in append fallocate prewrite; do
        sort -n "$dir/lat_${m}_$bs" | awk -v l="$m block=$bs" '
            { v[NR] = $1 }
            END { printf "%-22s n=%d p50=%d p90=%d p99=%d p99.9=%d us\n", l, NR,
                  v[int(NR * .5) + 1], v[int(NR * .9) + 1], v[int(NR * .99) + 1],
                  v[int(NR * .999) + 1] }'
    done
done
rm -f "$dir"/lat_* "$dir/fsync_probe"
if [ "$made" = 1 ]; then rmdir "$dir"; fi
