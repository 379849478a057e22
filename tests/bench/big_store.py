"""big_store — a store of N keys (default 10 million, 100-byte values) on
a fresh 3-replica cluster: memory per key, snapshot durations, a backup's
restart-to-caught-up time, and a new (emptied) backup's catch-up by state
transfer with the client p99 while it runs. Indicative, not a test (never
run by ctest); it needs about 2 GiB of memory and 4 GiB of disk per
10 million keys per replica.

usage: python3 tests/bench/big_store.py build/cohort [N] [--add
       [--add-timeout S] [--interval OPS] [--logs DIR]]

--add (issue 16's "new member" figure): 4 addresses with --voters 3; the
preload goes to the 3 voters, then `cohort add 3` makes replica 3 (empty,
running outside since the start) a learner that catches up by state
transfer and then a voter. It prints the write p99 (16 outstanding, 5 s
windows) before and during, the catch-up time `cohort add` reports, and a
timeline polled every 0.5 s: the primary's snapshot_sent/snapshot_size
for replica 3 (send rate), replica 3's state_transfer: line (receive),
its applied_op (install and log catch-up), and the CPU seconds and bytes
written of the primary and replica 3 over the transfer (from /proc). It
skips the memory, snapshot and restart figures. --add-timeout: `cohort
add --timeout` (default 7200); --interval: every replica's
--snapshot-interval-ops; --logs: copy the replicas' logs there.

Prints one line per figure. The load is `cohort bench --workload read
--keys N` (its preload SETs every key, pipelined, at the primary);
`cohort bench --workload write --conc 16` measures p99 before and during
the transfer, in 5 s windows. Times are wall-clock seconds polled every
50 ms."""
import os
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "system"))
import cluster as cl  # noqa: E402

binary = os.path.abspath(sys.argv[1])
ADD = "--add" in sys.argv[2:]
OPTS = {}  # --add-timeout S, --interval OPS, --logs DIR (with --add)
_rest = []
_args = [a for a in sys.argv[2:] if a != "--add"]
while _args:
    a = _args.pop(0)
    if a.startswith("--"):
        OPTS[a[2:]] = _args.pop(0)
    else:
        _rest.append(a)
N = int(_rest[0]) if _rest else 10_000_000


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def bench(c, i, *args):
    out = subprocess.run([binary, "bench", "--quiet", "--port",
                          str(c.client_ports[i])] + list(args),
                         capture_output=True, text=True, timeout=3600)
    return out.stdout.strip() or out.stderr.strip()


def field(line, name):
    for word in line.split():
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return "?"


class SnapshotWatch(threading.Thread):
    """Polls a member's INFO persistence; records each snapshot's span."""

    def __init__(self, c, i):
        super().__init__(daemon=True)
        self.c, self.i = c, i
        self.spans = []  # (seconds, op of the snapshot)
        self.stop = threading.Event()

    def run(self):
        began = None
        while not self.stop.is_set():
            try:
                inf = self.c.info(self.i, "persistence", timeout=5)
            except Exception:  # noqa: BLE001 - a busy member: poll again
                time.sleep(0.05)
                continue
            busy = inf.get("snapshot_in_progress") == "1"
            now = time.monotonic()
            if busy and began is None:
                began = now
            elif not busy and began is not None:
                self.spans.append((now - began,
                                   int(inf.get("last_snapshot_op", "0"))))
                began = None
            time.sleep(0.05)


def caught_up(c, i, primary):
    try:
        mine = c.info(i, "replication", timeout=5)
        theirs = c.info(primary, "replication", timeout=5)
    except Exception:  # noqa: BLE001 - still starting
        return False
    return (mine.get("role") == "backup" and
            mine.get("applied_op") is not None and
            mine.get("applied_op") == theirs.get("applied_op"))


