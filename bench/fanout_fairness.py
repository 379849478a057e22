#!/usr/bin/env python3
"""fanout_fairness — who waits when a large fan-out exceeds a loop turn's
delivery budget (issue 16; src/server/feed.h, "Fairness").

Starts a 3-replica cluster with the default timeouts (tests/system/cluster.py),
opens N subscribers on the primary (in order: the server lists the newest
first), and publishes K messages of SIZE bytes, all sent at once. Every
subscriber's socket is read by one thread; the time each message arrives
whole at each subscriber is recorded (messages are all the same size, so
byte counts tell).

For each subscriber: its mean delay, over the K messages, after the first
subscriber that got the same message. Printed: the spread of those means
(min, median, max), the ratio of the slowest tenth's mean to the fastest
tenth's, and the correlation between subscription order and mean delay
(close to +1 or -1: the same connections always wait; near 0: the wait is
shared). Also the loop stalls (INFO read_pace_feed_waits, view changes).

usage: fanout_fairness.py BIN [N=100] [K=20] [SIZE=1048576]
Indicative: one run on a shared 2-core machine; bounded in count and time.
"""

import os
import selectors
import socket
import statistics
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "system"))

import cluster  # noqa: E402


def wire_size(channel, payload_size):
    """Bytes of one RESP2 'message' push."""
    def bulk(n):
        return len(b"$%d\r\n" % n) + n + 2
    return len(b"*3\r\n") + bulk(7) + bulk(len(channel)) + bulk(payload_size)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    k = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    size = int(sys.argv[4]) if len(sys.argv) > 4 else 1 << 20
    c = cluster.Cluster(binary, n=3, heartbeat_ms=25, suspect_timeout_ms=150,
                        view_change_timeout_ms=300, name="fairness")
    try:
        c.start()
        p, _ = c.wait_for_primary()
        port = c.client_ports[p]
        channel = b"fair"
        subs = []
        for _ in range(n):
            s = socket.create_connection((cluster.HOST, port), timeout=10)
            s.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nfair\r\n")
            subs.append(s)
        confirm = len(b"*3\r\n$9\r\nsubscribe\r\n$4\r\nfair\r\n:1\r\n")
        for s in subs:
            got = b""
            while len(got) < confirm:
                got += s.recv(confirm - len(got))
            s.setblocking(False)
        info = c.info(p, "stats")
        waits0 = int(info.get("read_pace_feed_waits", 0))
        view0 = c.info(p).get("view")
        one = wire_size(channel, size)
        got = [0] * n
        arrive = [[None] * k for _ in range(n)]
        sel = selectors.DefaultSelector()
        for i, s in enumerate(subs):
            sel.register(s, selectors.EVENT_READ, i)
        pub = socket.create_connection((cluster.HOST, port), timeout=30)
        payload = b"x" * size
        cmd = (b"*3\r\n$7\r\nPUBLISH\r\n$4\r\nfair\r\n$%d\r\n" % size +
               payload + b"\r\n")
        t0 = time.monotonic()
        pub.sendall(cmd * k)
        deadline = t0 + 120
        done = 0
        while done < n and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1.0):
                i = key.data
                try:
                    data = key.fileobj.recv(1 << 20)
                except BlockingIOError:
                    continue
                if not data:
                    raise SystemExit("subscriber %d closed" % i)
                now = time.monotonic() - t0
                before = got[i] // one
                got[i] += len(data)
                after = min(got[i] // one, k)
                for m in range(before, after):
                    arrive[i][m] = now
                if after == k and before < k:
                    done += 1
        if done < n:
            raise SystemExit("only %d of %d subscribers got all %d messages "
                             "in 120 s" % (done, n, k))
        first = [min(arrive[i][m] for i in range(n)) for m in range(k)]
        delay = [statistics.mean(arrive[i][m] - first[m] for m in range(k))
                 for i in range(n)]
        tenth = max(1, n // 10)
        ranked = sorted(delay)
        fast = statistics.mean(ranked[:tenth])
        slow = statistics.mean(ranked[-tenth:])
        order = list(range(n))
        corr = statistics.correlation(order, delay) if n > 2 else 0.0
        info = c.info(p, "stats")
        waits = int(info.get("read_pace_feed_waits", 0)) - waits0
        view = c.info(p).get("view")
        total = max(max(a) for a in arrive)
        print("fanout_fairness n=%d k=%d size=%d all_delivered_s=%.2f "
              "feed_waits=%d view_changed=%s" %
              (n, k, size, total, waits, view != view0))
        print("  mean delay after the first receiver, per subscriber (ms): "
              "min %.1f median %.1f max %.1f; slowest tenth / fastest tenth "
              "%.2f; correlation with subscription order %+.2f" %
              (ranked[0] * 1e3, statistics.median(ranked) * 1e3,
               ranked[-1] * 1e3, slow / fast if fast > 0 else float("inf"),
               corr))
        for s in subs:
            s.close()
        pub.close()
    finally:
        c.stop_all()
        c.cleanup()


if __name__ == "__main__":
    main()
