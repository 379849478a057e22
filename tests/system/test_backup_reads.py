#!/usr/bin/env python3
"""test_backup_reads — linearizable reads served by backups (issue 16), on
a real 3-replica group, under failovers and a paused backup.

A writer increments counter `n` with exactly-once INCRs (COHORT.REQ, the
same request number on every retry) and records each acknowledged value
and when it was acknowledged. Four readers GET `n` on every member (two of
them only on backups), each read checked against real time:

  - it is at least every value acknowledged before the read was sent (a
    stale read would show less: the backup must have applied the
    primary's read index first);
  - it is at most the number of INCRs sent before its answer arrived (no
    value from the future; exactly-once keeps the counter equal to the
    INCRs applied);
  - a reader's successive reads never go down.

Meanwhile the primary is SIGKILLed and restarted twice and a backup is
SIGSTOPped for a while. -TRYAGAIN, -UNKNOWN, timeouts and refused
connections only make a reader try again (on another member); wrong
values fail the test. At the end the backups' INFO must show reads they
served themselves (backup_reads_served), so the path was taken.

Every wait is bounded; nothing asserts a timing.

usage: test_backup_reads.py [path/to/cohort]
"""

import itertools
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402

READERS = 4
RETRYABLE = ("TRYAGAIN", "UNKNOWN")


class Writer(threading.Thread):
    def __init__(self, c):
        super().__init__(daemon=True)
        self.c = c
        self.lock = threading.Lock()
        self.sent = 0       # INCRs sent (each applies at most once)
        self.acked = []     # (monotonic time, value), in order
        self.stop = threading.Event()
        self.error = None

    def floor(self, before):
        """The highest value acknowledged before `before`."""
        with self.lock:
            best = 0
            for t, v in reversed(self.acked):
                if t < before:
                    best = max(best, v)
                    break
            return best

    def one(self, cid, no):
        members = itertools.cycle(range(self.c.n))
        while not self.stop.is_set():
            i = next(members)
            try:
                with resp.connect(self.c.client_ports[i], timeout=2.0) as k:
                    with self.lock:
                        self.sent = max(self.sent, no)
                    v = k.command("COHORT.REQ", str(cid), str(no), "INCR",
                                  "n")
                with self.lock:
                    self.acked.append((time.monotonic(), v))
                return
            except resp.RespError as e:
                if not str(e).startswith(RETRYABLE):
                    raise
            except (OSError, resp.ProtocolError):
                pass
            time.sleep(0.02)

    def run(self):
        try:
            cid = 0x5EAD0000 + (int(time.time()) & 0xffff)
            for no in itertools.count(1):
                if self.stop.is_set():
                    return
                self.one(cid, no)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e


class Reader(threading.Thread):
    def __init__(self, c, w, members):
        super().__init__(daemon=True)
        self.c, self.w, self.members = c, w, members
        self.stop = threading.Event()
        self.reads = 0
        self.retries = 0
        self.error = None

    def run(self):
        last = 0
        turn = itertools.cycle(self.members)
        k, at = None, None
        try:
            while not self.stop.is_set():
                if k is None:
                    at = next(turn)
                    try:
                        k = resp.connect(self.c.client_ports[at], timeout=2.0)
                    except OSError:
                        self.retries += 1
                        time.sleep(0.05)
                        continue
                floor = self.w.floor(time.monotonic())
                try:
                    got = k.command("GET", "n")
                except resp.RespError as e:
                    if not str(e).startswith(RETRYABLE):
                        raise
                    self.retries += 1
                    k.close()
                    k = None
                    continue
                except (OSError, resp.ProtocolError):
                    self.retries += 1
                    k.close()
                    k = None
                    continue
                with self.w.lock:
                    ceiling = self.w.sent
                v = int(got) if got is not None else 0
                if v < floor:
                    raise cl.TestFailure(
                        "member %d read n=%d after %d was acknowledged "
                        "(stale)" % (at, v, floor))
                if v > ceiling:
                    raise cl.TestFailure(
                        "member %d read n=%d with only %d INCRs sent"
                        % (at, v, ceiling))
                if v < last:
                    raise cl.TestFailure(
                        "member %d read n=%d after this reader saw %d"
                        % (at, v, last))
                last = v
                self.reads += 1
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e
        finally:
            if k is not None:
                k.close()


def run(binary):
    c = cl.Cluster(binary, n=3, name="backup-reads")
    c.start()
    p, _ = c.wait_for_primary()
    b1, b2 = c.backups(p)
    w = Writer(c)
    readers = [Reader(c, w, [0, 1, 2]), Reader(c, w, [2, 1, 0]),
               Reader(c, w, [b1]), Reader(c, w, [b2])]
    w.start()
    for r in readers:
        r.start()

    def progress(what, more=50):
        """Let the writer make `more` increments (bounded wait)."""
        with w.lock:
            target = len(w.acked) + more
        cl.poll(what, 30 * c.slow,
                lambda: len(w.acked) >= target or w.error or None)

    try:
        progress("writes before the faults")
        for k in range(2):
            p, _ = c.wait_for_primary()
            log("kill %d: primary %d" % (k + 1, p))
            c.kill(p)
            progress("writes after kill %d" % (k + 1))
            c.restart(p)
            progress("writes after the restart")
        p, _ = c.wait_for_primary()
        b = c.backups(p)[0]
        log("pause backup %d" % b)
        c.pause(b)
        progress("writes with a backup paused")
        c.resume(b)
        progress("writes after the pause")
    finally:
        w.stop.set()
        for r in readers:
            r.stop.set()
        w.join(30)
        for r in readers:
            r.join(30)
    for t in [w] + readers:
        if t.error:
            raise t.error if isinstance(t.error, cl.TestFailure) else \
                cl.TestFailure("%s: %r" % (type(t).__name__, t.error))
    c.wait_converged()
    served = {i: int(c.info(i, "stats").get("backup_reads_served", "0"))
              for i in c.live()}
    check(sum(served.values()) > 0,
          "no member served a read as a backup: %r" % served)
    reads = sum(r.reads for r in readers)
    retries = sum(r.retries for r in readers)
    check(reads >= 100, "only %d reads checked" % reads)
    c.check_healthy()
    c.cleanup()
    return ("%d reads checked against %d acknowledged INCRs through 2 "
            "primary kills and a paused backup (%d retried); served by "
            "backups themselves: %r"
            % (reads, len(w.acked), retries, served))


if __name__ == "__main__":
    cl.run_test("backup_reads", run, budget_s=240)
