#!/usr/bin/env python3
"""test_peer_spoof — what a replica's own link may and may not say.

Peers here are unauthenticated (loopback: `cohort up`'s setup), so a local
process that poses as a stopped replica passes the handshake. Even then:

1. Unsolicited snapshot chunks write nothing. Issue 17's probe: chunks from
   a stranger posing as a stopped replica wrote 20 MB to
   snapshots/*.snap.recv. A replica now accepts a snapshot only from the
   replica it asked for state and was told a snapshot is coming; every
   other chunk is dropped and counted (INFO snapshot_chunks_refused).
2. A message is bound to its link: on the link of the posed replica, a
   START-VIEW-CHANGE naming the primary as its sender is dropped and
   counted (INFO peer_messages_wrong_sender), and the victim stays in its
   view. Before, it started a view change.

Both fail on builds before peer protocol 3.

usage: test_peer_spoof.py [path/to/cohort]
"""

import os
import sys
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import stranger as pw  # noqa: E402
from cluster import check, log  # noqa: E402

CHUNK = 64 << 10
TOTAL = 4 << 20  # the CRC-32C is computed in Python: 4 MiB is enough


def stat(c, i, name):
    return int(c.info(i, "stats").get(name, "0"))


def received_bytes(c, i):
    """Bytes in the victim's snapshots/*.recv files."""
    d = os.path.join(c.data_dir(i), "snapshots")
    total = 0
    for name in (os.listdir(d) if os.path.isdir(d) else []):
        if ".recv" in name:
            total += os.path.getsize(os.path.join(d, name))
    return total


def wait_stat(c, i, name, want, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stat(c, i, name) >= want:
            return True
        time.sleep(0.02)
    return False


def unsolicited_snapshot(c, victim, posed):
    op = int(c.info(victim)["applied_op"]) + 1000
    chunks = 0
    with pw.Stranger(c.peer_ports[victim], posed) as s:
        s.connect()
        # All but the last chunk: a finished file would be verified and
        # removed, a partial one stays (as the probe's 20 MB did).
        for off in range(0, TOTAL - CHUNK, CHUNK):
            if not s.send(pw.snapshot_frame(op, off, TOTAL, os.urandom(CHUNK)
                                            if off == 0 else
                                            b"\xab" * CHUNK)):
                break
            chunks += 1
        log("sent %d chunks (%d MiB) of a snapshot nobody asked for"
            % (chunks, chunks * CHUNK >> 20))
        counted = wait_stat(c, victim, "snapshot_chunks_refused", chunks,
                            10 * c.slow)
    got = received_bytes(c, victim)
    check(got == 0, "replica %d wrote %d bytes of an unsolicited snapshot "
          "into snapshots/" % (victim, got))
    check(counted, "replica %d counted %d refused chunks, not %d"
          % (victim, stat(c, victim, "snapshot_chunks_refused"), chunks))
    check(c.alive(victim), "replica %d died" % victim)


def wrong_sender(c, victim, posed, primary):
    view = int(c.info(victim)["view"])
    before = stat(c, victim, "peer_messages_wrong_sender")
    svc = pw.message(pw.MSG_START_VIEW_CHANGE, primary, view=view + 1)
    with pw.Stranger(c.peer_ports[victim], posed) as s:
        s.connect()
        s.send(pw.protocol_frame(svc))
        counted = wait_stat(c, victim, "peer_messages_wrong_sender",
                            before + 1, 5 * c.slow)
    check(int(c.info(victim)["view"]) == view,
          "replica %d left view %d on a START-VIEW-CHANGE that named "
          "replica %d but came on replica %d's link"
          % (victim, view, primary, posed))
    check(counted, "replica %d did not count the message in "
          "peer_messages_wrong_sender" % victim)
    lines = [ln for ln in c.log_text(victim).splitlines()
             if "claims to come from" in ln]
    check(lines, "replica %d logged nothing about it" % victim)
    log(lines[0])


def body(binary):
    c = cl.Cluster(binary, n=3, name="peer-spoof")
    c.start()
    p, _ = c.wait_for_primary()
    check(c.command(p, "SET", "before", "1") == "OK", "SET before failed")
    c.wait_converged()
    victim, posed = c.backups(p)
    c.kill(posed)
    unsolicited_snapshot(c, victim, posed)
    wrong_sender(c, victim, posed, p)
    c.restart(posed)
    check(c.command(p, "SET", "after", "2") == "OK", "SET after failed")
    c.wait_converged()
    return "4 MiB of unasked snapshot chunks wrote nothing; a message " \
           "naming another sender was dropped"


if __name__ == "__main__":
    cl.run_test("peer_spoof", body, budget_s=90)
