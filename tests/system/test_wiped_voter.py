#!/usr/bin/env python3
"""test_wiped_voter — a voter restarted on an emptied data directory does
not help a lagging replica lose acknowledged writes.

A backup (the laggard) is killed; the primary and the other backup
acknowledge a batch of writes; both are killed and the other backup's data
directory is emptied (a lost disk). The laggard and the emptied replica
start: they are a majority, but the only full copy of the writes is on the
primary, which is down. The emptied replica hears from the laggard that
the group holds data (its handshake announces the group's incarnation) and
counts its own log as damaged, so the two do not choose a primary from the
laggard's shorter log: no member answers for the writes meanwhile, and
none answers without them. Pass: once the primary is back every write
reads back on every member, the emptied replica was brought up to date,
and it logged why it waited.

usage: test_wiped_voter.py [path/to/cohort]
"""

import shutil
import sys
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402

KEYS = 200


def main(binary):
    c = cl.Cluster(binary, n=3, name="wiped-voter")
    c.start()
    p, _ = c.wait_for_primary()
    cl.poll("the group's incarnation", 20 * c.slow, lambda: all(
        c.info(i, "server").get("cluster_incarnation", "0" * 16) != "0" * 16
        for i in range(c.n)))
    lag, wiped = c.backups(p)
    c.kill(lag)
    keys = ["w:%d" % k for k in range(KEYS)]
    with c.client(p, timeout=10 * c.slow) as cl_:
        replies = cl_.pipeline([("SET", k, "v") for k in keys])
    check(all(r == "OK" for r in replies), "SET: %r" % replies[:3])
    log("r%d (laggard) down; %d writes acknowledged by r%d and r%d"
        % (lag, KEYS, p, wiped))
    c.kill(p)
    c.kill(wiped)
    shutil.rmtree(c.data_dir(wiped))
    c.restart(lag, wait=False)
    c.restart(wiped, wait=False)
    log("r%d and r%d down; r%d's data directory emptied; r%d and r%d "
        "restarted" % (p, wiped, wiped, lag, wiped))

    # The two are a majority but must not serve without the writes.
    end = time.monotonic() + 4 * c.slow
    answers = 0
    while time.monotonic() < end:
        for i in (lag, wiped):
            try:
                v = c.command(i, "GET", keys[-1], timeout=1.0)
                answers += 1
                check(v == b"v", "r%d answered GET %s with %r while the "
                      "only full copy was down" % (i, keys[-1], v))
            except (OSError, resp.RespError, resp.ProtocolError):
                pass
        time.sleep(0.1)
    log("while r%d was down: %d answers to GET, none without the write"
        % (p, answers))

    c.restart(p)
    p2, _ = c.wait_for_primary()
    c.wait_converged()
    for i in range(c.n):
        got = cl.read_all(c, i, keys, readonly=True)
        lost = [k for k in keys if got[k] != b"v"]
        check(not lost, "r%d lost %d acknowledged writes: %s"
              % (i, len(lost), lost[:5]))
    check("has an empty data directory but its group already holds data"
          in c.log_text(wiped),
          "the emptied replica did not say why it waited:\n%s"
          % c.log_tail(wiped, 15))
    return ("a voter on an emptied disk did not vote with the laggard; "
            "all %d acknowledged writes on every member once r%d was back "
            "(primary r%d)" % (KEYS, p, p2))


if __name__ == "__main__":
    cl.run_test("wiped_voter", main, budget_s=90)
