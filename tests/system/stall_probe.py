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

A failed call does not stop the transfer, rejuvenate, add and remove
rounds: each round's failed calls are counted and printed, and the probe
exits 1 at the end if any call failed (a freeze round stops at once).

--raw FILE appends machine-readable lines to FILE (bench/run.sh's stall
stage passes its raw.txt; bench/report.py reads them), besides the human
output on stdout:
  stall_config threads=T transfers=N rejuvenations=N reconfigs=N
  stall cmd=C round=R gap_ms=G call_ms=M took_ms=T failed=F
      one per round: C is transfer, rejuvenate, add or remove; G the raw
      writers' longest ack gap, M the C client's longest call, T the
      command's own time, F the C client's failed calls
  stall_summary cmd=C rounds=N gap_ms_max=G call_ms_max=M took_ms_min=T0
      took_ms_max=T1 failed=F
The freeze rounds print only the human lines.

usage: stall_probe.py [path/to/cohort] [--transfers N] [--rejuvenations N]
                      [--reconfigs N]
                      [--freezes N] [--hedge-ms off,0] [--threads T]
                      [--raw FILE]
"""

import argparse
import os
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
from cluster import check, log  # noqa: E402
from test_client_lib import Incrementer as CIncrementer  # noqa: E402
from workload import Writers  # noqa: E402


class Raw:
    """--raw FILE: machine-readable lines appended to FILE (or nowhere)."""

    def __init__(self, path):
        self.f = open(path, "a") if path else None

    def line(self, text):
        if self.f:
            self.f.write(text + "\n")
            self.f.flush()

    def round(self, what, k, r):
        """One round's line: what is "transfer", "cohort add", ..."""
        self.line("stall cmd=%s round=%d gap_ms=%.1f call_ms=%d took_ms=%.0f "
                  "failed=%d" % (what.split()[-1], k + 1, r[0], r[1], r[2],
                                 r[4]))


def one_round(c, binary, k, cmd):
    """(longest ack gap ms, longest C call ms, command ms, its last line,
    failed C calls) of one command run through a fresh load."""
    stop = os.path.join(c.dir, "stop-%d" % k)
    inc = CIncrementer(binary, c, "stall%d" % k, 120000, stop,
                       threads=c.load_threads)
    try:
        writers = Writers(c, threads=c.load_threads,
                          prefix="s%d-" % k).start()
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
    finally:
        if inc.proc.poll() is None:  # a check failed: do not leave it running
            inc.proc.kill()
            inc.proc.wait()
    failed = res["unknown"] + res["notapplied"] + res["other"]
    if failed:
        log("C client calls failed: %s" % res)
    gap, where = longest_gap_at(writers, t0, t1, steps)
    log("longest raw gap %.1f ms, ended by the step: %s" % (gap, where))
    return (gap, res["max_call_ms"], 1000 * (t1 - t0), steps[-1][1], failed)


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


def membership_rounds(a, raw):
    """--reconfigs N: on 5 addresses with --voters 3, N rounds of `cohort
    add 3`, `cohort add 4` (each: learner, catch-up, voter: two epochs),
    `cohort remove 3`, `cohort remove 4` under the load; one row each for
    add and remove. Returns the failed calls."""
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
                rs = rows["cohort " + what]
                rs.append(one_round(c, c.binary, 1000 + 10 * k + i +
                                    (5 if what == "remove" else 0), cmd))
                raw.round(what, len(rs) - 1, rs[-1])
                log("%s %d: %s" % (what, i, rs[-1]))
    finally:
        c.cleanup()
    return print_rows(rows, raw)


def print_rows(rows, raw):
    """The human summary of each command's rounds (and its stall_summary
    line); returns the failed calls of all."""
    failed = 0
    for what, rs in rows.items():
        if not rs:
            continue
        gaps = sorted(r[0] for r in rs)
        calls = sorted(r[1] for r in rs)
        took = sorted(r[2] for r in rs)
        bad = sum(r[4] for r in rs)
        failed += bad
        print("%s x%d: raw writers' longest ack gap ms %s (max %.1f); "
              "C client longest call ms %s (max %d); command took ms %s; "
              "%d failed calls"
              % (what, len(rs), "/".join("%.1f" % g for g in gaps),
                 gaps[-1], "/".join("%d" % x for x in calls), calls[-1],
                 "/".join("%.0f" % t for t in took), bad))
        raw.line("stall_summary cmd=%s rounds=%d gap_ms_max=%.1f "
                 "call_ms_max=%d took_ms_min=%.0f took_ms_max=%.0f failed=%d"
                 % (what.split()[-1], len(rs), gaps[-1], calls[-1], took[0],
                    took[-1], bad))
    return failed


def on_term(signum, frame):
    """SIGTERM (bench/run.sh's timeout): unwind, so that the clusters'
    cleanup stops their servers."""
    raise SystemExit("stall_probe: stopped by signal %d" % signum)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary", nargs="?", default="build/cohort")
    ap.add_argument("--transfers", type=int, default=5)
    ap.add_argument("--rejuvenations", type=int, default=3)
    ap.add_argument("--freezes", type=int, default=0)
    ap.add_argument("--hedge-ms", default="off,0")
    ap.add_argument("--reconfigs", type=int, default=0)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--raw", help="append machine-readable lines here")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, on_term)
    raw = Raw(a.raw)
    raw.line("stall_config threads=%d transfers=%d rejuvenations=%d "
             "reconfigs=%d" % (a.threads, a.transfers, a.rejuvenations,
                               a.reconfigs))
    failed = 0
    if a.reconfigs:
        failed += membership_rounds(a, raw)
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
            raw.round("transfer", k, rows["transfer"][-1])
            log("transfer %d: %s" % (k, rows["transfer"][-1]))
        for k in range(a.rejuvenations):
            cmd = [c.binary, "rejuvenate", "--cluster", member]
            rows["rejuvenate"].append(
                one_round(c, c.binary, 100 + k, cmd))
            raw.round("rejuvenate", k, rows["rejuvenate"][-1])
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
        failed += print_rows(rows, raw)
    finally:
        c.cleanup()
    if failed:
        sys.exit("stall_probe: %d C client calls failed" % failed)


if __name__ == "__main__":
    main()
