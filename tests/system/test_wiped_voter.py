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

Then a partial restore: a backup of the group is restored into one new
member's directory only, and the three start together. The two empty ones
hear the restored one's incarnation and count as damaged, so no group
forms (the restored one alone is no majority) and nobody serves an empty
store; once the backup is restored into the other two as well, as the
procedure says, the group serves its data.

usage: test_wiped_voter.py [path/to/cohort]
"""

import os
import shutil
import subprocess
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
    summary = ("a voter on an emptied disk did not vote with the laggard; "
               "all %d acknowledged writes on every member once r%d was back "
               "(primary r%d)" % (KEYS, p, p2))
    return summary + "; " + partial_restore(binary, c, keys)


def partial_restore(binary, old, keys):
    p, _ = old.wait_for_primary()
    path = os.path.join(old.dir, "group.backup")
    out = subprocess.run([binary, "backup", "127.0.0.1:%d"
                          % old.client_ports[p], path],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, timeout=60 * old.slow)
    check(out.returncode == 0, "cohort backup: %r" % out.stderr)
    old.stop_all()
    new = cl.Cluster(binary, n=3, name="partial-restore")
    # A first start picks the ports; then one restored directory and two
    # empty ones.
    new.start()
    new.stop_all()
    for i in range(new.n):
        shutil.rmtree(new.data_dir(i))
    out = subprocess.run([binary, "restore", path, new.data_dir(0)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, timeout=60 * new.slow)
    check(out.returncode == 0, "cohort restore: %r" % out.stderr)
    for i in range(new.n):  # together, as after a restore
        new.start_replica(i)
    cl.poll("the empty members heard the restored one", 20 * new.slow,
            lambda: all("has an empty data directory but its group already "
                        "holds data" in new.log_text(i) for i in (1, 2)))
    # The restored member alone has the data, and the two empty ones count
    # as damaged: no group forms, and none serves an empty store.
    time.sleep(3 * new.slow)
    for i in range(new.n):
        role = new.info(i).get("role")
        check(role not in ("primary", "backup"),
              "r%d serves (%s) after restoring one member of three" % (i, role))
    log("one member restored, two empty: no group formed; restoring the "
        "others as the procedure says")
    new.stop_all()
    for i in (1, 2):
        shutil.rmtree(new.data_dir(i))
        out = subprocess.run([binary, "restore", path, new.data_dir(i)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, timeout=60 * new.slow)
        check(out.returncode == 0, "cohort restore: %r" % out.stderr)
    for i in range(new.n):
        new.start_replica(i)
    new.wait_for_primary()
    new.wait_converged()
    got = cl.read_all(new, 1, keys, readonly=True)
    lost = [k for k in keys if got[k] != b"v"]
    check(not lost, "after the partial restore r1 lacks %d keys" % len(lost))
    new.cleanup()
    return ("a partial restore: no group formed with two empty members; "
            "restored into all, it served the backup's %d keys" % len(keys))


if __name__ == "__main__":
    cl.run_test("wiped_voter", main, budget_s=90)
