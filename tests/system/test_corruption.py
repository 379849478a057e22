#!/usr/bin/env python3
"""test_corruption — a flipped byte in a backup's write-ahead log.

For each case, on a fresh 3-replica cluster: write keys, SIGKILL a backup,
flip one byte inside the payload of one WAL record in its data dir (records
found by their "COWR" magic), write some more, restart the backup. Pass:
the backup either
  - refuses to start, exiting with a message that names the segment file
    and the record's offset, or
  - repairs and converges: its own store (READONLY) ends equal to the
    primary's for every key, with the same DBSIZE;
and in both cases it never serves a wrong answer: every value it returns
(READONLY, polled while it catches up, and linearizable reads through it)
was written to that key, and every acknowledged write reads back from the
rest of the group.

Cases: a record in the middle of the log; the last record; and the last
record when that backup was half of the only quorum that stored it (the
other backup was down when the write was acknowledged, and the primary is
killed before the restart): cutting that record as a "torn tail" would lose
an acknowledged write, so the group must wait for the old primary or repair
from it, and GET of the key must never come back empty.

usage: test_corruption.py [path/to/cohort]
"""

import os
import re
import sys
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402
from workload import Writers, verify_writes  # noqa: E402

RECORD_HEADER = cl.WAL_RECORD_HEADER
ENTRY_HEADER = cl.WAL_ENTRY_HEADER
# Seconds (times the sanitizer factor) the sole-copy case watches the two
# restarted replicas without the old primary.
SOLE_WATCH_S = 5


def flip_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x5A]))
        f.flush()
        os.fsync(f.fileno())
    return b[0], b[0] ^ 0x5A


def readonly_values(c, i, keys):
    """The replica's own values, or None while it cannot answer."""
    try:
        with c.client(i, timeout=2.0) as conn:
            conn.command("READONLY")
            return cl.mget_all(conn, keys)
    except (OSError, resp.RespError, resp.ProtocolError):
        return None


def wrong_values(values, attempted):
    return [(k, v) for k, v in values.items()
            if v is not None and v != attempted[k].encode()]


