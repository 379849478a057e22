#!/usr/bin/env python3
"""test_log_loss — a backup's log damaged below or above its snapshot, or
shortened behind its back (deleted, a segment gone, a segment cut short).

Every cluster runs with small log segments (--wal-segment-size 1 MiB, with
6 KB values: under two hundred records a segment) and frequent snapshots
(--snapshot-interval-ops 200), so that a backup's log spans several
segments and starts below its latest snapshot.

Damage cases (issue 10): SIGKILL a backup, flip one byte of one WAL record,
restart it while writers keep the group busy. "below": a record at or below
the backup's latest snapshot (its length field, which reads as "an
impossible length, and a valid record follows"): the snapshot covers it, so
it costs nothing. "above": a record above the snapshot with valid records
after it: damage, repaired from the peers. Pass: the backup never crashes
(an assertion on its own recovered state was the bug), rejoins as a backup
and converges, and every acknowledged write reads back from every replica.

Loss cases (issue 11): backup a is down while `SET acked:key v` is
acknowledged by the primary p and backup b; b is killed and its log
shortened: "deleted-wal" (rm -rf wal/), "deleted-segment" (the last
segment, the one holding the write), "truncated-segment" (the last segment
cut just before the write's record), "segment-after-snapshot" (the last
segment, begun below b's newest snapshot, the write above it: found when
the metadata's log end bound stayed below the snapshot), "deleted-meta"
(the metadata file, next to an intact log); p is killed; a
and b restart, then p.
Pass: while p is down, neither a nor b ever answers GET acked:key with
anything but v (b knows it lost records and must not help a form a view
without them); once p is back, GET acked:key is v on all three; b's log
names what was missing in one line.

usage: test_log_loss.py [path/to/cohort [case...]]
"""

import os
import re
import shutil
import socket
import sys
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402
from workload import Writers, verify_writes  # noqa: E402

RECORD_HEADER = cl.WAL_RECORD_HEADER
ENTRY_HEADER = cl.WAL_ENTRY_HEADER
# A 1 MiB segment holds one entry of a 512 KiB value (cohort server refuses
# a segment that cannot hold one largest entry).
EXTRA_ARGS = ["--wal-segment-size", str(1 << 20), "--max-value-size", "512kb",
              "--snapshot-interval-ops", "200"]
VALUE_SIZE = 6000
# Ops the log keeps behind each snapshot: half the snapshot interval.
KEEP_OPS = 100
# Seconds (times the sanitizer factor) a and b are watched without p.
WATCH_S = 3


def latest_snapshot_op(c, i):
    d = os.path.join(c.data_dir(i), "snapshots")
    ops = [int(m.group(1)) for n in os.listdir(d)
           for m in [re.match(r"snapshot-(\d{20})\.snap$", n)] if m] \
        if os.path.isdir(d) else []
    return max(ops) if ops else 0


def flip_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x5A]))
        f.flush()
        os.fsync(f.fileno())


