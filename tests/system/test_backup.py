#!/usr/bin/env python3
"""test_backup — `cohort backup` exports a consistent snapshot from a live
cluster and `cohort restore` starts a new cluster from it (issue 17, item 7).

  1. A 3-replica cluster (snapshots every 300 ops, so its own snapshots and
     log compaction run during the test) gets ~3,000 keys: MSETs, binary
     values, overwrites, DELs and INCRs; the test keeps the expected state.
  2. While a writer SETs live:0, live:1, ... one at a time (each
     acknowledged before the next), `cohort backup` is pointed at a
     *backup* replica's address: it must find the primary, export, copy
     and verify the file, and say which op it holds.
  3. A corrupted copy of the file is refused by `cohort restore`, naming
     the file; a restore into a non-empty directory is refused.
  4. The file is restored into three data directories whose parents do
     not exist yet (restore makes them, mode 0700) and a new cluster
     (other ports, another cluster id) starts on them. Every key
     written before the backup compares equal on every replica (MGET
     after READONLY: each replica's own store); of the live:N keys a
     prefix live:0..live:k is present and nothing after it (a consistent
     cut, never a torn one), and k covers every SET acknowledged before
     the backup began; DBSIZE is exactly that.
  5. The new cluster takes writes.

Between 2 and 3, overlapping backups (overlapping()): a backup stays
readable while another starts and finishes after it, and four `cohort
backup` runs started at once all succeed.

usage: test_backup.py [path/to/cohort]
"""

import os
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402


