#!/usr/bin/env python3
"""stall_probe — the longest write stall a client sees during a leadership
transfer and during a rolling restart (`cohort rejuvenate`). A measurement,
not a test (not registered in tests.cmake; it asserts nothing but that the
commands work and no call failed); figures go to bench/indicative.md
(which bench/report.py appends to bench/RESULTS.md).

A 3-replica group on loopback, release build. For each round, a fresh
load runs through one command and is stopped a moment after it:
  - the C client library (cohort-client-test incr, --threads T handles,
    exactly once through COHORT.REQ): its longest call (max_call_ms) and
    its failed calls;
  - the harness's raw RESP writers (workload.Writers, T threads, each
    retrying -TRYAGAIN and dropped connections against the next member):
    the longest gap between two acknowledgements (any thread) while the
    command ran.
Rounds: --transfers N `cohort transfer` to the next replica, then
--rejuvenations N `cohort rejuvenate`, then --freezes N SIGSTOPs of the
primary (resumed once another serves and the load has gone on there),
each round once for each of the library's hedge delays in --hedge-ms (a
comma list; "off" never hedges, 0 the library's default), alternating so
that both see the same group: the C client's longest call and the
failover (until INFO shows a new primary).

--reconfigs N runs first, on a group of its own (5 addresses, --voters 3):
N rounds of `cohort add 3`, `cohort add 4`, `cohort remove 3` and `cohort
remove 4`.

usage: stall_probe.py [path/to/cohort] [--transfers N] [--rejuvenations N]
                      [--reconfigs N]
                      [--freezes N] [--hedge-ms off,0] [--threads T]
"""

import argparse
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
from cluster import check, log  # noqa: E402
from test_client_lib import Incrementer as CIncrementer  # noqa: E402
from workload import Writers  # noqa: E402


def one_round(c, binary, k, cmd):
    stop = os.path.join(c.dir, "stop-%d" % k)
    inc = CIncrementer(binary, c, "stall%d" % k, 120000, stop,
                       threads=c.load_threads)
    writers = Writers(c, threads=c.load_threads, prefix="s%d-" % k).start()
    check(writers.wait_acks(200, 20), "no load: %s" % writers.summary())
    inc.wait_progress(200, 30)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    steps = [(time.monotonic(), line.strip()) for line in proc.stdout]
    err = proc.stderr.read()
    t1 = time.monotonic()
    check(proc.wait() == 0, "%s: %s" % (cmd, err.strip()))
    time.sleep(0.3)
    writers.stop()
    res = inc.stop(60)
    failed = res["unknown"] + res["notapplied"] + res["other"]
    check(failed == 0, "C client calls failed: %s" % res)
    gap, where = longest_gap_at(writers, t0, t1, steps)
    log("longest raw gap %.1f ms, ended by the step: %s" % (gap, where))
    return (gap, res["max_call_ms"], 1000 * (t1 - t0), steps[-1][1])


def freeze_round(c, binary, k, hedge):
    """SIGSTOP the primary under the library's INCR load: its longest call
    and the failover (ms)."""
    stop = os.path.join(c.dir, "stop-f%d-%s" % (k, hedge))
    inc = CIncrementer(binary, c, "freeze%d%s" % (k, hedge), 120000, stop,
                       threads=c.load_threads, extra=["--hedge-ms", hedge])
    inc.wait_progress(200, 30)
    p, _ = c.wait_for_primary(probe=False)
    c.pause(p)
    try:
        q, waited = c.wait_for_primary(timeout=30, probe=False)
        inc.wait_progress(200, 30)
    finally:
        c.resume(p)
    inc.wait_progress(100, 30)
    res = inc.stop(60)
    failed = res["unknown"] + res["notapplied"] + res["other"]
    check(failed == 0, "C client calls failed: %s" % res)
    log("froze r%d, r%d took over after %.0f ms; %s"
        % (p, q, 1000 * waited, res))
    return (res["max_call_ms"], 1000 * waited)


def longest_gap_at(writers, t0, t1, steps):
    """The longest gap between acknowledgements in [t0, t1] (ms), and the
    first line the command printed after the gap began (the step it was
    in)."""
    with writers.lock:
        times = sorted(a for _, a in writers.acks if t0 <= a <= t1)
    points = [t0] + times + [t1]
    gap, start = max((b - a, a) for a, b in zip(points, points[1:]))
    where = next((line for t, line in steps if t >= start), "(end)")
    wall = time.time() - (time.monotonic() - start)
    where += " [gap began %s.%03dZ]" % (
        time.strftime("%H:%M:%S", time.gmtime(wall)), int(wall * 1000) % 1000)
    return 1000 * gap, where


