#!/usr/bin/env python3
"""test_transfer — leadership transfer under write load.

A 3-replica group under a bounded write load (four writer threads through
every replica, retrying -TRYAGAIN against the next replica, and one
COHORT.REQ incrementer) hands the primary role to each backup in turn with
COHORT.TRANSFER, and once more with `cohort transfer`. Pass: each target
becomes the primary of the view the command named; no request fails (no
-UNKNOWN, no error other than -TRYAGAIN, which a retrying client retries:
counted and printed); every acknowledged write reads back and the counter
is exact. Refusals: a bad id, an id that is not a member, the primary
itself, and a transfer sent to a backup each get a one-line error and
change nothing. Printed, never asserted: the time from the command to the
first write acknowledged by the new primary, and the longest gap without
an acknowledgement.

Forwarded writes (issue 12): a write a backup had forwarded to the old
primary is bounced by it ("-TRYAGAIN NOTPRIMARY", before: "... not
forwarded again") and re-sent by the backup to the new primary. Every
-TRYAGAIN any client saw is counted by kind, and the bounced kind must be
0 (other kinds, a view change seen directly, say, are printed). Order:
one pipelining client per replica (so one always writes through a backup
that is neither side of a transfer) sends batches of APPEND <key> "<n>,"
with n going up, without retrying; afterwards each key must hold its
numbers in increasing order, once each, every acknowledged one present
with the length its APPEND answered, and none answered -TRYAGAIN. Two
batches are in flight, so a connection's later commands reach its backup
while earlier ones are at the old primary: with the gate taken out of
forward.c and conn.c, two runs in three failed here (an earlier APPEND
re-sent after a later one ran: "-ERR stale request"). On the code before
re-sending, the bounced kind was 144-194 per run (9-18 of them from the
retrying writers, the rest from the pipeliners).

usage: test_transfer.py [path/to/cohort]
"""

import collections
import random
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402
from workload import (Incrementer, Writers,  # noqa: E402
                      check_writes_and_counter, stop_and_check)

ROUNDS = 4  # raw COHORT.TRANSFER rounds: each backup in turn, twice
BATCH = 16  # APPENDs per pipeline


def bounced(message):
    """The -TRYAGAIN of a forwarded command that the old primary bounced
    (not executed; the backup re-sends it now, so a client never sees it)."""
    return "NOTPRIMARY" in message or "not forwarded again" in message


