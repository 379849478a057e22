#!/usr/bin/env python3
"""test_spares — a dead voter is replaced by a spare, with no lost write.

Four replicas share one --peers list; `--voters 3` makes 0..2 the group,
and replica 3 starts with `--spare`: it asks the primary to be added and
becomes a learner, kept caught up. Every replica runs with a short
`--replace-after` (the grace period). Under a bounded write load (writers
through every replica, retrying -TRYAGAIN and dropped connections
elsewhere, and one COHORT.REQ incrementer):

  1. SIGKILL a backup voter: after the grace period the primary commits an
     epoch in which the spare takes its place and the dead voter becomes a
     learner (a spare);
  2. restart the dead voter: it learns it was replaced, comes back as a
     learner, and changes nothing else (it never flaps back in as a voter);
  3. SIGKILL the primary: a view change elects another voter, which
     replaces the dead primary with the now caught-up spare from step 2.

  4. `cohort remove` the --spare replica: it stays outside (it does not ask
     to be added again).

Pass: each replacement happens (within a generous deadline: the time it
took is printed, never asserted), the voters are always 3, no request
fails except the retried -TRYAGAIN and closed connections, every
acknowledged write reads back on every voter and the counter is exact.

usage: test_spares.py [path/to/cohort]
"""

import subprocess
import sys
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402
from workload import (Incrementer, Writers,  # noqa: E402
                      check_writes_and_counter, stop_and_check)

GRACE_MS = 1500
SPARE = 3


class SpareCluster(cl.Cluster):
    def args(self, i):
        return super().args(i) + (["--spare"] if i == SPARE else [])


def membership(c, i):
    """(epoch, voters, learners, self_member) from replica i's INFO."""
    inf = c.info(i)
    epoch, voters, learners = cl.membership_of(inf)
    return epoch, sorted(voters), sorted(learners), inf.get("self_member")