def run(binary, *args, timeout=60):
    pre = os.environ.get("COHORT_TEST_WRAP", "").split()
    p = subprocess.run(pre + [binary] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True,
                       stdin=subprocess.DEVNULL, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def fill(c, p):
    """Write the first state through primary p; return {key: value}."""
    expected = {}
    with c.client(p, timeout=10) as cli:
        for batch in range(30):
            args = []
            for k in range(100):
                key = "k:%d:%d" % (batch, k)
                val = ("v%d-" % (batch * 100 + k)).encode() * (1 + k % 7)
                args += [key, val]
                expected[key] = val
            check(cli.command("MSET", *args) == "OK", "MSET failed")
        binval = bytes(range(256)) * 4
        check(cli.command("SET", "bin", binval) == "OK", "SET bin")
        expected["bin"] = binval
        for k in range(0, 100, 3):
            key = "k:1:%d" % k
            check(cli.command("DEL", key) == 1, "DEL %s" % key)
            del expected[key]
        for k in range(50):
            check(cli.command("SET", "k:2:%d" % k, b"over%d" % k) == "OK",
                  "overwrite")
            expected["k:2:%d" % k] = b"over%d" % k
        for _ in range(25):
            cli.command("INCR", "counter")
        expected["counter"] = b"25"
    return expected


class LiveWriter(threading.Thread):
    """SETs live:0, live:1, ... one at a time through the primary."""

    def __init__(self, c, p):
        super().__init__(daemon=True)
        self.c, self.p = c, p
        self.acked = 0  # live:0 .. live:acked-1 were acknowledged
        self.stop = threading.Event()
        self.error = None

    def run(self):
        try:
            with self.c.client(self.p, timeout=10) as cli:
                while not self.stop.is_set():
                    n = self.acked
                    r = cli.command("SET", "live:%d" % n, "L%d" % n)
                    if r != "OK":
                        raise cl.TestFailure("SET live:%d: %r" % (n, r))
                    self.acked = n + 1
        except Exception as e:  # reported by the main thread
            self.error = e


def check_restore_refusals(binary, path, tmp):
    bad = os.path.join(tmp, "corrupt.snap")
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[len(data) // 2] ^= 0x40
    with open(bad, "wb") as f:
        f.write(data)
    rc, out, err = run(binary, "restore", bad, os.path.join(tmp, "x"))
    check(rc == 1 and "corrupt.snap" in err,
          "restore of a corrupted backup: rc %d, %r %r" % (rc, out, err))
    check(not os.path.exists(os.path.join(tmp, "x")),
          "a refused restore created its data directory")
    full = os.path.join(tmp, "full")
    os.makedirs(full)
    open(os.path.join(full, "meta"), "w").close()
    rc, out, err = run(binary, "restore", path, full)
    check(rc == 1 and "not empty" in err,
          "restore into a non-empty directory: rc %d, %r" % (rc, err))
    log("restore refused a corrupted file (%s) and a used directory"
        % err.strip()[:160])


def compare(new, expected, live_acked_before):
    """Every replica of the new cluster holds expected plus a prefix of the
    live keys that covers live_acked_before."""
    keys = sorted(expected)
    live_max = None
    for i in range(new.n):
        got = cl.read_all(new, i, keys, readonly=True)
        wrong = [k for k in keys if got[k] != expected[k]]
        check(not wrong, "replica %d of the restored cluster: %d keys differ, "
              "e.g. %s: %r != %r" % (i, len(wrong), wrong[:1],
                                     got[wrong[0]] if wrong else None,
                                     expected[wrong[0]] if wrong else None))
        probe = ["live:%d" % n for n in range(live_acked_before + 5000)]
        lv = cl.read_all(new, i, probe, readonly=True)
        present = [n for n in range(len(probe)) if lv[probe[n]] is not None]
        k = len(present)
        check(present == list(range(k)),
              "replica %d: live keys are not a prefix: %s" % (i, present[:20]))
        check(all(lv["live:%d" % n] == b"L%d" % n for n in range(k)),
              "replica %d: a live key has the wrong value" % i)
        check(k >= live_acked_before,
              "replica %d: live:0..%d acknowledged before the backup, only "
              "%d restored" % (i, live_acked_before - 1, k))
        with new.client(i) as cli:
            cli.command("READONLY")
            size = cli.command("DBSIZE")
        # the store also holds __probe__ from the first cluster's start
        check(size == len(expected) + k + 1,
              "replica %d: DBSIZE %r, expected %d" %
              (i, size, len(expected) + k + 1))
        check(live_max is None or live_max == k,
              "replicas disagree on the live prefix: %r and %d" % (live_max, k))
        live_max = k
    return live_max


def backup_status(cli, *args):
    reply = cli.command("COHORT.BACKUP", "STATUS", *args)
    return {reply[i].decode(): reply[i + 1].decode()
            for i in range(0, len(reply), 2)}


def overlapping(binary, c, p):
    """Backups that overlap. (a) A backup copied by one client stays
    readable when another client's backup starts and finishes after it
    (the primary keeps it as previous.backup while it is read): READ and
    STATUS of its op still answer. (b) Four `cohort backup` runs started
    at once all succeed, each with a whole file: one that finds another
    running waits for it and starts its own after it."""
    with c.client(p, timeout=10) as cli:
        first = cli.command("COHORT.BACKUP", "START")
        deadline = time.monotonic() + 20 * c.slow
        while (backup_status(cli)["state"] == "running"
               and time.monotonic() < deadline):
            time.sleep(0.02)
        check(backup_status(cli)["state"] == "done", "backup of op %d: %r"
              % (first, backup_status(cli)))
        head = cli.command("COHORT.BACKUP", "READ", str(first), "0", "64")
        check(cli.command("SET", "overlap", "1") == "OK", "SET overlap")
        later = os.path.join(c.dir, "later.backup")
        rc, out, err = run(binary, "backup",
                           "127.0.0.1:%d" % c.client_ports[p], later)
        check(rc == 0, "a backup after another's: rc %d %r %r"
              % (rc, out, err))
        latest = backup_status(cli)
        check(int(latest["op"]) > first, "the later backup is of op %s, "
              "not after %d" % (latest["op"], first))
        again = cli.command("COHORT.BACKUP", "READ", str(first), "0", "64")
        check(isinstance(again, bytes) and again == head,
              "the first client's backup (op %d) was not readable once a "
              "later one finished: %r" % (first, again))
        st = backup_status(cli, str(first))
        check(st["state"] == "done" and int(st["op"]) == first and
              st["path"].endswith("previous.backup"),
              "STATUS %d: %r" % (first, st))
        log("backup of op %d still read after the backup of op %s: %s"
            % (first, latest["op"], st["path"]))
        try:
            gone = cli.command("COHORT.BACKUP", "READ", str(first - 1), "0",
                               "1")
        except resp.RespError as e:
            gone = e
        check(isinstance(gone, resp.RespError) and
              "no finished backup of op" in str(gone),
              "READ of an op with no backup: %r" % gone)
    pre = os.environ.get("COHORT_TEST_WRAP", "").split()
    for round_ in range(2):
        procs = []
        for k in range(4):
            path = os.path.join(c.dir, "overlap-%d-%d.backup" % (round_, k))
            procs.append((path, subprocess.Popen(
                pre + [binary, "backup", "127.0.0.1:%d" % c.client_ports[p],
                       path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL, text=True)))
        waited = 0
        for path, proc in procs:
            out, err = proc.communicate(timeout=120 * c.slow)
            check(proc.returncode == 0 and os.path.exists(path),
                  "overlapping backup %s: rc %d %r %r"
                  % (path, proc.returncode, out, err))
            waited += "waiting for it to finish" in err
        log("round %d: 4 overlapping backups written (%d waited for "
            "another)" % (round_, waited))


def body(binary):
    old = cl.Cluster(binary, name="backup-old",
                     extra_args=["--snapshot-interval-ops", "300"])
    old.start()
    p, _ = old.wait_for_primary()
    expected = fill(old, p)
    log("wrote %d keys through primary %d" % (len(expected), p))
    writer = LiveWriter(old, p)
    writer.start()
    deadline = time.monotonic() + 10 * old.slow
    while writer.acked < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    acked_before = writer.acked
    check(acked_before >= 20 and writer.error is None,
          "the live writer made no progress: %r" % writer.error)
    other = [i for i in range(old.n) if i != p][0]
    path = os.path.join(old.dir, "cluster.backup")
    rc, out, err = run(binary, "backup", "127.0.0.1:%d" % old.client_ports[other],
                       path)
    writer.stop.set()
    writer.join(10)
    log("backup: %r %r" % (out[-2000:], err[-500:]))
    check(rc == 0, "cohort backup exited %d: %r %r" % (rc, out, err))
    check(writer.error is None, "live writer: %r" % writer.error)
    check(os.path.exists(path) and not os.path.exists(path + ".tmp"),
          "backup file missing, or its .tmp left behind")
    check("op " in out and path in out, "backup's report: %r" % out)
    log("backup from replica %d (backup): %s" % (other, out.strip()))
    check("backup of op" in old.log_text(p)
          and "backup of op" not in old.log_text(other),
          "the backup was not taken by the primary (replica %d)" % p)
    started = [line for line in old.log_text(p).splitlines()
               if "started into" in line]
    log("the primary's backup: %s" % started)
    # A second backup on the quiet cluster, once no snapshot of its own is
    # being written: the store's slicer is free, so a thread writes it from
    # slices of the store (not a forked child), and `cohort backup` checks
    # the file it copies.
    deadline = time.monotonic() + 20 * old.slow
    while (old.info(p, "persistence")["snapshot_in_progress"] != "0"
           and time.monotonic() < deadline):
        time.sleep(0.05)
    path2 = os.path.join(old.dir, "quiet.backup")
    rc, out, err = run(binary, "backup",
                       "127.0.0.1:%d" % old.client_ports[p], path2)
    check(rc == 0 and os.path.exists(path2), "second backup: rc %d %r %r"
          % (rc, out, err))
    started = [line for line in old.log_text(p).splitlines()
               if "started into" in line]
    log("after the second backup: %s" % started[-1:])
    check(len(started) == 2 and
          "written by a thread from slices of the store" in started[-1],
          "the quiet cluster's backup was not written by the snapshot "
          "thread: %r" % started)
    overlapping(binary, old, p)
    rc, out, err = run(binary, "backup", "127.0.0.1:1", path + ".2")
    check(rc == 1 and "127.0.0.1:1" in err,
          "backup from a closed port: rc %d, %r" % (rc, err))

    new = cl.Cluster(binary, name="backup-new")
    check_restore_refusals(binary, path, new.dir)
    # Restored into directories whose parents do not exist yet: restore
    # makes them, mode 0700, as `cohort server` does for --data-dir.
    nested = os.path.join(new.dir, "srv", "cohort")
    new.data_dir = lambda i: os.path.join(nested, "r%d" % i)
    for i in range(new.n):
        rc, out, err = run(binary, "restore", path, new.data_dir(i))
        check(rc == 0 and "restored" in out,
              "restore into %s: rc %d %r %r" % (new.data_dir(i), rc, out, err))
    for d in (os.path.dirname(nested), nested, new.data_dir(0)):
        mode = os.stat(d).st_mode & 0o777
        check(mode == 0o700, "restore made %s with mode %o, want 700"
              % (d, mode))
    new.start()
    new.wait_for_primary(probe=False)
    new.wait_converged()
    k = compare(new, expected, acked_before)
    p2, _ = new.wait_for_primary()  # a SET through the new primary
    check(new.command(p2, "SET", "after", "restore") == "OK", "SET after")
    check(new.command(p2, "GET", "counter") == b"25", "GET counter")
    return ("%d keys and a live prefix of %d (of %d acknowledged while the "
            "backup ran) restored into a new cluster, every replica equal"
            % (len(expected), k, writer.acked))


if __name__ == "__main__":
    cl.run_test("backup", body, budget_s=120)