def proc_cpu_io(pid):
    """(user+system CPU seconds, bytes written to storage) of a process."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    wrote = 0
    try:
        with open("/proc/%d/io" % pid) as f:
            for line in f:
                if line.startswith("write_bytes:"):
                    wrote = int(line.split()[1])
    except OSError:
        pass
    return cpu, wrote


def member_transfer(inf, i):
    """(sent, size) from the primary's member<i> line, or None."""
    line = inf.get("member%d" % i, "")
    kv = dict(w.split("=", 1) for w in line.split(",") if "=" in w)
    if "snapshot_size" in kv:
        return int(kv["snapshot_sent"]), int(kv["snapshot_size"])
    return None


def main_add():
    c = cl.Cluster(binary, n=4, heartbeat_ms=20, suspect_timeout_ms=1000,
                   view_change_timeout_ms=2000, name="bigstore-add",
                   extra_args=["--maxmemory", "0", "--voters", "3"] +
                   (["--snapshot-interval-ops", OPTS["interval"]]
                    if "interval" in OPTS else []))
    c.start()
    new = 3
    try:
        p, _ = c.wait_for_primary()
        t0 = time.monotonic()
        line = bench(c, p, "--workload", "read", "--keys", str(N),
                     "--value-size", "100", "--seconds", "1", "--conc", "128")
        print("load: %d keys of 100 B in %.0f s (preload and 1 s of reads): "
              "%s" % (N, time.monotonic() - t0, line), flush=True)
        c.wait_converged(indices=[0, 1, 2], timeout=600)
        p, _ = c.wait_for_primary()
        snaps = os.path.join(c.data_dir(p), "snapshots")
        if os.path.isdir(snaps):
            for name in sorted(os.listdir(snaps)):
                print("primary r%d snapshot file %s: %d bytes" % (
                    p, name, os.path.getsize(os.path.join(snaps, name))))
        for k in range(2):
            steady = bench(c, p, "--workload", "write", "--conc", "16",
                           "--keys", "100000", "--seconds", "5")
            print("writes at 16 before the add, 5 s window %d: p50 %s us, "
                  "p99 %s us, p999 %s us, %s ops/s" % (
                      k + 1, field(steady, "p50_us"), field(steady, "p99_us"),
                      field(steady, "p999_us"), field(steady, "ops_per_s")),
                  flush=True)
        windows = []
        done = threading.Event()

        def load():
            while not done.is_set():
                t = time.monotonic()
                windows.append((t, bench(c, p, "--workload", "write",
                                         "--conc", "16", "--keys", "100000",
                                         "--seconds", "5")))
        loader = threading.Thread(target=load, daemon=True)
        loader.start()
        time.sleep(1)
        cpu0 = {i: proc_cpu_io(c.pids[i]) for i in (p, new)}
        t0 = time.monotonic()
        cmd = [binary, "add", "--cluster",
               "127.0.0.1:%d" % c.client_ports[p], "--timeout",
               OPTS.get("add-timeout", "7200"),
               str(new)]
        print("command: %s" % " ".join(cmd), flush=True)
        add = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
        timeline = []
        while add.poll() is None:
            now = time.monotonic() - t0
            row = [now, None, None, None, None]
            try:
                row[1] = member_transfer(c.info(p, timeout=5), new)
            except Exception:  # noqa: BLE001 - busy: next poll
                pass
            try:
                mine = c.info(new, timeout=5)
                row[2] = mine.get("state_transfer")
                row[3] = mine.get("applied_op")
                row[4] = mine.get("self_member")
            except Exception:  # noqa: BLE001
                pass
            timeline.append(row)
            time.sleep(0.5)
        took = time.monotonic() - t0
        out = add.stdout.read().strip()
        cpu1 = {i: proc_cpu_io(c.pids[i]) for i in (p, new)}
        done.set()
        loader.join()
        print("cohort add %d: exit %d after %.1f s: %s" % (
            new, add.returncode, took, out.replace("\n", " | ")))
        for i in (p, new):
            print("r%d over the add: %.1f CPU s (%.0f%% of one core), "
                  "%.0f MB written" % (
                      i, cpu1[i][0] - cpu0[i][0],
                      100 * (cpu1[i][0] - cpu0[i][0]) / took,
                      (cpu1[i][1] - cpu0[i][1]) / 1e6))
        last = None
        for row in timeline:
            key = (row[1], row[2], row[4])
            if key != last or row is timeline[-1]:
                print("  t=%6.1f s primary->r%d %s  r%d state_transfer=%s "
                      "applied=%s %s" % (row[0], new, row[1], new, row[2],
                                         row[3], row[4]))
            last = key
        for t, w in windows:
            print("  writes at 16, 5 s window from t=%.1f s: p50 %s us, "
                  "p99 %s us, p999 %s us, %s ops/s" % (
                      t - t0, field(w, "p50_us"), field(w, "p99_us"),
                      field(w, "p999_us"), field(w, "ops_per_s")))
    finally:
        if "logs" in OPTS:
            os.makedirs(OPTS["logs"], exist_ok=True)
            for i in range(4):
                shutil.copy(c.log_path(i), OPTS["logs"])
        try:
            c.finish()
        except cl.TestFailure as e:
            print("stopping the cluster: %s" % str(e).splitlines()[0])
            c.cleanup()


