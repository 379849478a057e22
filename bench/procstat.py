#!/usr/bin/env python3
"""bench/procstat.py — CPU time and peak memory of server processes.

Python 3 standard library only; reads /proc.

  procstat.py snap PID...
      One line per process, now:
      procstat pid=.. comm=.. cpu_s=.. rss_kb=.. hwm_kb=..

  procstat.py watch [--interval S] PID...
      Samples until SIGINT/SIGTERM or until every process has exited, then
      prints one line per process with the CPU seconds used while watching
      and the peaks, and a total line.

  procstat.py run [--interval S] --pids PID,PID,... -- COMMAND ARGS...
      Runs COMMAND (a load generator: zk_bench, etcd_bench, cohort bench),
      passes its stdout through, samples the processes meanwhile, and after
      it exits prints one line per process and a total line:

      procstat pid=.. comm=.. cpu_s=.. cpu_s_run=.. cpu_s_per_kop=..
               cpu_ms_per_kop=.. hwm_kb=.. rss_max_kb=.. alive=1
      procstat total cpu_s=.. cpu_s_per_kop=.. cpu_ms_per_kop=.. hwm_kb=.. ops=..

      cpu_s is the CPU used during the measured window: the last `secs`
      seconds before the result line appeared (`bench ... ops=N secs=S ...`),
      interpolated between samples, so preload and warm-up are left out
      (the tools print the line right after the window closes and their
      requests in flight drain); cpu_s_run is the whole run's.
      cpu_s_per_kop = cpu_s / (ops / 1000): CPU seconds per 1,000 measured
      operations; cpu_ms_per_kop is the same in milliseconds.
      A process that dies during the run (failover) counts up to its last
      sample. The exit status is COMMAND's.

CPU is utime+stime of the process (all its threads) plus cutime+cstime of
children it has waited for (Redis's AOF-rewrite child), from
/proc/PID/stat, in clock ticks converted to seconds. Memory: hwm_kb is
VmHWM from /proc/PID/status (the peak resident set over the process's
life, for a JVM that includes the heap it touched); rss_max_kb is the
largest VmRSS seen while sampling.
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time

TICK = os.sysconf("SC_CLK_TCK")


def read_stat(pid):
    """(comm, cpu seconds incl. waited-for children) or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    # comm is in parentheses and may contain spaces.
    lpar, rpar = data.index("("), data.rindex(")")
    comm = data[lpar + 1 : rpar]
    fields = data[rpar + 2 :].split()
    # fields[0] is state (field 3); utime is field 14 -> index 11.
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return comm, (utime + stime + cutime + cstime) / TICK


