#!/usr/bin/env python3
"""range_cluster — COHORT.RANGE LIMIT 100 on a real 3-replica cluster (the
tests/system harness on loopback) holding N keys (default 1,000,000):
latency p50/p99 over 1000 calls from spread start keys, linearizable
(through the primary) and after READONLY (a backup's own store), and the
primary's RSS growth per key. A figure, not a test.

usage: python3 bench/range_cluster.py [path/to/cohort] [N]
"""

import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "system"))

import cluster as cl  # noqa: E402


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def latencies(x, n):
    took = []
    for c in range(1000):
        start = b"key:%010d" % ((c * 7919) % n)
        t = time.perf_counter()
        r = x.command("COHORT.RANGE", start, "", "LIMIT", 100)
        took.append(time.perf_counter() - t)
        assert len(r) == 200 or (c * 7919) % n > n - 100
    took.sort()
    return took[500] * 1e6, took[990] * 1e6


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "build/cohort"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000000
    c = cl.Cluster(binary, n=3, name="range-bench")
    c.start()
    try:
        p, _ = c.wait_for_primary()
        pid = c.procs[p].pid
        before = rss_kb(pid)
        t0 = time.monotonic()
        with c.client(p, timeout=30) as x:
            for i in range(0, n, 1000):
                args = []
                for k in range(i, min(i + 1000, n)):
                    args += [b"key:%010d" % k, b"0123456789abcdef"]
                x.command("MSET", *args)
            load = time.monotonic() - t0
            after = rss_kb(pid)
            p50, p99 = latencies(x, n)
        b = c.backups(p)[0]
        c.wait_converged(timeout=120)
        with c.client(b, timeout=30) as x:
            x.command("READONLY")
            r50, r99 = latencies(x, n)
        print("keys %d loaded in %.1f s; primary RSS +%.1f bytes/key "
              "(16-byte values, 14-byte keys)"
              % (n, load, (after - before) * 1024.0 / n))
        print("COHORT.RANGE LIMIT 100 via primary (linearizable): p50 %.0f "
              "us, p99 %.0f us" % (p50, p99))
        print("COHORT.RANGE LIMIT 100 on a backup after READONLY: p50 %.0f "
              "us, p99 %.0f us" % (r50, r99))
    finally:
        c.cleanup()


if __name__ == "__main__":
    main()
