#!/usr/bin/env python3
"""test_incarnation — a data directory of another deployment with the same
flags cannot take the group over.

Deployment A (3 replicas) writes a:* keys and fails over a few times, so its
views run ahead; it is stopped and its replica 2's directory kept. Then
deployment B starts on the same hosts with the very same flags (ports,
cluster id) and empty directories, and writes b:* keys. B's replica 2 is
stopped and started on A's directory, and B's replica 0 is killed: replica
1 and the foreign replica 2 would make a majority, and A's log (newer
views) would win the view change. Pass: the two incarnations refuse each
other (a line on both sides naming the fix), B's data is whole once
replica 0 is back, none of A's keys appears in B, and INFO reports each
member's cluster_incarnation.

usage: test_incarnation.py [path/to/cohort]
"""

import os
import shutil
import sys
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
from cluster import check, log  # noqa: E402

KEYS = 50


def incarnation(c, i):
    return c.info(i, "server").get("cluster_incarnation", "")


def wait_incarnation(c, members):
    """Every member's cluster_incarnation, once all report the same nonzero
    one."""
    out = {}

    def same():
        for i in members:
            out[i] = incarnation(c, i)
        values = set(out.values())
        return len(values) == 1 and values != {"0" * 16} and values != {""}
    cl.poll("every member knows the group's incarnation", 20 * c.slow, same)
    return out[members[0]]


def write_keys(c, prefix):
    p, _ = c.wait_for_primary()
    with c.client(p, timeout=10) as cl_:
        replies = cl_.pipeline([("SET", "%s:%d" % (prefix, k), prefix)
                                for k in range(KEYS)])
    check(all(r == "OK" for r in replies), "SET %s:*: %r" % (prefix, replies))


def main(binary):
    c = cl.Cluster(binary, n=3, name="incarnation")
    c.start()
    write_keys(c, "a")
    for _ in range(3):  # A's views run ahead of B's
        p, _ = c.wait_for_primary()
        c.kill(p)
        c.wait_for_primary()
        c.restart(p)
    write_keys(c, "a")
    c.wait_converged()
    inc_a = wait_incarnation(c, [0, 1, 2])
    view_a = max(int(inf.get("view", 0)) for inf in c.infos().values())
    c.stop_all()
    saved = os.path.join(c.dir, "deployment-a-r2")
    shutil.copytree(c.data_dir(2), saved)
    for i in range(c.n):
        shutil.rmtree(c.data_dir(i))
    log("deployment A: incarnation %s, view %d; its r2 directory kept"
        % (inc_a, view_a))

    # Deployment B: the same flags, empty directories.
    for i in range(c.n):
        c.start_replica(i)
    for i in range(c.n):
        c.wait_ready(i, 15 * c.slow)
    write_keys(c, "b")
    c.wait_converged()
    inc_b = wait_incarnation(c, [0, 1, 2])
    check(inc_b != inc_a, "two deployments drew one incarnation: %s" % inc_a)
    log("deployment B: incarnation %s" % inc_b)

    # B's r2 comes back on A's directory; B's r0 dies.
    c.kill(2)
    shutil.rmtree(c.data_dir(2))
    shutil.copytree(saved, c.data_dir(2))
    c.restart(2, wait=False)
    c.kill(0)
    log("r2 started on deployment A's directory; r0 killed")
    time.sleep(3 * c.slow)  # time enough for r1 and r2 to form a view
    c.restart(0)
    p, _ = c.wait_for_primary()
    for i in (0, 1):
        got = cl.read_all(c, i, ["b:%d" % k for k in range(KEYS)] +
                          ["a:%d" % k for k in range(KEYS)], readonly=True)
        lost = [k for k in range(KEYS) if got["b:%d" % k] != b"b"]
        foreign = [k for k in range(KEYS) if got["a:%d" % k] is not None]
        check(not lost, "r%d lost B's keys %s (A's directory took over)"
              % (i, lost[:10]))
        check(not foreign, "r%d serves deployment A's keys %s"
              % (i, foreign[:10]))
    write_keys(c, "b")
    log("B whole after r0's return (primary r%d); no key of A in it" % p)

    # Both sides said why, and INFO tells the incarnations apart.
    cl.poll("the refusal in the logs", 10 * c.slow, lambda: all(
        "another incarnation of this cluster" in c.log_text(i)
        for i in (1, 2)))
    check("cohort remove 2" in c.log_text(1) or
          "cohort remove 2" in c.log_text(0),
          "the refusal names the fix:\n%s" % c.log_tail(1, 10))
    check(incarnation(c, 2) == inc_a,
          "r2's cluster_incarnation %r, want A's %s" % (incarnation(c, 2),
                                                       inc_a))
    for i in (0, 1):
        check(incarnation(c, i) == inc_b, "r%d's cluster_incarnation %r, "
              "want B's %s" % (i, incarnation(c, i), inc_b))
    lines = {i: sum("another incarnation" in ln
                    for ln in c.log_text(i).splitlines()) for i in range(3)}
    log("refusal lines: %s (a dial logs a refusal once per run of "
        "failures; an acceptor at most 10 per 10 s)" % lines)
    role = c.info(2).get("role")
    check(role != "primary" and role != "backup",
          "the foreign r2 joined the group as %s" % role)
    return ("a directory of another deployment (incarnation %s, view %d) "
            "was refused by deployment B (incarnation %s); B's %d keys "
            "whole, none of A's" % (inc_a, view_a, inc_b, KEYS))


if __name__ == "__main__":
    cl.run_test("incarnation", main, budget_s=90)
