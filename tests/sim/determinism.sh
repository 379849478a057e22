#!/bin/sh
# The same seed gives the same run: run a few seeds twice, in two processes,
# and compare the summary lines, which end with a hash of the full event
# trace. Usage: determinism.sh COHORT_BINARY
set -eu
cohort=$1
for profile in default harsh; do
    a=$("$cohort" sim --seeds 1..5 --profile "$profile" | grep '^seed ') || true
    b=$("$cohort" sim --seeds 1..5 --profile "$profile" | grep '^seed ') || true
    if [ -z "$a" ] || [ "$a" != "$b" ]; then
        echo "determinism: profile $profile: two runs of seeds 1..5 differ" >&2
        echo "first:" >&2; echo "$a" >&2
        echo "second:" >&2; echo "$b" >&2
        exit 1
    fi
done
# --trace must not change the run.
t=$("$cohort" sim --seed 3 --trace | grep '^seed ') || true
q=$("$cohort" sim --seed 3 | grep '^seed ') || true
if [ "$t" != "$q" ]; then
    echo "determinism: --trace changed the run of seed 3" >&2
    echo "$t" >&2; echo "$q" >&2
    exit 1
fi
echo "determinism: ok"