class Pipeliner:
    """One connection to replica i sending pipelines of APPEND key "n,"
    (n = 1, 2, ...), never retried: answered lengths, -TRYAGAIN (not
    executed) and unknown outcomes are recorded for check()."""

    def __init__(self, cluster, i):
        self.cluster = cluster
        self.i = i
        self.key = "ord:%d:%d" % (i, random.randrange(1 << 40))
        self.acked = {}       # n -> the length APPEND answered
        self.failed = set()   # n answered -TRYAGAIN
        self.unknown = set()  # -UNKNOWN, a lost connection, a timeout
        self.errors = []      # every error message
        self.bad = []
        self.stop_event = threading.Event()
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name="pipeliner-%d" % self.i)
        self.thread.start()
        return self

    def stop(self):
        self.stop_event.set()
        self.thread.join(10 * self.cluster.slow)
        if self.thread.is_alive():
            raise RuntimeError("pipeliner %d did not stop" % self.i)

    def _run(self):
        """Two batches in flight: batch k+1 is sent before batch k's
        replies are read, so that commands of one connection reach the
        backup while earlier ones are still at the old primary."""
        n = 0
        conn = None
        inflight = collections.deque()  # the seqs of batches not read yet
        while True:
            stopping = self.stop_event.is_set()
            try:
                if not stopping:
                    if conn is None:
                        conn = self.cluster.client(
                            self.i, timeout=2 * self.cluster.slow)
                    seqs = list(range(n + 1, n + BATCH + 1))
                    n += BATCH
                    inflight.append(seqs)
                    conn.send_raw(b"".join(
                        resp.encode_command("APPEND", self.key, "%d," % k)
                        for k in seqs))
                if len(inflight) >= 2 or (stopping and inflight):
                    seqs = inflight.popleft()
                    for k in seqs:
                        self._record(k, conn.read_reply())
                elif stopping:
                    break
            except (OSError, resp.ProtocolError) as e:
                self.errors.append(type(e).__name__)
                for seqs in inflight:
                    self.unknown.update(seqs)
                inflight.clear()
                if conn is not None:
                    conn.close()
                    conn = None
                if stopping:
                    break
                time.sleep(0.01)
                continue
            time.sleep(0.002)
        if conn is not None:
            conn.close()

    def _record(self, k, r):
        if isinstance(r, resp.RespError):
            self.errors.append(r.message)
            if r.code == "TRYAGAIN":
                self.failed.add(k)
            elif r.code == "UNKNOWN":
                self.unknown.add(k)
            else:
                self.bad.append("APPEND %d: -%s" % (k, r.message))
        elif isinstance(r, int):
            self.acked[k] = r
        else:
            self.bad.append("APPEND %d: %r" % (k, r))

    def check(self, value):
        """Problems with the key's final value (bytes or None)."""
        text = (value or b"").decode()
        got = [int(x) for x in text.split(",") if x]
        problems = list(self.bad[:5])
        if any(b <= a for a, b in zip(got, got[1:])):
            at = next(j for j, (a, b) in enumerate(zip(got, got[1:]))
                      if b <= a)
            problems.append("%s: %s after %s: applied out of order or "
                            "twice" % (self.key, got[at + 1], got[at]))
        length, at_length = 0, {}
        for k in got:
            length += len("%d," % k)
            at_length[k] = length
        for k, want in sorted(self.acked.items()):
            if at_length.get(k) != want:
                problems.append("%s: APPEND %d answered length %d, but the "
                                "value has it at %s" % (self.key, k, want,
                                                       at_length.get(k)))
                break
        wrong = sorted(self.failed & set(got))
        if wrong:
            problems.append("%s: %s answered -TRYAGAIN but applied"
                            % (self.key, wrong[:5]))
        return problems


def refused(c, i, *args):
    try:
        r = c.command(i, *args)
    except resp.RespError as e:
        return e.message
    raise cl.TestFailure("%s on r%d was accepted (%r)" % (args, i, r))


def wait_primary_is(c, target, view, timeout):
    deadline = time.monotonic() + timeout
    inf = {}
    while time.monotonic() < deadline:
        try:
            inf = c.info(target)
        except (OSError, resp.RespError, resp.ProtocolError):
            inf = {}
        if inf.get("role") == "primary" and int(inf.get("view", 0)) >= view:
            return int(inf["view"])
        time.sleep(0.005)
    raise cl.TestFailure("r%d did not become primary of view %d within "
                         "%.0fs: %s" % (target, view, timeout, c.roles()))


def hand_over(c, p, target):
    """COHORT.TRANSFER on p until target leads: returns (its view, when the
    accepted command was answered). A refusal for lag or silence says "try
    again", and so does a drain the primary abandoned (the target did not
    catch up within a view-change timeout: a loaded machine); both are
    retried and counted, never a failure within the budget."""
    deadline = time.monotonic() + 20 * c.slow
    retries = 0
    while time.monotonic() < deadline:
        try:
            view = c.command(p, "COHORT.TRANSFER", str(target))
        except resp.RespError as e:
            check("not caught up" in e.message
                  or "not responding" in e.message
                  or "already under way" in e.message,
                  "transfer refused: %s" % e.message)
            retries += 1
            time.sleep(0.02)
            continue
        t_cmd = time.monotonic()
        try:
            wait_primary_is(c, target, view, 3 * c.slow)
        except cl.TestFailure as e:
            if c.find_primary() != p:
                raise
            log("retrying: %s" % e)
            retries += 1
            continue
        if retries:
            log("transfer to r%d took %d retries" % (target, retries))
        return view, t_cmd
    raise cl.TestFailure("no transfer to r%d within %.0fs: %s"
                         % (target, 20 * c.slow, c.roles()))


