#!/usr/bin/env python3
"""test_failover — SIGKILL the primary under write load.

Four writer threads write unique keys through every replica (retrying on
-TRYAGAIN, -UNKNOWN and connection errors against the next replica) and one
client increments a counter with COHORT.REQ (exactly-once retries). The
primary is killed with SIGKILL. Pass: a new primary takes over without
operator action, writes are acknowledged again, every acknowledged write
reads back (linearizable, through the new primary and through a backup),
no key holds a value that was never written, and the counter matches the
acknowledged increments exactly. The time from the kill to the first
acknowledged write is printed, not asserted. Before the load, every replica
of the fresh group must be in a small view (0..FRESH_VIEW_MAX).

usage: test_failover.py [path/to/cohort]
"""

import sys
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
from cluster import check, log  # noqa: E402
from workload import Incrementer, Writers, verify_writes  # noqa: E402

# The highest view a fresh 3-replica group may be in once it has a primary.
FRESH_VIEW_MAX = 20


class Failover:
    """The scenario, shared with test_restart_catchup."""

    def __init__(self, binary, n=3):
        self.c = cl.Cluster(binary, n=n, name="failover")
        self.slow = self.c.slow
        self.writers = None
        self.inc = None
        self.killed = None
        self.new_primary = None
        self.timings = {}

    def run(self, load_before=1.0, load_after=2.0):
        c = self.c
        c.start()
        p, waited = c.wait_for_primary()
        log("cluster up: primary r%d after %.2fs; ports %s"
            % (p, waited, c.client_ports))
        # A fresh group starts from view 0 and needs a view change or a few
        # to elect its first primary; a view near 2^32 means garbage
        # metadata was taken for a view.
        views = {i: int(inf.get("view", "-1"))
                 for i, inf in c.wait_converged().items()}
        check(all(0 <= v <= FRESH_VIEW_MAX for v in views.values()),
              "views on a fresh start: %s (want 0..%d)"
              % (views, FRESH_VIEW_MAX))
        log("fresh start: views %s" % views)
        self.writers = Writers(c, threads=4).start()
        self.inc = Incrementer(c).start()
        check(self.writers.wait_acks(100, 20 * self.slow),
              "fewer than 100 writes acknowledged before the kill: %s"
              % self.writers.summary())
        time.sleep(load_before)
        acked_before = self.writers.ack_count()

        p, _ = c.wait_for_primary(probe=False)
        t_kill = time.monotonic()
        c.kill(p)
        self.killed = p
        log("SIGKILL primary r%d (pid %d) with %d writes acknowledged"
            % (p, c.pids[p], acked_before))

        deadline = t_kill + 30 * self.slow
        first = None
        while time.monotonic() < deadline:
            first = self.writers.first_ack_after(t_kill)
            if first is not None:
                break
            time.sleep(0.01)
        check(first is not None,
              "no write acknowledged within %.0fs of killing the primary: "
              "%s; roles %s" % (30 * self.slow, self.writers.summary(),
                                c.roles()))
        self.timings["kill_to_first_ack_s"] = first - t_kill
        log("first acknowledged write %.3fs after the kill"
            % (first - t_kill))

        np, _ = c.wait_for_primary(probe=False)
        check(np != p, "the killed replica r%d is still reported primary" % p)
        self.new_primary = np
        info = c.info(np)
        log("new primary r%d in view %s" % (np, info.get("view")))

        time.sleep(load_after)
        t_stop = time.monotonic()
        self.writers.stop()
        self.inc.stop()
        self.timings["longest_ack_gap_s"] = self.writers.longest_gap(
            t_kill - 0.5, t_stop)
        log("load stopped: %s; incrementer at %d (errors %s)"
            % (self.writers.summary(), self.inc.last_acked,
               self.inc.stats.errors))

    def verify(self, replicas=None):
        """Every acknowledged write reads back on each given replica
        (linearizable reads), and the counter is exact."""
        c = self.c
        w = self.writers
        check(not w.stats.unexpected, "unexpected replies to SET: %s"
              % w.stats.unexpected[:5])
        check(not self.inc.violations, "; ".join(self.inc.violations))
        replicas = c.live() if replicas is None else replicas
        problems = []
        for i in replicas:
            problems += verify_writes(c, w, i)
        check(not problems, "lost or wrong writes:\n  " +
              "\n  ".join(problems[:30]))
        if self.inc.session_lost:
            log("note: the incrementer stopped: %s" % self.inc.session_lost)
        got = cl.read_all(c, replicas[0], [self.inc.key])[self.inc.key]
        err = self.inc.check_final(got)
        check(err is None, err or "")
        log("verified %d acknowledged writes on replicas %s; counter %s = %s"
            % (len(w.acked), replicas, self.inc.key, got))


def main(binary):
    f = Failover(binary)
    f.run()
    f.verify()
    check(f.writers.ack_count() > 0, "no writes acknowledged at all")
    return ("%d writes acked, 0 lost; new primary r%d; kill -> first ack "
            "%.3fs, longest ack gap %.3fs; %d exactly-once increments"
            % (f.writers.ack_count(), f.new_primary,
               f.timings["kill_to_first_ack_s"],
               f.timings["longest_ack_gap_s"], f.inc.last_acked))


if __name__ == "__main__":
    cl.run_test("failover", main, budget_s=60)
