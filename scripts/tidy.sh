#!/usr/bin/env bash
# tidy.sh — keep the protocol core and the common code pure (STYLE.md §7):
# no clocks, randomness, printing, environment, threads, sockets or files in
# src/core and src/common, and no allocation there outside init-only
# functions. scripts/tidy.awk is the check, one file at a time; its header
# says what counts as init-only (*_init, *_deinit and the static helpers
# used only by them) and how to write a justified exception (a comment
# with "tidy: allow" and the reason). Plain POSIX awk: it runs on mawk,
# Debian's default. tests/tidy/run.sh proves that it fails on violations.
#
# Usage: scripts/tidy.sh [file.c ...]   (default: src/core and src/common)
set -euo pipefail
cd "$(dirname "$0")/.."
awk_prog=scripts/tidy.awk
if [ $# -gt 0 ]; then
    files=("$@")
else
    files=()
    for f in src/core/*.c src/core/*.h src/common/*.c src/common/*.h; do
        [ -e "$f" ] && files+=("$f")
    done
fi
if [ ${#files[@]} -eq 0 ]; then
    echo "tidy: no source files under src/core or src/common" >&2
    exit 1
fi
status=0
for f in "${files[@]}"; do
    # awk exits 1 on a violation; anything else (2: a syntax error in the
    # program, a missing file) is a broken check, which also fails.
    awk -f "$awk_prog" "$f" || status=1
done
if [ $status -ne 0 ]; then
    echo "tidy: failed: src/core and src/common must stay free of clocks," \
         "randomness, I/O, threads, and allocation outside *_init (above;" \
         "see scripts/tidy.awk for the rule and the 'tidy: allow' marker)" >&2
else
    echo "tidy: ${#files[@]} files in src/core and src/common are pure"
fi
exit $status
