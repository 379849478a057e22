#!/usr/bin/env python3
"""test_rollback — a member started on an older copy of its data directory
does not make the group drop acknowledged writes silently.

The sequence (docs/OPERATIONS.md, "A member started on an older copy of
its data"):
  1. backup A is stopped, its directory copied, A restarted;
  2. backup B is stopped, and WRITES keys are written (acknowledged by the
     primary P and A);
  3. A is stopped and its old copy put back; P is stopped;
  4. A and B start: they form a view without the writes (neither can tell
     from its own disk);
  5. P returns.
Three times: with the group's log a prefix of P's (it wrote nothing
since); with the group having written more ops than P holds (another
history at the same op numbers); and with the group having written so many
that it compacted its log past P's ops, so that P is offered a snapshot
(whose offer carries a checkpoint of the group's history); and the same
with A and B restarted before P returns (the checkpoints come back from
their data directories' checkpoints file).
Pass: P, which holds the writes committed (its log's commit notes), sees
the group's log without them and stops: one ERROR line naming the cause and
OPERATIONS.md, INFO stats diverged_op > 0, and its log still holds every op
it had, and READONLY reads on P return the writes (all but perhaps the
last); in the second case the group's primary reports P's other history
too (peer_divergences, one ERROR line). Before the commit notes, P joined and its writes were gone
without a word.

usage: test_rollback.py [path/to/cohort]
"""

import os
import shutil
import sys
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
from cluster import check, log  # noqa: E402

WRITES = 100


def stat(c, i, name):
    try:
        return int(c.info(i, "stats").get(name, "0"))
    except (OSError, cl.resp.ProtocolError, ValueError):
        return 0


def scenario(binary, kind):
    other = kind != "behind"
    c = cl.Cluster(binary, n=3, name="rollback-" + kind)
    c.divergence_expected = True
    c.start()
    p, _ = c.wait_for_primary()
    a, b = c.backups(p)
    with c.client(p, timeout=10) as cli:
        check(all(r == "OK" for r in cli.pipeline(
            [("SET", "base:%d" % k, "1") for k in range(20)])), "base SETs")
    c.wait_converged()

    # 1. A's directory copied while A is down.
    c.kill(a)
    saved = os.path.join(c.dir, "old-copy")
    shutil.copytree(c.data_dir(a), saved)
    c.restart(a)
    c.wait_converged()

    # 2. B down; the writes are acknowledged by P and A alone.
    c.kill(b)
    with c.client(p, timeout=10) as cli:
        for k in range(WRITES):  # one at a time: each committed when acked
            check(cli.command("SET", "w:%d" % k, "1") == "OK", "SET w:%d" % k)
    p_op = int(c.info(p).get("op", "0"))
    log("%d writes acknowledged by r%d and r%d; r%d's op %d"
        % (WRITES, p, a, p, p_op))

    # 3. A gets its old copy back; P goes down.
    c.kill(a)
    shutil.rmtree(c.data_dir(a))
    shutil.copytree(saved, c.data_dir(a))
    c.kill(p)

    # 4. A and B form a view without the writes.
    compacted = kind in ("compacted", "restarted")
    if compacted:  # A and B snapshot often (P keeps its log whole)
        c.extra_args = ["--snapshot-interval-ops", "64"]
    c.restart(a)
    c.restart(b)
    c.extra_args = []
    q, _ = c.wait_for_primary()
    check(q in (a, b), "primary r%d, want r%d or r%d" % (q, a, b))
    log("r%d and r%d formed a view (primary r%d) on A's old copy" % (a, b, q))
    if other:  # the group writes other ops at the same op numbers, and more
        with c.client(q, timeout=10) as cli:
            group_writes = WRITES * 4 if compacted else WRITES + 20
            for k in range(group_writes):
                check(cli.command("SET", "g:%d" % k, "1") == "OK",
                      "SET g:%d" % k)
        q_op = int(c.info(q).get("op", "0"))
        check(q_op > p_op, "the group's op %d, want past %d" % (q_op, p_op))
        if compacted:
            # It keeps half an interval behind its snapshot.
            cl.poll("r%d's log compacted past op %d" % (q, p_op), 10 * c.slow,
                    lambda: int(c.info(q, "persistence").get(
                        "last_snapshot_op", "0")) >= p_op + 64)
    if kind == "restarted":  # memory gone; the checkpoints file stays
        for i in (a, b):
            path = os.path.join(c.data_dir(i), "checkpoints")
            check(os.path.getsize(path) > 24, "%s is empty" % path)
        c.kill(a)
        c.kill(b)
        c.restart(a)
        c.restart(b)
        q, _ = c.wait_for_primary()
        check(q in (a, b), "primary r%d, want r%d or r%d" % (q, a, b))
        c.wait_converged()

    # 5. P returns: it must stop, not drop the writes.
    c.restart(p)
    cl.poll("r%d reports the divergence" % p, 20 * c.slow,
            lambda: stat(c, p, "diverged_op") > 0)
    op = stat(c, p, "diverged_op")
    check(op <= p_op, "diverged_op %d beyond r%d's log (op %d)" % (op, p, p_op))
    cl.poll("the ERROR line", 5 * c.slow,
            lambda: "older copy of its data directory" in c.log_text(p))
    lines = [ln for ln in c.log_text(p).splitlines()
             if "older copy of its data directory" in ln]
    check("ERROR" in lines[0] and "OPERATIONS.md" in lines[0],
          "r%d's line: %s" % (p, lines[0]))
    time.sleep(1 * c.slow)  # it must stay so: nothing truncates its log
    check(int(c.info(p).get("op", "0")) >= p_op,
          "r%d's log shrank below op %d: %s" % (p, p_op, c.info(p)))
    check(stat(c, p, "diverged_op") == op, "r%d's divergence changed" % p)
    check(c.info(p).get("role") == "stopped",
          "r%d's role %r, want stopped" % (p, c.info(p).get("role")))
    # The writes are there to read (READONLY: its own store), all but
    # perhaps the last, which no commit note of its log covers.
    got = cl.read_all(c, p, ["w:%d" % k for k in range(WRITES)],
                      readonly=True)
    kept = [k for k in range(WRITES) if got["w:%d" % k] == b"1"]
    check(len(kept) >= WRITES - 1 and kept == list(range(len(kept))),
          "r%d serves %d of the %d writes: %s" % (p, len(kept), WRITES,
                                                  kept[:10]))
    if kind == "other":
        # The primary saw P's request show another history of an op both
        # hold committed. (When the group's log is only shorter, a prefix
        # of P's, it has nothing to compare: only P can tell.)
        cl.poll("r%d reports r%d's other history" % (q, p), 10 * c.slow,
                lambda: stat(c, q, "peer_divergences") > 0)
        check("holds another history of op" in c.log_text(q),
              "r%d logged no line:\n%s" % (q, c.log_tail(q, 10)))
    # The group itself goes on (P takes no part).
    with c.client(q, timeout=10) as cli:
        check(cli.command("SET", "after", "1") == "OK", "SET after")
    c.finish()
    return ("%s: r%d stopped at op %d (%d of its %d acknowledged writes "
            "readable there, its log at op %d); r%d and r%d serve on"
            % (kind, p, op,
               len(kept), WRITES, p_op, a, b))


def main(binary):
    return "; ".join(scenario(binary, kind)
                     for kind in ("behind", "other", "compacted",
                                  "restarted"))


if __name__ == "__main__":
    cl.run_test("rollback", main, budget_s=120)
