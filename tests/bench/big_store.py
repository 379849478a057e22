"""big_store — a store of N keys (default 10 million, 100-byte values) on
a fresh 3-replica cluster: memory per key, snapshot durations, a backup's
restart-to-caught-up time, and a new (emptied) backup's catch-up by state
transfer with the client p99 while it runs. Indicative, not a test (never
run by ctest); it needs about 2 GiB of memory and 4 GiB of disk per
10 million keys per replica.

usage: python3 tests/bench/big_store.py build/cohort [N]

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
N = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000_000


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


main()