def listenable(port):
    """Whether a server could listen on port now (it sets SO_REUSEADDR, so
    only another listener stops it, not connections in TIME_WAIT)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((cl.HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def kill_quiet(c, i):
    """SIGKILL replica i and wait until nothing listens on its ports: a
    snapshot child it forked dies with it, but not at the same instant,
    and holds them (and may rename its snapshot in) until then."""
    c.kill(i)
    deadline = time.monotonic() + 20 * c.slow
    ports = (c.client_ports[i], c.peer_ports[i])
    while not all(listenable(p) for p in ports):
        check(time.monotonic() < deadline,
              "the ports of r%d stay taken after its death" % i)
        time.sleep(0.02)


def damage_lines(c, i):
    return [ln for ln in c.log_text(i).splitlines()
            if "damage" in ln and not ln.startswith("=== test harness")]


def fill(c, prefix, count):
    """Writers that wrote at least count values of VALUE_SIZE (stopped)."""
    w = Writers(c, threads=3, prefix=prefix, value_size=VALUE_SIZE).start()
    check(w.wait_acks(count, 40 * c.slow), "no progress: %s" % w.summary())
    w.stop()
    return w


# ---- damage below / above the snapshot ----------------------------------

def pick_records(records, snap, where):
    """Records at or below snap (below: one in the middle of them, and the
    last, which shares its segment with snap + 1), or one above it with
    valid records after it (above); None if there are none."""
    if where == "below":
        below = [r for r in records if r[2] <= snap]
        return [below[len(below) // 2], below[-1]] if len(below) >= 2 \
            else None
    above = [r for r in records if r[2] > snap]
    return [above[len(above) // 2]] if len(above) >= 3 else None


def run_damage_case(binary, where):
    c = cl.Cluster(binary, n=3, name="logloss-" + where,
                   extra_args=EXTRA_ARGS)
    c.start()
    p, _ = c.wait_for_primary()
    b = c.backups(p)[0]
    # Enough writes for several segments and snapshots, then more until b
    # holds records on the wanted side of its latest snapshot.
    writers = [fill(c, "k", 1200)]
    for attempt in range(10):
        c.wait_converged()
        kill_quiet(c, b)
        snap = latest_snapshot_op(c, b)
        records = cl.wal_records(c.wal_dir(b))
        recs = pick_records(records, snap, where) if snap else None
        if recs is not None:
            break
        c.restart(b)
        writers.append(fill(c, "k%d-" % attempt, 150))
    check(recs is not None, "r%d never held records %s its snapshot"
          % (b, where))
    for path, off, op, size in recs:
        if where == "below":
            flip_byte(path, off + 10)  # the length's third byte: impossible
        else:
            flip_byte(path, off + RECORD_HEADER + size // 2)
        log("%s: r%d killed at snapshot op %d, %d segments; flipped a byte "
            "of the record of op %d (%s offset %d)"
            % (where, b, snap, len(cl.wal_segments(c.wal_dir(b))), op,
               os.path.basename(path), off))

    # Restart it and write at once: the primary's next PREPAREs are the
    # ops right above b's snapshot, which is where the old code crashed.
    c.restart(b, wait=False)
    w = Writers(c, threads=3, prefix="m", value_size=VALUE_SIZE).start()
    check(w.wait_acks(400, 40 * c.slow),
          "no progress after r%d restarted: %s" % (b, w.summary()))
    w.stop()
    writers.append(w)
    check(c.alive(b), "r%d died after its restart:\n%s"
          % (b, c.log_tail(b)))
    c.wait_converged()
    notes = damage_lines(c, b)
    for ln in notes[:3]:
        log("r%d log: %s" % (b, ln))
    check(not any("assertion" in ln for ln in c.log_text(b).splitlines()),
          "r%d hit an assertion:\n%s" % (b, c.log_tail(b)))
    if where == "above":
        check(any("repairing from peers" in ln for ln in notes),
              "r%d did not report the damage above its snapshot" % b)
    else:
        check(not any("repairing from peers" in ln for ln in notes),
              "r%d took damage its snapshot covers for a loss: %s"
              % (b, notes))
    problems = []
    for i in c.live():
        for wr in writers:
            problems += verify_writes(c, wr, i)
    check(not problems, "after the damage:\n  " + "\n  ".join(problems[:30]))
    c.finish()
    return "r%d rejoined under load" % b


# ---- a shortened log: the acknowledged write must survive -----------------

def shorten(c, b, how, value):
    """Damage b's log as `how` says; returns what was done."""
    wal = c.wal_dir(b)
    if how == "deleted-meta":
        meta = os.path.join(c.data_dir(b), "meta")
        os.unlink(meta)
        return "deleted %s" % meta
    if how == "deleted-wal":
        shutil.rmtree(wal)
        return "deleted %s" % wal
    records = cl.wal_records(wal)
    hit = [r for r in records if value.encode() in _payload(r)]
    check(hit, "no WAL record of r%d holds the acknowledged write" % b)
    path, off, op, _ = hit[-1]
    segs = cl.wal_segments(wal)
    check(len(segs) >= 2, "r%d has only %d segment(s)" % (b, len(segs)))
    check(path == segs[-1], "the write (op %d) is not in the last segment"
          % op)
    if how in ("deleted-segment", "segment-after-snapshot"):
        os.unlink(path)
        return "deleted %s (holding op %d)" % (os.path.basename(path), op)
    with open(path, "r+b") as f:
        f.truncate(off)
    return "truncated %s to %d bytes (before op %d)" % (
        os.path.basename(path), off, op)


def _payload(rec):
    path, off, _, size = rec
    with open(path, "rb") as f:
        f.seek(off + RECORD_HEADER)
        return f.read(size)


def get_or_none(c, i, key):
    try:
        return True, c.command(i, "GET", key, timeout=1.0 * c.slow)
    except (OSError, resp.RespError, resp.ProtocolError):
        return False, None


def newest_segment_first_op(c, i):
    records = cl.wal_records(c.wal_dir(i))
    last = cl.wal_segments(c.wal_dir(i))[-1]
    return min(op for path, _, op, _ in records if path == last)