def check_refusals(c, p):
    n = c.n
    backup = (p + 1) % n
    msgs = {
        "bad id": refused(c, p, "COHORT.TRANSFER", "two"),
        "not a member": refused(c, p, "COHORT.TRANSFER", str(n + 2)),
        "self": refused(c, p, "COHORT.TRANSFER", str(p)),
        "sent to a backup": refused(c, backup, "COHORT.TRANSFER", str(p)),
    }
    for what, m in msgs.items():
        log("refusal (%s): -%s" % (what, m))
        check("\n" not in m, "multi-line error for %s" % what)
    check("0..2" in msgs["not a member"], msgs["not a member"])
    check("already the primary" in msgs["self"], msgs["self"])
    check("not the primary" in msgs["sent to a backup"],
          msgs["sent to a backup"])
    # The CLI says the same in one line and exits 1.
    cluster = "127.0.0.1:%d" % c.client_ports[backup]
    out = subprocess.run([c.binary, "transfer", "--cluster", cluster,
                          str(n + 2)], capture_output=True, text=True,
                         timeout=30 * c.slow)
    check(out.returncode == 1 and "no replica" in out.stderr
          and out.stderr.count("\n") == 1,
          "cohort transfer of a non-member: rc %d, %r"
          % (out.returncode, out.stderr))
    log("cli refusal: %s" % out.stderr.strip())
    check(c.find_primary() == p, "a refused transfer changed the primary")


