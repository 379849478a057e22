#!/usr/bin/env python3
"""test_partition — the group and libcohort-client through real network
partitions (issue 15's system test), in network namespaces the test makes
(tests/system/netns.py: one per member, and a hub whose bridge joins them;
the test and its clients run in the hub).

While 16 client threads make INCRs of one counter and 16 more make
compare-and-set increments (GET, then CAS v v+1) of another, through the
library with a generous deadline, the primary is, 5 times each and in
turn:
  - cut off the network (iptables DROP on its eth0, both ways), until
    another member serves, then reconnected;
  - SIGKILLed, until another member serves, then restarted;
  - SIGSTOPped, until another member serves, then resumed.
While a primary is cut off, a client inside its namespace (on its side of
the partition) sends it an INCR with a 1.5 s deadline: an isolated
primary must not acknowledge it (it cannot reach a quorum), so the call
fails; the test counts those calls and checks none succeeded.

Then, with the loads stopped and a trickle of writes going on, the
primary is cut off for 30 s and reconnected: it
must be back in the group's view, caught up, within 10 s of the heal
(about 1 s with the transport's stall timeout; about 25 s when the
connections waited out TCP's retransmission back-off).

At the end: no call of either load failed (the library hid every
failover), no reply came twice (0 duplicates), each counter equals its
successful calls (0 lost, 0 applied twice), the members converge, and the
longest single call (the stall a failover costs) is printed.

Skips (exit 77) without root, iproute2 or iptables.

usage: test_partition.py [path/to/cohort]
"""

import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import netns  # noqa: E402
import test_client_lib as lib  # noqa: E402
from cluster import check, log  # noqa: E402

ROUNDS = 5
LONG_PARTITION_S = 30


def new_primary(c, old):
    """Wait until a member other than old serves a write."""
    t0 = time.monotonic()
    deadline = t0 + 30 * c.slow
    while time.monotonic() < deadline:
        q, _ = c.wait_for_primary(timeout=30 * c.slow)
        if q != old:
            return q, time.monotonic() - t0
        time.sleep(0.05)
    check(False, "no member but r%d became primary" % old)


def isolated_write(binary, c, p):
    """An INCR from inside the cut-off primary's namespace, to it alone:
    returns the client's rc name (anything but OK is right)."""
    argv = c.ns.in_ns(p, [lib.tool(binary), "call", "--members",
                          "%s:%d" % (c.ns.address(p), c.client_ports[p]),
                          "--deadline-ms", "1500", "--", "INCR",
                          "isolated"])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    check(out.returncode == 0, "the isolated client: rc %d: %s"
          % (out.returncode, out.stdout + out.stderr))
    return out.stdout.split()[0].split("=", 1)[1]


def partition_primary(binary, c, stats):
    p, _ = c.wait_for_primary(probe=False)
    c.ns.isolate(p)
    rc = isolated_write(binary, c, p)
    check(rc != "OK", "the primary r%d, cut off the network, acknowledged "
          "an INCR" % p)
    stats["isolated_refused"] += 1
    q, waited = new_primary(c, p)
    c.ns.heal(p)
    log("cut off primary r%d (its INCR from inside: %s); r%d served after "
        "%.2fs; reconnected" % (p, rc, q, waited))


def kill_primary(binary, c, stats):
    p, _ = c.wait_for_primary(probe=False)
    c.kill(p)
    q, waited = new_primary(c, p)
    c.restart(p)
    log("killed primary r%d; r%d served after %.2fs; restarted"
        % (p, q, waited))


def pause_primary(binary, c, stats):
    p, _ = c.wait_for_primary(probe=False)
    c.pause(p)
    try:
        q, waited = new_primary(c, p)
    finally:
        c.resume(p)
    log("froze primary r%d; r%d served after %.2fs; resumed"
        % (p, q, waited))