def run_case(binary, case):
    c = cl.Cluster(binary, n=3, name="corrupt-" + case)
    c.start()
    c.wait_for_primary()
    w = Writers(c, threads=3, prefix="k").start()
    check(w.wait_acks(300, 20 * c.slow), "no progress: %s" % w.summary())
    w.stop()
    c.wait_converged()
    p, _ = c.wait_for_primary(probe=False)
    b = [i for i in range(c.n) if i != p][0]
    c.kill(b)

    records = cl.wal_records(c.wal_dir(b))
    check(len(records) >= 10, "found only %d WAL records in %s"
          % (len(records), c.wal_dir(b)))
    rec = records[len(records) // 2] if case == "middle" else records[-1]
    path, off, op, size = rec
    if size > ENTRY_HEADER:   # a byte of the body
        where = off + RECORD_HEADER + ENTRY_HEADER + (size - ENTRY_HEADER) // 2
    else:                     # a byte of the entry header
        where = off + RECORD_HEADER + size // 2
    old, new = flip_byte(path, where)
    log("%s: r%d killed; flipped byte %d of %s (0x%02x -> 0x%02x): record of "
        "op %d at offset %d, payload %d bytes; %d records in the log"
        % (case, b, where, os.path.basename(path), old, new, op, off, size,
           len(records)))

    # The group goes on without it.
    w2 = Writers(c, threads=2, prefix="m").start()
    check(w2.wait_acks(100, 20 * c.slow), "no progress with r%d down" % b)
    w2.stop()
    attempted = dict(w.attempted)
    attempted.update(w2.attempted)
    keys = sorted(attempted)

    c.restart(b, wait=False)
    deadline = time.monotonic() + 30 * c.slow
    outcome = None
    polls = 0
    while time.monotonic() < deadline:
        if not c.alive(b):
            outcome = "refused"
            break
        vals = readonly_values(c, b, keys)
        if vals is not None:
            polls += 1
            bad = wrong_values(vals, attempted)
            check(not bad, "r%d served wrong values after the corruption, "
                  "e.g. %s=%r (want %r)" % (b, bad[0][0], bad[0][1],
                                            attempted[bad[0][0]])
                  if bad else "")
            infos = c.infos()
            if len(infos) == c.n and \
                    len({x.get("applied_op") for x in infos.values()}) == 1 \
                    and all(x.get("role") in ("primary", "backup")
                            for x in infos.values()):
                ref = readonly_values(c, p, keys)
                if ref is not None and ref == vals:
                    outcome = "repaired"
                    break
        time.sleep(0.05)

    text = c.log_text(b)
    notes = [ln for ln in text.splitlines()
             if not ln.startswith("=== test harness") and re.search(r"damag|corrupt|checksum|crc|repair|refus",
                          ln, re.I)]
    for ln in notes[:10]:
        log("r%d log: %s" % (b, ln))

    if outcome == "refused":
        code = c.procs[b].returncode
        c.expected_down.add(b)
        last = text.strip().splitlines()[-5:]
        name = os.path.basename(path)
        check(name in text and re.search(r"\b(%d|0x%x)\b" % (off, off), text,
                                         re.I),
              "r%d refused to start (exit %s) but its message does not name "
              "the file %s and offset %d:\n%s"
              % (b, code, name, off, "\n".join(last)))
        check(code != 0, "r%d exited with code 0 after the corruption" % b)
        log("%s: r%d refused to start (exit %d): %s"
            % (case, b, code, last[-1] if last else ""))
    else:
        check(outcome == "repaired",
              "r%d neither refused to start nor converged within %.0fs: "
              "roles %s" % (b, 30 * c.slow, c.roles()))
        with c.client(b) as x, c.client(p) as y:
            x.command("READONLY")
            y.command("READONLY")
            sb, sp = x.command("DBSIZE"), y.command("DBSIZE")
        check(sb == sp, "DBSIZE on r%d is %s, on the primary r%d %s"
              % (b, sb, p, sp))
        log("%s: r%d repaired and converged (%d polls without a wrong "
            "answer; DBSIZE %d)" % (case, b, polls, sb))

    # Every acknowledged write reads back through each live replica, and
    # linearizable reads through the corrupted one (if up) are right.
    problems = []
    for i in c.live():
        problems += verify_writes(c, w, i) + verify_writes(c, w2, i)
    check(not problems, "after the corruption:\n  "
          + "\n  ".join(problems[:30]))
    c.finish()
    return outcome


def find_record_with(records, needle):
    """The record whose payload contains needle, or None."""
    for rec in records:
        path, off, op, size = rec
        with open(path, "rb") as f:
            f.seek(off + RECORD_HEADER)
            if needle in f.read(size):
                return rec
    return None


def run_sole_copy_case(binary):
    """The corrupted record is the last one, and its replica was half of
    the only quorum that stored it: backup b is down while SET sole=... is
    acknowledged by the primary p and backup a; then a is killed and its
    last record (that SET) corrupted, p is killed, and a and b restart.
    Cutting the record as a torn tail would lose an acknowledged write; a
    safe group either waits for p or repairs a from p, and never answers
    that the key is missing."""
    c = cl.Cluster(binary, n=3, name="corrupt-sole")
    c.start()
    p, _ = c.wait_for_primary()
    a, b = [i for i in range(c.n) if i != p]
    w = Writers(c, threads=2, prefix="k").start()
    check(w.wait_acks(100, 20 * c.slow), "no progress: %s" % w.summary())
    w.stop()
    c.wait_converged()
    c.kill(b)
    value = "sole-value-%d" % time.monotonic_ns()
    deadline = time.monotonic() + 20 * c.slow
    while True:
        try:
            r = c.command(p, "SET", "sole", value, timeout=2.0 * c.slow)
            check(r == "OK", "SET sole: %r" % (r,))
            break
        except (OSError, resp.RespError) as e:
            check(time.monotonic() < deadline,
                  "SET sole with r%d down: %r" % (b, e))
            time.sleep(0.05)
    time.sleep(0.2)  # let the commit reach a (no more writes after this)
    c.kill(a)
    records = cl.wal_records(c.wal_dir(a))
    rec = find_record_with(records, value.encode())
    check(rec is not None, "no WAL record of r%d holds the SET of sole" % a)
    path, off, op, size = rec
    is_last = rec == records[-1]
    where = off + RECORD_HEADER + size - 4   # inside the value
    flip_byte(path, where)
    c.kill(p)
    log("sole: SET sole acknowledged by r%d+r%d (r%d down); killed r%d, "
        "flipped a byte of its record of op %d (%s record of %d) at offset "
        "%d of %s; killed the primary r%d"
        % (p, a, b, a, op, "the last" if is_last else "not the last",
           len(records), off, os.path.basename(path), p))
    c.restart(b, wait=False)
    c.restart(a, wait=False)
    # Either a and b wait (p may hold the only good copy) or they serve,
    # and then sole must be there.
    # Watch a and b for SOLE_WATCH_S: 25 view-change timeouts, long
    # enough for them to form a group if they (wrongly) would.
    outcome = "waited for the old primary"
    deadline = time.monotonic() + SOLE_WATCH_S * c.slow
    while time.monotonic() < deadline:
        for i in (a, b):
            if not c.alive(i):
                break
            try:
                r = c.command(i, "GET", "sole", timeout=1.0 * c.slow)
            except (OSError, resp.RespError, resp.ProtocolError):
                continue
            check(r == value.encode(),
                  "ACKNOWLEDGED WRITE LOST: with the primary r%d down, r%d "
                  "and r%d formed a group and GET sole (acknowledged before "
                  "the crash) returns %r on r%d; r%d cut its corrupt last "
                  "record (op %d) as a torn tail:\n%s"
                  % (p, a, b, r, i, a, op,
                     "\n".join(ln for ln in c.log_text(a).splitlines()
                               if "torn" in ln or "damage" in ln)))
            outcome = "served it on r%d without the old primary" % i
            break
        else:
            time.sleep(0.05)
            continue
        break
    if not c.alive(a):
        c.expected_down.add(a)
        outcome = "r%d refused to start" % a
        log("sole: %s:\n%s" % (outcome, c.log_tail(a, 5)))
    c.restart(p)
    deadline = time.monotonic() + 30 * c.slow
    got = None
    while time.monotonic() < deadline:
        try:
            got = c.command(p, "GET", "sole", timeout=2.0 * c.slow)
            break
        except (OSError, resp.RespError, resp.ProtocolError):
            time.sleep(0.05)
    check(got == value.encode(), "after all restarts GET sole returns %r"
          % (got,))
    problems = []
    for i in c.live():
        problems += verify_writes(c, w, i)
    check(not problems, "after the corruption:\n  "
          + "\n  ".join(problems[:30]))
    log("sole: %s; the value survived" % outcome)
    c.finish()
    return outcome


def main(binary):
    outcomes = {}
    for case in ("middle", "last"):
        outcomes[case] = run_case(binary, case)
    outcomes["sole-copy last"] = run_sole_copy_case(binary)
    return "; ".join("%s record: %s" % kv for kv in outcomes.items()) + \
        "; no wrong answers"


if __name__ == "__main__":
    cl.run_test("corruption", main, budget_s=90)