def pad_past_snapshot(c, p, b):
    """Write one value at a time until b's newest snapshot is inside b's
    newest segment: the acknowledged write then lands above a snapshot in
    a segment that began below it (the metadata's log end bound must pass
    the snapshot, or losing the segment looks like nothing lost).

    The snapshot must also be early enough in that segment that the
    compaction it brings (to KEEP_OPS behind it, core/transfer.c) leaves
    the segment before it: shorten() deletes the newest segment and needs
    another. A snapshot later in the segment can drop the one before it,
    at once or a moment later, so padding goes on to the next segment."""
    for n in range(1500):
        snap = latest_snapshot_op(c, b)
        first = newest_segment_first_op(c, b)
        if first <= snap < first + KEEP_OPS - 10 and \
                len(cl.wal_segments(c.wal_dir(b))) >= 2:
            return
        c.command(p, "SET", "pad%d" % n, "x" * VALUE_SIZE,
                  timeout=5.0 * c.slow)
    raise cl.TestFailure("r%d took no snapshot early in its newest segment "
                         "in 1500 writes" % b)


def run_loss_case(binary, how):
    c = cl.Cluster(binary, n=3, name="logloss-" + how, extra_args=EXTRA_ARGS)
    c.start()
    p, _ = c.wait_for_primary()
    a, b = c.backups(p)
    w = fill(c, "k", 1200)
    c.wait_converged()
    kill_quiet(c, a)
    if how == "segment-after-snapshot":
        pad_past_snapshot(c, p, b)
    value = "acked-%d" % time.monotonic_ns()
    deadline = time.monotonic() + 20 * c.slow
    while True:
        try:
            r = c.command(p, "SET", "acked:key", value, timeout=2.0 * c.slow)
            check(r == "OK", "SET acked:key: %r" % (r,))
            break
        except (OSError, resp.RespError) as e:
            check(time.monotonic() < deadline,
                  "SET acked:key with r%d down: %r" % (a, e))
            time.sleep(0.05)
    time.sleep(0.2)  # let the commit reach b
    kill_quiet(c, b)
    done = shorten(c, b, how, value)
    kill_quiet(c, p)
    log("%s: SET acked:key acknowledged by r%d+r%d (r%d down); %s on r%d; "
        "killed the primary r%d" % (how, p, b, a, done, b, p))

    c.restart(a, wait=False)
    c.restart(b, wait=False)
    outcome = "a and b waited for the old primary"
    deadline = time.monotonic() + WATCH_S * c.slow
    while time.monotonic() < deadline:
        for i in (a, b):
            check(c.alive(i), "r%d exited:\n%s" % (i, c.log_tail(i)))
            ok, got = get_or_none(c, i, "acked:key")
            if not ok:
                continue
            check(got == value.encode(),
                  "ACKNOWLEDGED WRITE LOST: without the primary r%d, GET "
                  "acked:key on r%d returns %r (r%d's log: %s)"
                  % (p, i, got, b, done))
            outcome = "served it on r%d without the old primary" % i
        time.sleep(0.05)
    c.restart(p)
    c.wait_converged()
    for i in range(c.n):
        got = c.command(i, "GET", "acked:key", timeout=2.0 * c.slow)
        check(got == value.encode(), "after all restarts GET acked:key on "
              "r%d returns %r (r%d: %s)" % (i, got, b, done))
    notes = damage_lines(c, b)
    check(notes, "r%d (%s) logged no damage:\n%s" % (b, done, c.log_tail(b)))
    if how == "deleted-meta":
        check(any(re.search(r"\bWARN\b.*/meta is missing", ln)
                  for ln in notes),
              "r%d's WARN line does not name its missing meta file: %s"
              % (b, notes))
    log("r%d log: %s" % (b, notes[0]))
    problems = []
    for i in c.live():
        problems += verify_writes(c, w, i)
    check(not problems, "after the loss:\n  " + "\n  ".join(problems[:30]))
    c.finish()
    return outcome


CASES = ("below", "above", "deleted-wal", "deleted-segment",
         "truncated-segment", "segment-after-snapshot", "deleted-meta")


def main(binary):
    outcomes = {}
    for case in sys.argv[2:] or CASES:
        check(case in CASES, "unknown case %s (cases: %s)"
              % (case, " ".join(CASES)))
        if case in ("below", "above"):
            outcomes["damage " + case] = run_damage_case(binary, case)
        else:
            outcomes[case] = run_loss_case(binary, case)
    return "; ".join("%s: %s" % kv for kv in outcomes.items())


if __name__ == "__main__":
    cl.run_test("log_loss", main, budget_s=240)