def wait_membership(c, what, fn, timeout):
    """Poll the primary's membership until fn(epoch, voters, learners)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            p = c.find_primary()
            if p is not None:
                last = membership(c, p)
                if fn(*last[:3]):
                    return p, last
        except (OSError, resp.RespError, resp.ProtocolError):
            pass
        time.sleep(0.02)
    raise cl.TestFailure("%s: not within %.0f s; the primary's membership: "
                         "%s" % (what, timeout, last))


def replaced(c, dead, t_kill, timeout):
    """Wait until `dead` is a learner and not a voter; return the spare that
    took its place is implied by the voters. Prints the time it took."""
    p, m = wait_membership(
        c, "replica %d replaced" % dead,
        lambda e, v, ln: dead not in v and dead in ln and len(v) == 3,
        timeout)
    took = time.monotonic() - t_kill
    inf = c.info(p)
    check(int(inf.get("spares_replaced_voters", 0)) >= 1,
          "r%d replaced a voter but INFO says spares_replaced_voters:%s"
          % (p, inf.get("spares_replaced_voters")))
    # The view history names the cause and the voter replaced: the first
    # view of the epoch that replaced it.
    history = [v for k, v in inf.items()
               if k.startswith("view_history") and k != "view_history"]
    check(any("cause=replacement" in h and "epoch=%d" % m[0] in h
              for h in history),
          "r%d's view history has no replacement for epoch %d: %s"
          % (p, m[0], history))
    log("replica %d replaced %.0f ms after the kill (grace %d ms): epoch "
        "%d, voters %s, learners %s" % (dead, 1000 * took, GRACE_MS * c.slow,
                                        m[0], m[1], m[2]))
    return p, m


def main(binary):
    grace = int(GRACE_MS * cl.slowness(binary))
    c = SpareCluster(binary, n=4, name="spares",
                     extra_args=["--voters", "3", "--replace-after",
                                 str(grace)])
    c.start()
    c.wait_for_primary()
    _, m = wait_membership(c, "the spare joins as a learner",
                           lambda e, v, ln: ln == [SPARE], 20 * c.slow)
    log("spare registered: epoch %d, voters %s, learners %s" % m[:3])
    check(m[1] == [0, 1, 2], "voters changed when the spare joined: %s"
          % (m[1],))

    writers = Writers(c, threads=3).start()
    inc = Incrementer(c).start()
    check(writers.wait_acks(200, 20 * c.slow),
          "fewer than 200 writes acknowledged: %s" % writers.summary())
    t_begin = time.monotonic()

    # 1. A backup voter dies: the spare takes its place.
    p, _ = c.wait_for_primary(probe=False)
    dead = [v for v in (0, 1, 2) if v != p][0]
    c.kill(dead)
    t_kill = time.monotonic()
    p, m = replaced(c, dead, t_kill, 30 * c.slow)
    check(SPARE in m[1], "the spare is not a voter: %s" % (m[1],))
    epoch_after = m[0]

    # 2. The dead voter returns: a learner (spare), nothing else changes.
    c.restart(dead)
    deadline = time.monotonic() + 20 * c.slow
    while True:
        try:
            mine = membership(c, dead)
        except (OSError, resp.RespError, resp.ProtocolError):
            mine = None
        if mine and mine[3] == "learner" and mine[0] >= epoch_after:
            break
        check(time.monotonic() < deadline, "the returning r%d does not "
              "know it is a learner: %s" % (dead, mine))
        time.sleep(0.05)
    time.sleep(4 * grace / 1000.0)
    p2, m2 = wait_membership(c, "steady", lambda e, v, ln: True, 10 * c.slow)
    check(m2[:3] == m[:3], "the returning voter changed the membership: "
          "%s -> %s" % (m[:3], m2[:3]))
    log("r%d came back as a learner; the membership stayed %s" % (dead,
                                                                  m2[:3]))

    # 3. The primary dies: the next primary replaces it with the spare.
    wait_membership(c, "the returned spare catches up",
                    lambda e, v, ln: True, 10 * c.slow)
    p, _ = c.wait_for_primary(probe=False)
    c.kill(p)
    t_kill = time.monotonic()
    q, m3 = replaced(c, p, t_kill, 30 * c.slow)
    check(dead in m3[1], "the old voter r%d did not take the dead "
          "primary's place: %s" % (dead, m3[1]))

    time.sleep(0.3)
    t_end = time.monotonic()
    # A killed member: raw clients see its connections drop, and a write in
    # flight on it as -UNKNOWN or a timeout; the writers and the
    # incrementer retry (the incrementer with the same number).
    retried, gap = stop_and_check(
        writers, inc, t_begin, t_end,
        ("TRYAGAIN", "UNKNOWN", "ConnectionRefusedError",
         "ConnectionResetError", "ConnectionClosed", "TimeoutError",
         "timeout"), "replacements")
    check_writes_and_counter(c, writers, inc, m3[1])
    # 4. The operator removes the --spare replica: it stays out (a spare
    # that asked to be added again would undo the removal). The command is
    # given the removed replica's own address: it must find the primary
    # after the change through a member that has left.
    at = "127.0.0.1:%d" % c.client_ports[SPARE]
    out = subprocess.run([c.binary, "remove", "--cluster", at, str(SPARE)],
                         capture_output=True, text=True, timeout=60 * c.slow)
    check(out.returncode == 0, "cohort remove %d: %s" % (SPARE, out.stderr))
    log(out.stdout.strip())
    time.sleep(4 * grace / 1000.0)
    _, m4 = wait_membership(c, "after the removal", lambda e, v, ln: True,
                            10 * c.slow)
    check(SPARE not in m4[1] + m4[2], "the removed spare r%d is back: %s"
          % (SPARE, m4[:3]))
    check(membership(c, SPARE)[3] == "outside", "r%d does not say it is "
          "outside" % SPARE)
    return ("2 voters replaced by spares under load (epoch %d, voters %s), "
            "%d writes acked, 0 lost (%d retried); a returning replaced "
            "voter stayed a spare; longest ack gap %.0f ms"
            % (m3[0], m3[1], writers.ack_count(), retried, 1000 * gap))


if __name__ == "__main__":
    cl.run_test("spares", main, budget_s=150)
