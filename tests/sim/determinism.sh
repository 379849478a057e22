#!/bin/sh
# The same seed gives the same run: run a few seeds twice, in two processes,
# and compare the summary lines, which end with a hash of the full event
# trace. Usage: determinism.sh COHORT_BINARY
set -eu
cohort=$1
# "swarm --volatile 30" also runs expiry (the sweeper) and pub/sub;
# "swarm --coord 30" sessions, locks, the session sweeper and watchers;
# "swarm --flush 3" FLUSHALL under sliced snapshots.
for run in default harsh "swarm --volatile 30" "swarm --coord 30" \
    "swarm --flush 3"; do
    # shellcheck disable=SC2086 # $run is a profile and its flags
    a=$("$cohort" sim --seeds 1..5 --profile $run | grep '^seed ') || true
    # shellcheck disable=SC2086
    b=$("$cohort" sim --seeds 1..5 --profile $run | grep '^seed ') || true
    profile=$run
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