def membership_rounds(a):
    """--reconfigs N: on 5 addresses with --voters 3, N rounds of `cohort
    add 3`, `cohort add 4` (each: learner, catch-up, voter: two epochs),
    `cohort remove 3`, `cohort remove 4` under the load; one row each for
    add and remove."""
    c = cl.Cluster(a.binary, n=5, name="stall-reconfig",
                   extra_args=["--voters", "3"])
    c.load_threads = a.threads
    rows = {"cohort add": [], "cohort remove": []}
    try:
        c.start()
        c.wait_for_primary()
        member = "127.0.0.1:%d" % c.client_ports[0]
        for k in range(a.reconfigs):
            for what, i in (("add", 3), ("add", 4), ("remove", 3),
                            ("remove", 4)):
                cmd = [c.binary, what, "--cluster", member, str(i)]
                rows["cohort " + what].append(
                    one_round(c, c.binary, 1000 + 10 * k + i +
                              (5 if what == "remove" else 0), cmd))
                log("%s %d: %s" % (what, i, rows["cohort " + what][-1]))
    finally:
        c.cleanup()
    print_rows(rows)


def print_rows(rows):
    for what, rs in rows.items():
        if not rs:
            continue
        gaps = sorted(r[0] for r in rs)
        calls = sorted(r[1] for r in rs)
        took = sorted(r[2] for r in rs)
        print("%s x%d: raw writers' longest ack gap ms %s (max %.1f); "
              "C client longest call ms %s (max %d); command took ms %s; "
              "0 failed calls"
              % (what, len(rs), "/".join("%.1f" % g for g in gaps),
                 gaps[-1], "/".join("%d" % x for x in calls), calls[-1],
                 "/".join("%.0f" % t for t in took)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary", nargs="?", default="build/cohort")
    ap.add_argument("--transfers", type=int, default=5)
    ap.add_argument("--rejuvenations", type=int, default=3)
    ap.add_argument("--freezes", type=int, default=0)
    ap.add_argument("--hedge-ms", default="off,0")
    ap.add_argument("--reconfigs", type=int, default=0)
    ap.add_argument("--threads", type=int, default=4)
    a = ap.parse_args()
    if a.reconfigs:
        membership_rounds(a)
    c = cl.Cluster(a.binary, n=3, name="stall")
    c.load_threads = a.threads
    try:
        c.start()
        c.wait_for_primary()
        c.wait_converged()
        member = "127.0.0.1:%d" % c.client_ports[0]
        rows = {"transfer": [], "rejuvenate": []}
        for k in range(a.transfers):
            p, _ = c.wait_for_primary(probe=False)
            cmd = [c.binary, "transfer", "--cluster", member,
                   str((p + 1) % c.n)]
            rows["transfer"].append(one_round(c, c.binary, k, cmd))
            log("transfer %d: %s" % (k, rows["transfer"][-1]))
        for k in range(a.rejuvenations):
            cmd = [c.binary, "rejuvenate", "--cluster", member]
            rows["rejuvenate"].append(
                one_round(c, c.binary, 100 + k, cmd))
            log("rejuvenate %d: %s" % (k, rows["rejuvenate"][-1]))
        hedges = a.hedge_ms.split(",") if a.freezes else []
        fs = {h: [] for h in hedges}
        for k in range(a.freezes):  # alternating: both see the same group
            for hedge in hedges:
                fs[hedge].append(freeze_round(c, c.binary, k, hedge))
        for hedge in hedges:
            calls = sorted(f[0] for f in fs[hedge])
            over = sorted(f[1] for f in fs[hedge])
            print("freeze x%d, hedge-ms %s: C client longest call ms %s "
                  "(max %d); failover ms %s; 0 failed calls"
                  % (len(calls), hedge, "/".join("%d" % x for x in calls),
                     calls[-1], "/".join("%.0f" % x for x in over)))
            print("  per round (call ms, failover ms): %s"
                  % ", ".join("%d/%.0f" % f for f in fs[hedge]))
        print_rows(rows)
    finally:
        c.cleanup()


if __name__ == "__main__":
    main()
