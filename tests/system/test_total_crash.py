#!/usr/bin/env python3
"""test_total_crash — SIGKILL every replica at once under load, restart.

Round 1: load (writers and an exactly-once counter), SIGKILL all three
replicas at the same instant, restart all three. Round 2: load again,
SIGKILL all, restart only a majority (two): the group must make progress
and serve every acknowledged write; then the third comes back and catches
up. Pass: every write acknowledged before either crash reads back, no key
holds a value never written, the counters are exact, and the replicas
converge.

usage: test_total_crash.py [path/to/cohort]
"""

import sys
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
from cluster import check, log  # noqa: E402
from workload import Incrementer, Writers, verify_writes  # noqa: E402


def load_then_crash(c, prefix, min_acks):
    w = Writers(c, threads=4, prefix=prefix).start()
    inc = Incrementer(c, key="ctr" + prefix).start()
    check(w.wait_acks(min_acks, 20 * c.slow),
          "fewer than %d writes acknowledged: %s" % (min_acks, w.summary()))
    time.sleep(0.3)  # crash mid-stream, not between batches
    c.kill_all()
    log("SIGKILL all replicas with %d writes acknowledged (pids %s)"
        % (w.ack_count(), c.pids))
    w.stop()
    inc.stop()
    check(not w.stats.unexpected, "unexpected replies: %s"
          % w.stats.unexpected[:5])
    check(not inc.violations, "; ".join(inc.violations))
    return w, inc


def verify(c, loads, replicas, readonly=False):
    problems = []
    for i in replicas:
        for w, inc in loads:
            problems += verify_writes(c, w, i, readonly=readonly)
            got = cl.read_all(c, i, [inc.key], readonly=readonly)[inc.key]
            err = inc.check_final(got)
            if err:
                problems.append("replica %d: %s" % (i, err))
    check(not problems, "after the crash:\n  " + "\n  ".join(problems[:30]))


def main(binary):
    c = cl.Cluster(binary, n=3, name="total-crash")
    c.start()
    c.wait_for_primary()

    # Round 1: crash all, restart all.
    w1, inc1 = load_then_crash(c, "a", 200)
    t0 = time.monotonic()
    for i in range(c.n):
        c.restart(i, wait=False)
    for i in range(c.n):
        c.wait_ready(i, 15 * c.slow)
    p, _ = c.wait_for_primary()
    t_round1 = time.monotonic() - t0
    log("round 1: all restarted, primary r%d serving after %.2fs"
        % (p, t_round1))
    verify(c, [(w1, inc1)], [p])

    # Round 2: crash all, restart a majority only, then the last one.
    w2, inc2 = load_then_crash(c, "b", 200)
    t0 = time.monotonic()
    majority = [0, 1]
    for i in majority:
        c.restart(i, wait=False)
    for i in majority:
        c.wait_ready(i, 15 * c.slow)
    p, _ = c.wait_for_primary()
    t_round2 = time.monotonic() - t0
    log("round 2: r0, r1 restarted, primary r%d serving after %.2fs"
        % (p, t_round2))
    loads = [(w1, inc1), (w2, inc2)]
    verify(c, loads, majority)
    c.restart(2)
    c.wait_converged(list(range(c.n)))
    verify(c, loads, list(range(c.n)), readonly=True)

    acked = w1.ack_count() + w2.ack_count()
    return ("2 total crashes; %d writes acked, 0 lost; %d + %d exactly-once "
            "increments; restart -> serving %.2fs (all 3), %.2fs (2 of 3)"
            % (acked, inc1.last_acked, inc2.last_acked, t_round1, t_round2))


if __name__ == "__main__":
    cl.run_test("total_crash", main, budget_s=75)