def read_mem(pid):
    """(VmRSS kB, VmHWM kB) or (0, 0)."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


class Proc:
    def __init__(self, pid):
        self.pid = pid
        self.comm = "?"
        self.samples = []  # (monotonic time, cpu seconds)
        self.hwm = 0
        self.rss_max = 0
        self.alive = True
        self.lock = threading.Lock()

    def sample(self):
        """Take a sample now; returns its time. Thread-safe: the sampler
        thread and the main thread both sample, and samples stay ordered."""
        with self.lock:
            now = time.monotonic()
            if not self.alive:
                return now
            st = read_stat(self.pid)
            if st is None:
                self.alive = False
                return now
            self.comm, cpu = st
            rss, hwm = read_mem(self.pid)
            self.hwm = max(self.hwm, hwm)
            self.rss_max = max(self.rss_max, rss)
            self.samples.append((now, cpu))
            return now

    def cpu_at(self, t):
        """CPU seconds at time t, interpolated; clamped to the samples."""
        s = self.samples
        if not s:
            return 0.0
        if t <= s[0][0]:
            return s[0][1]
        if t >= s[-1][0]:
            return s[-1][1]
        lo, hi = 0, len(s) - 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if s[mid][0] <= t:
                lo = mid
            else:
                hi = mid
        (t0, c0), (t1, c1) = s[lo], s[hi]
        return c0 + (c1 - c0) * (t - t0) / (t1 - t0) if t1 > t0 else c1

    def cpu_run(self):
        return self.samples[-1][1] - self.samples[0][1] if self.samples else 0.0


def parse_pids(items):
    pids = []
    for item in items:
        for p in re.split(r"[,\s]+", item.strip()):
            if p:
                if not p.isdigit():
                    sys.exit(f"procstat.py: not a pid: {p!r}")
                pids.append(int(p))
    if not pids:
        sys.exit("procstat.py: no pids given")
    return pids


def cmd_snap(args):
    for pid in parse_pids(args):
        st = read_stat(pid)
        if st is None:
            print(f"procstat pid={pid} alive=0")
            continue
        rss, hwm = read_mem(pid)
        print(f"procstat pid={pid} comm={st[0]} cpu_s={st[1]:.2f} rss_kb={rss} hwm_kb={hwm}")


def sampler(procs, interval, stop):
    while not stop.is_set():
        for p in procs:
            p.sample()
        if not any(p.alive for p in procs):
            break
        stop.wait(interval)


def fmt_kop(cpu, ops):
    """cpu_s_per_kop=.. cpu_ms_per_kop=.. for cpu seconds over ops."""
    if not ops:
        return "cpu_s_per_kop=nan cpu_ms_per_kop=nan"
    return f"cpu_s_per_kop={cpu * 1e3 / ops:.6f} cpu_ms_per_kop={cpu * 1e6 / ops:.3f}"


def cmd_watch(args):
    interval = 0.2
    if args[:1] == ["--interval"]:
        interval, args = float(args[1]), args[2:]
    procs = [Proc(p) for p in parse_pids(args)]
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    t = threading.Thread(target=sampler, args=(procs, interval, stop), daemon=True)
    t.start()
    while t.is_alive() and not stop.is_set():
        t.join(0.2)
    stop.set()
    t.join()
    for p in procs:
        p.sample()
    total = 0.0
    for p in procs:
        total += p.cpu_run()
        print(f"procstat pid={p.pid} comm={p.comm} cpu_s={p.cpu_run():.3f} hwm_kb={p.hwm} "
              f"rss_max_kb={p.rss_max} alive={int(p.alive)}")
    print(f"procstat total cpu_s={total:.3f} hwm_kb={sum(p.hwm for p in procs)}")


def cmd_run(args):
    interval = 0.1
    pid_args = []
    while args and args[0] != "--":
        if args[0] == "--interval":
            interval, args = float(args[1]), args[2:]
        elif args[0] == "--pids":
            pid_args.append(args[1])
            args = args[2:]
        else:
            sys.exit(f"procstat.py run: unexpected {args[0]!r} (usage: run [--interval S] --pids P,P -- CMD...)")
    if not args or len(args) < 2:
        sys.exit("procstat.py run: missing -- COMMAND")
    command = args[1:]
    procs = [Proc(p) for p in parse_pids(pid_args)]
    stop = threading.Event()
    t = threading.Thread(target=sampler, args=(procs, interval, stop), daemon=True)
    t.start()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    result = None
    result_time = None
    for line in child.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        if line.startswith("bench "):
            result = line
            result_time = time.monotonic()
            # A sample right at the end of the window.
            for p in procs:
                p.sample()
    rc = child.wait()
    stop.set()
    t.join()

    ops, secs = 0, 0.0
    if result:
        kv = dict(f.split("=", 1) for f in result.split()[1:] if "=" in f)
        ops = int(kv.get("ops", 0))
        secs = float(kv.get("secs", 0))
    total_cpu = 0.0
    for p in procs:
        if result_time is not None and secs > 0:
            cpu = p.cpu_at(result_time) - p.cpu_at(result_time - secs)
        else:
            cpu = p.cpu_run()
        total_cpu += cpu
        print(f"procstat pid={p.pid} comm={p.comm} cpu_s={cpu:.3f} cpu_s_run={p.cpu_run():.3f} "
              f"{fmt_kop(cpu, ops)} hwm_kb={p.hwm} rss_max_kb={p.rss_max} "
              f"alive={int(p.alive)}")
    print(f"procstat total cpu_s={total_cpu:.3f} {fmt_kop(total_cpu, ops)} "
          f"hwm_kb={sum(p.hwm for p in procs)} ops={ops}")
    sys.stdout.flush()
    return rc


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(sys.argv) >= 2 else 2
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "snap":
        cmd_snap(args)
        return 0
    if mode == "watch":
        cmd_watch(args)
        return 0
    if mode == "run":
        return cmd_run(args)
    sys.exit(f"procstat.py: unknown mode {mode!r} (snap, watch, run)")


if __name__ == "__main__":
    sys.exit(main())
