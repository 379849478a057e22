#!/usr/bin/env bash
# tidy.sh — keep the protocol core and common code pure (STYLE.md §7): no
# clocks, randomness, printing, environment, threads, sockets or files in
# src/core, and no allocation there outside *_init/*_deinit functions.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
banned='\b(time|clock_gettime|gettimeofday|rand|random|srand|getrandom|printf|fprintf|puts|getenv|pthread_[a-z_]+|socket|open|fopen|read|write|fsync|fdatasync)\s*\('
if grep -nE "$banned" src/core/*.c src/core/*.h 2>/dev/null | grep -v '^\s*/\?\*'; then
    echo "tidy: src/core must stay free of clocks, randomness, I/O and threads (above)" >&2
    status=1
fi
# Allocation only inside functions whose name ends in _init or _deinit.
for f in src/core/*.c; do
    [ -e "$f" ] || continue
    awk -v file="$f" '
        /^[a-z].*\(/ && !/;/ { fn = $0 }
        /\<(malloc|calloc|realloc|free)\s*\(/ {
            if (fn !~ /_(init|deinit)\(/) {
                printf "%s:%d: allocation outside *_init: %s\n", file, NR, $0
                bad = 1
            }
        }
        END { exit bad }' "$f" || status=1
done
if [ $status -ne 0 ]; then
    echo "tidy: failed" >&2
else
    echo "tidy: core is pure"
fi
exit $status
