#!/usr/bin/env python3
"""test_data_dir_lock — one data directory, one process.

A second `cohort server` pointed at a live replica's --data-dir (same
--cluster-id, its own ports, so nothing else stops it) must refuse to start
with one log line that names the process holding the directory (its PID)
and the fix, and leave the live replica and its data alone. The lock dies
with its holder: after SIGKILL the replica restarts on the same directory,
and a stale lock file (the dead process's PID still in it) does not stop
it.

A copy of another replica's directory started under this replica's --id
is refused too: the directory's identity file names its replica.

Before the data-directory lock, the intruder started and ran on the live
replica's files (issue 11, item 4).

usage: test_data_dir_lock.py [path/to/cohort]
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


def intruder_args(c, i, ports, cluster_id):
    """Replica i's identity and data dir, but ports of its own."""
    n = c.n
    peers = ",".join("%s:%d" % (cl.HOST, p) for p in ports[n:])
    clients = ",".join("%s:%d" % (cl.HOST, p) for p in ports[:n])
    return [c.binary, "server", "--id", str(i), "--peers", peers,
            "--clients", clients, "--data-dir", c.data_dir(i),
            "--cluster-id", cluster_id] + c.timing


def run_intruder(c, i, cluster_id):
    """Start the intruder; return (exit code or None if it started serving,
    its output). It either exits or answers PING on its client port."""
    ports = cl.pick_ports(2 * c.n)
    args = intruder_args(c, i, ports, cluster_id)
    log("intruder: %s" % " ".join(args[1:]))
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         preexec_fn=cl._pdeathsig, close_fds=True)
    deadline = time.monotonic() + 20 * c.slow
    code = None
    try:
        while time.monotonic() < deadline:
            code = p.poll()
            if code is not None:
                break
            try:
                with resp.connect(ports[i], timeout=1.0) as conn:
                    conn.send_raw(resp.encode_command("PING"))
                    conn.read_reply()
                    break  # it runs on the live replica's files
            except (OSError, resp.ProtocolError):
                pass
            time.sleep(0.02)
    finally:
        if p.poll() is None:
            p.kill()
        out = p.communicate(timeout=10)[0].decode("utf-8", "replace")
    return code, out


def check_refusal(c, i, code, out, holder_pid):
    lines = [ln for ln in out.splitlines() if ln.strip()]
    check(code is not None,
          "a second server on replica %d's data dir started and served "
          "(it should refuse):\n%s" % (i, out))
    check(code != 0, "the second server exited 0:\n%s" % out)
    check(len(lines) == 1,
          "the refusal should be one line, got %d:\n%s" % (len(lines), out))
    line = lines[0]
    for want in (str(holder_pid), c.data_dir(i), "ERROR"):
        check(want in line, "the refusal does not name %r: %s" % (want, line))
    check("stop" in line or "--data-dir" in line,
          "the refusal does not say what to do: %s" % line)
    log("refused (exit %d): %s" % (code, line))
    return line


def body(binary):
    c = cl.Cluster(binary, n=3, name="dirlock")
    c.start()
    p, _ = c.wait_for_primary()
    b = [i for i in range(c.n) if i != p][0]
    cluster_id = c.info(b, "server")["cluster_id"]
    check(c.command(p, "SET", "before", "1") == "OK", "SET before failed")

    # 1. A second process on a live backup's directory is refused.
    code, out = run_intruder(c, b, cluster_id)
    check_refusal(c, b, code, out, c.pids[b])
    lock_path = os.path.join(c.data_dir(b), "LOCK")
    with open(lock_path) as f:
        check(f.read().strip() == str(c.pids[b]),
              "%s should hold the PID %d" % (lock_path, c.pids[b]))

    # 2. The live replica goes on, untouched.
    check(c.alive(b), "replica %d died:\n%s" % (b, c.log_tail(b)))
    check(c.command(p, "SET", "after", "2") == "OK", "SET after failed")
    c.wait_converged()

    # 3. And on the primary's directory too.
    code, out = run_intruder(c, p, cluster_id)
    check_refusal(c, p, code, out, c.pids[p])

    # 4. The lock dies with its holder: SIGKILL, then restart on the same
    # directory with the dead PID still written in the lock file.
    dead = c.pids[b]
    c.kill(b)
    with open(lock_path) as f:
        check(f.read().strip() == str(dead), "lock file changed on SIGKILL")
    c.restart(b)
    c.wait_converged()
    with open(lock_path) as f:
        check(f.read().strip() == str(c.pids[b]),
              "the restarted replica did not write its PID into %s"
              % lock_path)
    vals = cl.read_all(c, b, ["before", "after"], readonly=True)
    check(vals == {"before": b"1", "after": b"2"},
          "replica %d's store after restart: %r" % (b, vals))

    # 5. A copy of another replica's directory, started as replica b (an
    # operator "repairing" b from a healthy member), is refused by the
    # directory's identity file, naming the id it belongs to.
    o = [i for i in range(c.n) if i not in (p, b)][0]
    copy = os.path.join(c.dir, "copy-of-%d" % o)
    shutil.copytree(c.data_dir(o), copy,
                    ignore=shutil.ignore_patterns("LOCK", "wal"))
    with open(os.path.join(copy, "identity")) as f:
        check(f.read() == "cohort data directory\nreplica %d\n" % o,
              "replica %d's identity file is not its own" % o)
    c.kill(b)
    args = c.args(b)
    args[args.index("--data-dir") + 1] = copy
    r = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=30 * c.slow)
    out = (r.stdout + r.stderr).decode("utf-8", "replace")
    check(r.returncode != 0 and "holds replica %d's state" % o in out
          and "--id %d" % o in out,
          "replica %d started on a copy of replica %d's directory "
          "(rc %d):\n%s" % (b, o, r.returncode, out))
    log(out.strip().splitlines()[-1])
    c.restart(b)
    c.wait_converged()
    return ("a second server on a live data dir is refused naming the "
            "holder's PID; restart after SIGKILL works; a copy of another "
            "replica's directory is refused")


if __name__ == "__main__":
    cl.run_test("data_dir_lock", body, budget_s=90)
