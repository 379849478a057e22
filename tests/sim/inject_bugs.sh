#!/bin/sh
# inject_bugs.sh — show that the simulator catches real protocol bugs.
#
# For each deliberate bug in enum replica_bug (src/core/replica.h; the
# BUG_STORAGE_* ones live in src/driver and src/storage), run
# `cohort sim --bugs BIT` over seeds 1..K of a profile that can expose it and
# report the first failing seed (seeds-to-detection) and the check that
# caught it. The same seeds are then run without the bug, to show that the
# failure is the bug's and not the baseline's; a coordination mutant must
# also pass them without --coord (the workload, not chance, exposes it).
# Exits 1 if any bug goes uncaught (or the baseline fails, or a
# coordination mutant fails without --coord), 0 if every bug is caught.
#
# Usage: tests/sim/inject_bugs.sh [COHORT_BINARY] [MAX_SEEDS]
set -u
cohort=${1:-build/cohort}
max=${2:-2000}
if [ ! -x "$cohort" ]; then
    echo "inject_bugs: no cohort binary at '$cohort' (run make first)" >&2
    exit 2
fi

# bit profile ops name [more cohort sim flags: the workload that can show it]
bugs="1 crash 300 BUG_COMMIT_WITH_F
2 crash 300 BUG_ADOPT_ANY_LOG
4 crash 300 BUG_ACK_BEFORE_DURABLE
8 harsh 300 BUG_APPLY_RETRY_TWICE
16 disk 300 BUG_VOTE_BEFORE_RECOVERED
32 partition 300 BUG_READ_WITHOUT_QUORUM
64 crash 300 BUG_READ_WITHOUT_INDEX
128 crash 300 BUG_STORAGE_ACK_EARLY
256 disk 300 BUG_STORAGE_TRUST_RECORD
512 harsh 300 BUG_STORAGE_LOG_RESTART
1024 default 300 BUG_KV_LOCAL_CLOCK --volatile 30
2048 default 300 BUG_KV_SPLIT_EXEC --volatile 30
1048576 default 300 BUG_BACKUP_READ_NO_INDEX --reads 100
4096 partition 300 BUG_EPOCH_BEFORE_COMMIT --replicas 5 --voters 3 --reconfigs 200
8192 partition 300 BUG_COUNT_REMOVED --replicas 5 --voters 3 --reconfigs 200
16384 partition 300 BUG_COUNT_LEARNER --replicas 5 --voters 3 --reconfigs 200
2097152 default 300 BUG_REPLACE_UNCAUGHT --replicas 5 --spares 2 --replace-after 300
4194304 default 1500 BUG_PIN_OFF --scenario catch_up_under_writes
65536 crash 300 BUG_SESSION_NO_EXTEND --coord 30
131072 default 300 BUG_WATCH_RESUME_OFF --coord 30"

status=0
printf '%-28s %-8s %8s  %s\n' bug profile seeds "caught by"
echo "$bugs" | while read -r bit profile ops name extra; do
    # The braces send the shell's own "Aborted" note (a core assertion
    # ends the process) into $out as well.
    # shellcheck disable=SC2086 # $extra is a list of flags
    out=$({ "$cohort" sim --bugs "$bit" --seeds "1..$max" \
          --profile "$profile" --ops "$ops" $extra --quiet --stop; } 2>&1)
    seed=$(printf '%s\n' "$out" | sed -n 's/^first failing seed: \([0-9]*\)$/\1/p')
    how=$(printf '%s\n' "$out" | sed -n "s/^  check '\([a-z]*\)' failed.*/check \1/p" | head -n 1)
    if [ -z "$seed" ]; then
        # A core assertion aborts the process; its context names the seed.
        seed=$(printf '%s\n' "$out" | sed -n 's/.*\[sim seed \([0-9]*\);.*/\1/p' | head -n 1)
        how=$(printf '%s\n' "$out" | sed -n 's/^cohort: assertion failed: \(.*\) at \([^ ]*\) .*/core assertion \1 (\2)/p' | head -n 1)
    fi
    if [ -z "$seed" ]; then
        printf '%-28s %-8s %8s  %s\n' "$name" "$profile" "-" "NOT CAUGHT in $max seeds"
        echo fail >> "${TMPDIR:-/tmp}/inject_bugs.$$"
        continue
    fi
    # shellcheck disable=SC2086
    base=$("$cohort" sim --seeds "1..$seed" --profile "$profile" --ops "$ops" \
           $extra --quiet 2>&1 | tail -n 1)
    case "$base" in
    *" 0 failed") note="" ;;
    *) note=" (BASELINE ALSO FAILS: $base)"
       echo fail >> "${TMPDIR:-/tmp}/inject_bugs.$$" ;;
    esac
    case "$extra" in
    *--coord*)
        # The coordination mutants stand for the server's sweeper and
        # watch resume: only the coordination workload may expose them.
        bare=$("$cohort" sim --bugs "$bit" --seeds "1..$seed" \
               --profile "$profile" --ops "$ops" --quiet 2>&1 | tail -n 1)
        case "$bare" in
        *" 0 failed") note="$note (not caught without --coord)" ;;
        *) note="$note (ALSO CAUGHT WITHOUT --coord: $bare)"
           echo fail >> "${TMPDIR:-/tmp}/inject_bugs.$$" ;;
        esac ;;
    esac
    printf '%-28s %-8s %8s  %s%s\n' "$name" "$profile" "$seed" "$how" "$note"
    printf '    reproduce: cohort sim --seed %s --profile %s --ops %s --bugs %s %s--trace\n' \
        "$seed" "$profile" "$ops" "$bit" "${extra:+$extra }"
done
if [ -e "${TMPDIR:-/tmp}/inject_bugs.$$" ]; then
    rm -f "${TMPDIR:-/tmp}/inject_bugs.$$"
    status=1
fi
exit $status
