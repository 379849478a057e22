#!/usr/bin/env python3
"""test_peer_forged_view — forged view-change messages die at the link.

Issue 17's probes: a forged START-VIEW-CHANGE for view 2^32-1, sent to
every replica as if from each other one, moved the group into a view it
could never leave; a forged DO-VIEW-CHANGE with commit > op crashed its
receiver. A stranger needed only the cluster id, which every replica sends
to whoever connects.

Here a stranger dials every replica's peer port posing as each other
replica, in turn, and sends both. With a cluster secret, and again with
mutual TLS, every such connection must be refused at the handshake (closed,
and counted in INFO peer_connections_refused), no replica may crash or
leave its view, and the group keeps serving writes.
COHORT_TEST_NO_PEER_AUTH=1 runs the same on an unauthenticated cluster, to
see the attack land (on builds before peer protocol 3, the test fails).

usage: test_peer_forged_view.py [path/to/cohort]
"""

import sys
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import stranger as pw  # noqa: E402
from cluster import check, log  # noqa: E402

VIEW_MAX = 0xFFFFFFFF


def forge(c, i, j):
    """Pose as replica j on replica i's peer port; returns whether i closed
    the connection."""
    svc = pw.message(pw.MSG_START_VIEW_CHANGE, j, view=VIEW_MAX)
    dvc = pw.message(pw.MSG_DO_VIEW_CHANGE, j, view=VIEW_MAX, op=1,
                     commit=1000, base_op=1000, last_normal_view=0)
    with pw.Stranger(c.peer_ports[i], j) as s:
        try:
            s.connect()
        except OSError:
            return True
        s.send(pw.protocol_frame(svc) + pw.protocol_frame(dvc))
        return s.closed_by_peer(3 * c.slow)


def refused(c, i):
    return int(c.info(i, "stats").get("peer_connections_refused", "0"))


def attack(binary, mode):
    c = cl.Cluster(binary, n=3, name="peer-forged-view-%s" % mode,
                   peer_auth=mode)
    c.start()
    p, _ = c.wait_for_primary()
    check(c.command(p, "SET", "before", "1") == "OK", "SET before failed")
    infos = c.wait_converged()
    view = int(infos[p]["view"])
    before = {i: refused(c, i) for i in range(c.n)}
    for i in range(c.n):
        for j in range(c.n):
            if j != i:
                closed = forge(c, i, j)
                if c.peer_auth is not None:
                    check(closed, "replica %d kept a stranger posing as "
                          "replica %d connected" % (i, j))
    for i in range(c.n):
        check(c.alive(i), "replica %d died:\n%s" % (i, c.log_tail(i)))
    p, _ = c.wait_for_primary()
    check(c.command(p, "SET", "after", "2") == "OK", "SET after failed")
    infos = c.wait_converged()
    for i, inf in infos.items():
        check(int(inf["view"]) < 1000,
              "replica %d is in view %s after the forged messages (was %d)"
              % (i, inf["view"], view))
    if c.peer_auth is not None:
        deadline = time.monotonic() + 5 * c.slow
        while time.monotonic() < deadline:
            counts = {i: refused(c, i) - before[i] for i in range(c.n)}
            if all(v >= c.n - 1 for v in counts.values()):
                break
            time.sleep(0.02)
        check(all(v >= c.n - 1 for v in counts.values()),
              "connections refused per replica: %r (want >= %d each)"
              % (counts, c.n - 1))
    line = [ln for ln in c.log_text(0).splitlines() if "refus" in ln
            or "did not prove" in ln or "certificate" in ln]
    log("%s: views %s; e.g. %s" % (mode, {i: inf["view"] for i, inf in
                                         infos.items()},
                                   line[-1] if line else "(no log line)"))
    c.finish()


def body(binary):
    modes = ["secret"]
    if cl.openssl_available():
        modes.append("tls")
    else:
        log("no openssl command: the TLS half is skipped")
    for mode in modes:
        attack(binary, mode)
    return "forged START-VIEW-CHANGE and DO-VIEW-CHANGE refused at the " \
           "link (%s)" % ", ".join(modes)


if __name__ == "__main__":
    cl.run_test("peer_forged_view", body, budget_s=120)