def rejoin_after_long_partition(c, seconds):
    """Cut the primary off for seconds (under the load), heal, and return
    how long after the heal it was back: in the group's view and applied
    up to what the group had applied at the heal. TCP's retransmission
    back-off on connections that lost packets grows with the partition
    (its retries come at 0.2, 0.6, 1.4, 3, 6.2, 12.6, 25.4, 51 s): a
    transport that waited for it rejoined 23 s after a 30 s
    partition; one that redials a stalled connection, within a second or
    two."""
    p, _ = c.wait_for_primary(probe=False)
    c.ns.isolate(p)
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        # A trickle of writes (a heavy load would overflow the send queue
        # to the cut-off member, which redials it anyway).
        q = c.find_primary()
        if q is not None:
            try:
                c.command(q, "INCR", "trickle", timeout=2.0)
            except (OSError, cl.resp.RespError, cl.resp.ProtocolError):
                pass
        time.sleep(0.02)
    q = c.find_primary()
    check(q is not None and q != p, "no other primary while r%d was cut "
          "off: %s" % (p, c.roles()))
    target = int(c.info(q)["applied_op"])
    c.ns.heal(p)
    healed = time.monotonic()
    bound = 10 * c.slow
    last = None
    while time.monotonic() - healed < bound:
        try:
            mine, theirs = c.info(p), c.info(q)
            last = (mine.get("role"), mine.get("view"), mine.get("applied_op"),
                    theirs.get("view"))
            if (mine.get("view") == theirs.get("view")
                    and mine.get("role") in ("backup", "primary")
                    and int(mine.get("applied_op", "0")) >= target):
                took = time.monotonic() - healed
                log("primary r%d cut off for %ds: back in the view and "
                    "caught up %.2fs after the heal" % (p, seconds, took))
                return took
        except (OSError, cl.resp.RespError, cl.resp.ProtocolError) as e:
            last = e
        time.sleep(0.05)
    check(False, "r%d, cut off for %ds, was not back in the group %.0fs "
          "after the network healed (last: %r)" % (p, seconds, bound, last))


def body(binary, ns):
    # Clients come from the hub, not loopback: protected mode would refuse
    # them without a password (the network is the test's own).
    c = netns.NetnsCluster(binary, ns, name="partition", peer_auth="secret",
                           extra_args=["--protected-mode", "no"])
    c.start()
    p, _ = c.wait_for_primary()
    check(c.command(p, "SET", "cas", "0") == "OK", "SET cas 0")
    deadline_ms = 120000 * c.slow
    incr = lib.Incrementer(binary, c, "incr", deadline_ms,
                           os.path.join(c.dir, "stop-incr"), threads=16,
                           member_list=c.member_list())
    cas = lib.Incrementer(binary, c, "cas", deadline_ms,
                          os.path.join(c.dir, "stop-cas"), threads=16,
                          member_list=c.member_list(), mode="casincr")
    stats = {"isolated_refused": 0}
    faults = [partition_primary, kill_primary, pause_primary] * ROUNDS
    for fault in faults:
        incr.wait_progress(200, 60 * c.slow)
        cas.wait_progress(50, 60 * c.slow)
        fault(binary, c, stats)
    incr.wait_progress(200, 60 * c.slow)
    cas.wait_progress(50, 60 * c.slow)
    r_incr = incr.stop(60 * c.slow)
    r_cas = cas.stop(60 * c.slow)
    rejoin_s = rejoin_after_long_partition(c, LONG_PARTITION_S)
    c.wait_converged(timeout=60 * c.slow)
    lib.check_load("16 threads of INCR", r_incr, lib.counter(c, "incr"))
    lib.check_load("16 threads of GET+CAS", r_cas, lib.counter(c, "cas"))
    c.finish()
    return ("%d partitions, %d kills and %d pauses of the primary: INCR "
            "%d calls, CAS %d calls, 0 errors, 0 duplicates, 0 lost; "
            "longest call %d ms (INCR) / %d ms (CAS); the cut-off primary "
            "acknowledged none of %d INCRs sent to it; cut off for %ds, "
            "it was back %.2fs after the heal"
            % (ROUNDS, ROUNDS, ROUNDS, r_incr["ok"], r_cas["ok"],
               r_incr["max_call_ms"], r_cas["max_call_ms"],
               stats["isolated_refused"], LONG_PARTITION_S, rejoin_s))


def scenario(binary):
    ok, why = netns.available()
    if not ok:
        print("SKIP partition: %s" % why)
        sys.exit(cl.SKIP_CODE)
    return netns.run_in_namespaces(3, lambda ns: body(binary, ns))


if __name__ == "__main__":
    cl.run_test("partition", scenario, budget_s=600)