def main():
    c = cl.Cluster(binary, n=3, heartbeat_ms=20, suspect_timeout_ms=1000,
                   view_change_timeout_ms=2000, name="bigstore",
                   extra_args=["--maxmemory", "0"])
    c.start()
    try:
        p, _ = c.wait_for_primary()
        b1, b2 = c.backups(p)
        watch = SnapshotWatch(c, b1)
        watch.start()
        t0 = time.monotonic()
        line = bench(c, p, "--workload", "read", "--keys", str(N),
                     "--value-size", "100", "--seconds", "1", "--conc", "128")
        load_s = time.monotonic() - t0
        print("load: %d keys of 100 B in %.0f s (preload and 1 s of reads): "
              "%s" % (N, load_s, line))
        c.wait_converged(timeout=600)
        time.sleep(2)
        for i in range(3):
            inf = c.info(i, "memory")
            rss = rss_kib(c.pids[i]) * 1024
            print("memory r%d: rss %.0f B/key, used_memory %.0f B/key "
                  "(%s keys)" % (i, rss / N, int(inf["used_memory"]) / N, N))
        watch.stop.set()
        watch.join()
        for span, op in watch.spans[-3:]:
            print("snapshot on backup r%d at op %d: %.1f s" % (b1, op, span))
        print("snapshots seen on r%d during the load: %d" %
              (b1, len(watch.spans)))
        # Restart to caught up: SIGKILL a backup, start it again.
        c.kill(b1)
        t0 = time.monotonic()
        c.restart(b1, timeout=1200)
        serving = time.monotonic() - t0
        cl.poll("r%d caught up" % b1, 1200, lambda: caught_up(c, b1, p),
                pause=0.05)
        print("restart of backup r%d: serving after %.1f s, caught up after "
              "%.1f s" % (b1, serving, time.monotonic() - t0))
        # A new member: the same backup with its data removed, under load.
        steady = bench(c, p, "--workload", "write", "--conc", "16",
                       "--keys", "100000", "--seconds", "10")
        print("writes at 16 before the transfer: p99 %s us, %s ops/s" %
              (field(steady, "p99_us"), field(steady, "ops_per_s")))
        c.kill(b2)
        shutil.rmtree(c.data_dir(b2))
        windows = []
        done = threading.Event()

        def load():
            while not done.is_set():
                windows.append(bench(c, p, "--workload", "write", "--conc",
                                     "16", "--keys", "100000", "--seconds",
                                     "5"))
        t0 = time.monotonic()
        c.restart(b2, timeout=1200, wait=False)
        loader = threading.Thread(target=load, daemon=True)
        loader.start()
        cl.poll("r%d caught up by state transfer" % b2, 1800,
                lambda: caught_up(c, b2, p), pause=0.05)
        took = time.monotonic() - t0
        done.set()
        loader.join()
        print("new backup r%d (data removed): caught up by state transfer "
              "after %.1f s" % (b2, took))
        for k, w in enumerate(windows):
            print("  writes at 16, 5 s window %d during/after it: p99 %s us, "
                  "%s ops/s" % (k + 1, field(w, "p99_us"),
                                field(w, "ops_per_s")))
    finally:
        c.finish()


if ADD:
    main_add()
else:
    main()