def main(binary):
    c = cl.Cluster(binary, n=3, name="transfer")
    c.start()
    p, _ = c.wait_for_primary()
    c.wait_converged()
    check_refusals(c, p)
    writers = Writers(c, threads=4).start()
    inc = Incrementer(c).start()
    pipeliners = [Pipeliner(c, i).start() for i in range(c.n)]
    check(writers.wait_acks(100, 20 * c.slow),
          "fewer than 100 writes acknowledged: %s" % writers.summary())
    t_begin = time.monotonic()
    to_first_ack = []
    for k in range(ROUNDS):
        time.sleep(0.3)
        p, _ = c.wait_for_primary(probe=False)
        target = (p + 1) % c.n  # every replica leads in turn
        view, got = hand_over(c, p, target)
        t_cmd = got
        first = None
        deadline = time.monotonic() + 10 * c.slow
        while first is None and time.monotonic() < deadline:
            first = writers.first_ack_after(t_cmd)
            time.sleep(0.002)
        check(first is not None, "no write acknowledged after transfer %d"
              % k)
        to_first_ack.append(first - t_cmd)
        log("transfer %d: r%d -> r%d, view %d; first ack by the new "
            "primary %.1f ms after the command"
            % (k, p, target, view, 1000 * (first - t_cmd)))
    # Once through the CLI, from any member.
    time.sleep(0.3)
    p, _ = c.wait_for_primary(probe=False)
    target = (p + 2) % c.n
    cluster = "127.0.0.1:%d" % c.client_ports[(p + 1) % c.n]
    for attempt in range(3):
        out = subprocess.run([c.binary, "transfer", "--cluster", cluster,
                              "--timeout", str(int(3 * c.slow)),
                              str(target)], capture_output=True, text=True,
                             timeout=30 * c.slow)
        if out.returncode == 0 or "did not take over" not in out.stderr:
            break
        log("retrying the cli: %s" % out.stderr.strip())
    check(out.returncode == 0, "cohort transfer %d: rc %d, %s"
          % (target, out.returncode, out.stderr.strip()))
    log("cli: %s" % out.stdout.strip())
    check(c.find_primary() == target, "cohort transfer did not move the "
          "primary to r%d: %s" % (target, c.roles()))
    time.sleep(0.5)
    t_end = time.monotonic()
    for pl in pipeliners:
        pl.stop()
    writers.stop()  # again in stop_and_check, which counts the codes
    inc.stop()
    texts = writers.stats.texts + inc.stats.texts
    for pl in pipeliners:
        texts += pl.errors
    kinds = {}
    for t in texts:
        if t.startswith("TRYAGAIN"):
            kind = "bounced" if bounced(t) else t[:60]
            kinds[kind] = kinds.get(kind, 0) + 1
    n_bounced = kinds.pop("bounced", 0)
    log("-TRYAGAIN seen by clients: %d of the bounced kind; others: %s"
        % (n_bounced, kinds or "none"))
    resent = {}
    for i in c.live():
        inf = c.info(i, "stats")
        for f in ("forward_bounced", "forward_resent", "forward_resend_failed",
                  "forward_gated"):
            resent[f] = resent.get(f, 0) + int(inf.get(f, 0))
    log("backups: %s" % resent)
    p = c.find_primary()
    problems = []
    for pl in pipeliners:
        value = cl.read_all(c, p, [pl.key])[pl.key]
        found = pl.check(value)
        log("pipeliner r%d: %d acked, %d -TRYAGAIN, %d unknown; %s"
            % (pl.i, len(pl.acked), len(pl.failed), len(pl.unknown),
               "; ".join(found) or "in order, once each"))
        problems += found
    check(not problems, "pipelined writes: " + "; ".join(problems[:10]))
    check(n_bounced == 0, "%d forwarded writes came back to clients as the "
          "old primary's \"not the primary\" bounce instead of being "
          "re-sent" % n_bounced)
    retried, gap = stop_and_check(writers, inc, t_begin, t_end,
                                  ("TRYAGAIN",), "transfers")
    check_writes_and_counter(c, writers, inc, c.live())
    c.check_healthy()
    dead = check_dead_target(c)
    ms = sorted(1000 * x for x in to_first_ack)
    return ("%d transfers under load, %d writes acked, 0 failed (%d "
            "-TRYAGAIN retried, 0 bounced; %d re-sent); command -> first "
            "ack by the new primary %s ms; longest ack gap %.1f ms; %s"
            % (ROUNDS + 1, writers.ack_count(), retried,
               resent.get("forward_resent", 0),
               "/".join("%.1f" % x for x in ms), 1000 * gap,
               out.stdout.strip())) + "; " + dead


def check_dead_target(c):
    """`cohort transfer` to a replica that is down: the primary says "not
    responding", which the CLI retries (it may be a blip) until --timeout,
    then prints that refusal in one line and exits 1; the primary keeps
    its role."""
    p = c.find_primary()
    b = (p + 1) % c.n
    c.kill(b)
    deadline = time.monotonic() + 20 * c.slow
    field = "member%d" % b
    while time.monotonic() < deadline:
        if "health=suspected" in c.info(p, "replication").get(field, ""):
            break
        time.sleep(0.02)
    else:
        raise cl.TestFailure("r%d never suspected the killed r%d" % (p, b))
    cluster = "127.0.0.1:%d" % c.client_ports[p]
    t0 = time.monotonic()
    out = subprocess.run([c.binary, "transfer", "--cluster", cluster,
                          "--timeout", "1", str(b)], capture_output=True,
                         text=True, timeout=30 * c.slow)
    took = time.monotonic() - t0
    check(out.returncode == 1 and "not responding" in out.stderr
          and out.stderr.count("\n") == 1,
          "cohort transfer to the killed r%d: rc %d, %r"
          % (b, out.returncode, out.stderr))
    # It retried for the whole timeout rather than giving up at once.
    check(took >= 1.0, "cohort transfer gave up after %.2f s, before its "
          "1 s --timeout" % took)
    check(c.find_primary() == p, "a refused transfer moved the primary")
    return "to a killed replica: %s after %.1f s" % (out.stderr.strip(), took)


if __name__ == "__main__":
    cl.run_test("transfer", main, budget_s=90)
