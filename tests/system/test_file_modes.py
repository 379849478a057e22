#!/usr/bin/env python3
"""test_file_modes — the data is for the server's user alone.

Issue 17: data files were 0644 and directories 0755, so any local user could
read every value out of the log and the snapshots. Now every directory the
server creates under --data-dir (and the data directory itself) is 0700 and
every file 0600; a data directory found with looser permissions at start is
reported in one WARN line naming it and the fix (chmod 700). Fails on
builds before.

usage: test_file_modes.py [path/to/cohort]
"""

import os
import stat
import sys
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
from cluster import check, log  # noqa: E402


def modes(root):
    """{path: mode} of root and everything under it."""
    out = {root: stat.S_IMODE(os.stat(root).st_mode)}
    for d, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(d, name)
            out[path] = stat.S_IMODE(os.lstat(path).st_mode)
    return out


def body(binary):
    c = cl.Cluster(binary, n=3, name="file-modes",
                   extra_args=["--snapshot-interval-ops", "64"])
    c.start()
    p, _ = c.wait_for_primary()
    with c.client(p) as x:
        for k in range(300):
            check(x.command("SET", "k%d" % k, "v") == "OK", "SET failed")
    c.wait_converged()
    for i in range(c.n):
        # A replica writes its snapshot from a forked child on its own
        # schedule: wait for the file (a slow sanitizer build may still be
        # writing it when the replicas have converged).
        deadline = time.monotonic() + 20 * c.slow
        found = modes(c.data_dir(i))
        while (not any(f.endswith(".snap") for f in found)
               and time.monotonic() < deadline):
            time.sleep(0.05)
            found = modes(c.data_dir(i))
        snaps = [f for f in found if f.endswith(".snap")]
        check(snaps, "replica %d has no snapshot after %.0f s: %s"
              % (i, 20 * c.slow, found))
        bad = {f: "%04o" % m for f, m in found.items()
               if m != (0o700 if os.path.isdir(f) else 0o600)}
        check(not bad, "replica %d: files or directories other users can "
              "read: %s" % (i, bad))
        log("replica %d: %d directories 0700, %d files 0600"
            % (i, sum(os.path.isdir(f) for f in found),
               sum(not os.path.isdir(f) for f in found)))

    b = c.backups(p)[0]
    c.kill(b)
    os.chmod(c.data_dir(b), 0o755)
    c.restart(b)
    lines = [ln for ln in c.log_text(b).splitlines()
             if "WARN" in ln and c.data_dir(b) in ln and "0755" in ln]
    check(len(lines) == 1, "replica %d restarted on a 0755 data directory "
          "without one warning about it:\n%s" % (b, c.log_tail(b)))
    check("chmod 700" in lines[0], "the warning names no fix: %s" % lines[0])
    log(lines[0])
    c.wait_converged()
    return "data 0700/0600 on every replica; a 0755 data dir is warned about"


if __name__ == "__main__":
    cl.run_test("file_modes", body, budget_s=90)
