#!/usr/bin/env python3
"""report.py — turn bench/run.sh's raw.txt into bench/RESULTS.md.

    python3 bench/report.py bench/results/raw.txt -o bench/RESULTS.md
        [--profile bench/results/profile.txt]

Besides raw.txt it copies two hand-written files: bench/analysis.md (the
section "Where the time goes") and, at the end, bench/indicative.md
(measurements made with other tools, each dated).

raw.txt lines (written by bench/run.sh):
    meta <key> <text>                       machine, versions, command, ...
    bench k=v ... tag=T run=N elapsed_s=E client_cpu_s=C
                                            a load generator's result line
    procstat pid=.. comm=.. cpu_s=.. cpu_s_per_kop=.. hwm_kb=..
             rss_max_kb=.. alive=.. run=N   one server process in run N
    procstat total ... run=N
    snapshots run=N count=C                 snapshots taken during run N
    machine_cpu run=N busy_pct=.. iowait_pct=..
    snapconfig system=S mode=steady|loaded interval=I
    fail run=N tag=T system=S reason=..     a run without a result line
    skip system=S reason=..                 a system that could not run
    stall_config threads=T transfers=N rejuvenations=N reconfigs=N
    stall cmd=C round=R gap_ms=.. call_ms=.. took_ms=.. failed=..
    stall_summary cmd=C rounds=N ...        the stall stage
                                            (tests/system/stall_probe.py
                                            --raw; meta stall_* lines say
                                            when and how it ran)

Python 3 standard library only.
"""
import argparse
import os
import statistics
import sys

SYSTEMS = ["cohort", "etcd", "zookeeper", "redis"]
PEERS = ["etcd", "zookeeper"]

# cohort only: where the load goes (the second table of issue 16). Each
# workload's runs: (tag, label); the first is the main tables' run through
# all members.
WHERE = [
    ("Writes, 100 B, 1 outstanding", [
        ("write-100-c1", "all members (the one connection: the first member)"),
        ("primary-write-100-c1", "primary only"),
        ("backup-write-100-c1", "one backup")]),
    ("Writes, 100 B, 16 outstanding", [
        ("write-100-c16", "all members"),
        ("primary-write-100-c16", "primary only")]),
    ("Writes, 100 B, 128 outstanding", [
        ("write-100-c128", "all members"),
        ("primary-write-100-c128", "primary only")]),
    ("Linearizable reads, 128 outstanding", [
        ("read-c128", "all members"),
        ("primary-read-c128", "primary only")]),
]

TABLES = []
for _v, _vname in ((100, "100-byte"), (1024, "1 KiB")):
    for _c in (1, 16, 128, 1000):
        TABLES.append((f"write-{_v}-c{_c}",
                       f"Writes, {_vname} values, {_c} outstanding"))
TABLES += [
    ("write-64k-c16", "Writes, 64 KiB values (1,000 keys), 16 outstanding"),
    ("write-1m-c16", "Writes, 1 MiB values (100 keys), 16 outstanding"),
    ("read-c128", "Linearizable reads, 128 outstanding"),
    ("lread-c128", "Local reads (served by the member connected to; "
     "may be stale), 128 outstanding"),
    ("mixed-c128", "Mixed: 90% linearizable reads, 10% writes, 128 outstanding"),
]


def kv(fields):
    out = {}
    for f in fields:
        if "=" in f:
            k, v = f.split("=", 1)
            out[k] = v
    return out


def num(x, default=None):
    try:
        return float(x)
    except (TypeError, ValueError):
        return default



def ratio_cells(a, b):
    """run a ÷ run b: ops/s, p50..max, an empty errors cell, CPU per 1k ops
    mean (max); the cells of a ratio row up to CPU."""
    am, ax = a.cpu_per_kop()
    bm, bx = b.cpu_per_kop()
    lat = " | ".join(fratio(a.g(k), b.g(k)) for k in
                     ("p50_us", "p90_us", "p99_us", "p999_us", "max_us"))
    return (f"{fratio(a.g('ops_per_s'), b.g('ops_per_s'))} | {lat} | | "
            f"{fratio(am, bm)} ({fratio(ax, bx)})")

class Run:
    def __init__(self, fields):
        self.f = fields
        self.system = fields.get("system", "?")
        self.tag = fields.get("tag", "?")
        self.id = fields.get("run", "?")
        self.procs = []
        self.snapshots = None
        self.busy = None
        self.iowait = None

    def g(self, k):
        return num(self.f.get(k))

    def cpu_per_kop(self):
        """(mean, max) CPU seconds per 1000 measured ops per server process."""
        ops = self.g("ops")
        if not ops or not self.procs:
            return None, None
        per = [num(p.get("cpu_s"), 0.0) * 1000.0 / ops for p in self.procs]
        return sum(per) / len(per), max(per)

    def server_cores(self):
        secs = self.g("secs")
        if not secs or not self.procs:
            return None
        return sum(num(p.get("cpu_s"), 0.0) for p in self.procs) / secs

    def client_cores(self):
        e, c = self.g("elapsed_s"), self.g("client_cpu_s")
        return c / e if e and c is not None else None

    def rss_mib(self):
        vals = [num(p.get("rss_max_kb"), 0.0) for p in self.procs]
        return max(vals) / 1024.0 if vals else None


class MedianRun:
    """The median of several runs of one tag (the snapshot pairs)."""

    def __init__(self, runs):
        self.runs = runs
        snaps = [r.snapshots for r in runs if r.snapshots is not None]
        self.snapshots = int(statistics.median(snaps)) if snaps else None

    def g(self, k):
        vals = [r.g(k) for r in self.runs if r.g(k) is not None]
        return statistics.median(vals) if vals else None

    def each(self, k):
        return [r.g(k) for r in self.runs]


def parse(path):
    """(meta, runs, fails, skips, snapconfig, stall); stall holds the stall
    stage's lines: {"config": fields, "rounds": [fields, ...]}."""
    meta, runs, by_id, fails, skips, snapconfig = {}, [], {}, [], {}, {}
    stall = {"config": None, "rounds": []}
    pending = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            word, _, rest = line.partition(" ")
            if word == "meta":
                k, _, v = rest.partition(" ")
                meta[k] = v
                continue
            # reason= is free text and always the last field.
            rest, _, reason = rest.partition("reason=")
            fields = kv(rest.split())
            if reason:
                fields["reason"] = reason.strip()
            if word == "bench":
                r = Run(fields)
                runs.append(r)
                by_id[r.id] = r
                for kind, val in pending.pop(r.id, []):
                    attach(r, kind, val)
            elif word in ("procstat", "snapshots", "machine_cpu"):
                rid = fields.get("run")
                if word == "procstat" and "pid" not in fields:
                    continue  # the total line
                if rid in by_id:
                    attach(by_id[rid], word, fields)
                else:
                    pending.setdefault(rid, []).append((word, fields))
            elif word == "fail":
                fails.append(fields)
            elif word == "skip":
                skips[fields.get("system", "?")] = fields.get("reason", "?")
            elif word == "snapconfig":
                snapconfig[(fields.get("system"), fields.get("mode"))] = fields.get("interval")
            elif word == "stall_config":
                stall["config"] = fields
            elif word == "stall":
                stall["rounds"].append(fields)
    return meta, runs, fails, skips, snapconfig, stall


def attach(run, kind, fields):
    if kind == "procstat":
        run.procs.append(fields)
    elif kind == "snapshots":
        run.snapshots = int(num(fields.get("count"), 0))
    elif kind == "machine_cpu":
        run.busy = num(fields.get("busy_pct"))
        run.iowait = num(fields.get("iowait_pct"))


# ---- formatting -------------------------------------------------------------

def fint(x):
    if x is None:
        return "–"
    return f"{x:,.0f}"


def fus(x):
    if x is None:
        return "–"
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def fcpu(x):
    if x is None:
        return "–"
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def fratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    r = a / b
    return f"{r:.2f}×" if r < 10 else f"{r:.1f}×"


def fpct(x):
    return "–" if x is None else f"{x:.0f}%"


def each(xs, fmt):
    """'a / b / c', each formatted with fmt ('?' for a missing one)."""
    return " / ".join("?" if x is None else fmt.format(x) for x in xs)


def top(xs, fmt):
    """The largest of xs formatted, '–' if one is missing."""
    return "–" if not xs or None in xs else fmt.format(max(xs))


# ---- the document -----------------------------------------------------------

class Doc:
    def __init__(self, meta, runs, fails, skips, snapconfig, stall=None):
        self.meta, self.runs, self.fails = meta, runs, fails
        self.skips, self.snapconfig = skips, snapconfig
        self.stall = stall or {"config": None, "rounds": []}
        self.lines = []

    def w(self, s=""):
        self.lines.append(s)

    def run(self, system, tag):
        for r in self.runs:
            if r.system == system and r.tag == tag:
                return r
        return None

    def all_runs(self, system, tag):
        return [r for r in self.runs if r.system == system and r.tag == tag]

    def failure(self, system, tag):
        for f in self.fails:
            if f.get("system") == system and f.get("tag") in (tag, "all"):
                return f.get("reason", "?")
        return None

    def absent(self, system, tag):
        """Why there is no row: skipped, failed, or not run."""
        if system in self.skips:
            return f"skipped: {self.skips[system]}"
        why = self.failure(system, tag)
        if why:
            return f"failed: {why}"
        return "not run"

    def why_not(self, *pairs):
        """'not run (...)' for the (system, tag) pairs without a run."""
        out = []
        for system, tag in pairs:
            if self.run(system, tag) is None:
                out.append(f"{system} `{tag}`: {self.absent(system, tag)}")
        return "not run (" + "; ".join(out) + ")" if out else None

    def systems_for(self, tag):
        out = ["cohort", "etcd", "zookeeper"]
        if tag.startswith("write-"):
            out.append("redis")
        return out

    # --- sections ---

    def header(self):
        m = self.meta
        self.w("# cohort vs etcd vs ZooKeeper: side-by-side benchmark")
        self.w()
        if m.get("mode") == "quick":
            self.w("> **Smoke-test run (BENCH_QUICK=1): short runs, figures not "
                   "for publication.**")
            self.w()
        self.w("Generated by `bench/report.py` from `bench/results/raw.txt`, "
               "both written by the command below; every figure here comes "
               "from that run.")
        self.w()
        self.w("**Reproduce:** `" + m.get("command", "bash bench/run.sh") +
               "` (or `make bench`) on a Debian 12 machine, as root (it "
               "installs etcd, ZooKeeper and Redis from Debian).")
        self.w()
        self.w(f"- Date: {m.get('date', '?')}; whole run "
               f"{fmin(m.get('total_seconds'))} "
               f"({per_system_times(m)})")
        self.w(f"- Durations: {m.get('durations', '?')} (seconds per run, "
               "unmeasured warm-up before it, failover trials)")
        self.w()
        self.w("## Machine")
        self.w()
        self.w(f"- {m.get('nproc', '?')} CPUs: {m.get('cpu', '?')}; RAM "
               f"{m.get('mem', '?')}")
        self.w(f"- {m.get('os', '?')}, kernel {m.get('kernel', '?')}")
        self.w(f"- Disk: {m.get('disk', '?')}; file system {m.get('fs', '?')}")
        if m.get("fsync_probe"):
            self.w(f"- fsync cost: {m['fsync_probe']} (dd oflag=dsync)")
        probes = []
        for block, name in ((65536, "64 KiB"), (1048576, "1 MiB")):
            d = self.disk(block)
            if d:
                probes.append(f"{d[0]:,.1f} MiB/s with {name} writes "
                              f"({d[1]:,.0f} µs each)")
        if probes:
            self.w("- Sequential fdatasync bandwidth: " + ", ".join(probes) +
                   " (dd oflag=dsync conv=notrunc into a preallocated file)")
        idle = m.get("idle_check")
        if idle:
            busy = num(idle.split("%")[0], 0)
            warn = (" — **the machine was not idle: other load distorts "
                    "these figures**" if busy > 10 else "")
            self.w(f"- Before the run: {idle}{warn}")
        self.w("- All servers and the load generator share the machine: 3 "
               "replicas + client on "
               f"{m.get('nproc', '?')} cores, over loopback.")
        self.w()
        self.w("## Versions")
        self.w()
        self.w(f"- cohort: commit {m.get('cohort_rev', '?')}, "
               f"{m.get('cohort_build', 'Release build')}")
        self.w(f"- etcd: {m.get('etcd_version', '?')}")
        self.w(f"- ZooKeeper: {m.get('zookeeper_version', '?')}")
        self.w(f"- Redis: {m.get('redis_version', '?')}")
        self.w()

    def method(self):
        m = self.meta
        self.w("## Method")
        self.w()
        self.w("""- **Durability is the same everywhere**: every acknowledged write is
  fsynced before the reply — on a majority for the three replicated systems
  (cohort's WAL with group commit, etcd's WAL, ZooKeeper's transaction log
  with `forceSync=yes`), on the one server for Redis
  (`appendonly yes`, `appendfsync always`). Otherwise each system runs with
  its defaults (see `bench/*/cluster.sh` for the few exceptions and why).
- **Load**: closed loop, N requests kept outstanding over
  min(N, 64) connections spread round-robin over the members; keys
  `k0`..`k9999` picked uniformly (1,000 keys for 64 KiB values, 100 for
  1 MiB). cohort and
  Redis are driven by `cohort bench` (RESP), etcd by `etcd_bench` (its Go
  client, clientv3), ZooKeeper by `zk_bench` (its C client,
  `zookeeper_mt`); all three print the same result line and compute
  percentiles from the same log-bucketed histogram. Latency: request sent to
  reply read, µs.
- **Reads**: linearizable = cohort's default GET (read index: one
  PING/PONG round to the backups per batch of reads, no log op), etcd's
  default Get (ReadIndex), ZooKeeper `sync`+`getData`
  pipelined; local = cohort `READONLY` then GET, etcd serializable Get,
  ZooKeeper plain `getData`. Keys are preloaded first.
- **CPU and memory**: `bench/procstat.py` samples every server process
  (utime+stime of all its threads, and of children it reaped, e.g. a
  snapshot child) every 0.1 s and interpolates the CPU used in the measured
  window. *CPU s/1k ops* = CPU seconds per 1,000 measured operations per
  server process: the mean over the 3 processes, and in parentheses the
  largest (usually the leader). *Peak RSS* = the largest VmRSS any one
  server process reached during the run. *Server cores* = CPU seconds of all
  server processes ÷ measured seconds; *client cores* = the load
  generator's CPU ÷ its whole run (warm-up and preload included); *busy* =
  the whole machine's non-idle CPU over the run (100% = both cores).
- **Where cohort's load goes**: the main tables spread its connections over
  the 3 members (`--members`; at 1 outstanding the one connection goes to
  the first member listed, 127.0.0.1:7401 unless moved, a backup or the
  primary, whichever it is). A second table repeats the key workloads with
  every connection to the primary (asked with `cohort bench
  --print-primary` just before each run), and 100-byte writes at 1
  outstanding with the client connected to a backup, which forwards each
  write to the primary: that run is the one issue 16's "1 outstanding
  through a backup" targets are judged on.
- **Disk bound of the large values**: before the first run, `dd
  oflag=dsync conv=notrunc` writes 512 × 64 KiB and 128 × 1 MiB sequentially
  into a preallocated file (as cohort's WAL writes its preallocated
  segments), each write followed by its own sync; block × writes ÷ seconds
  is the disk's sequential fdatasync bandwidth for that block size, the
  bound issue 16 sets the 64 KiB and 1 MiB write runs against (within 2×).
- **Ratio rows** (`cohort ÷ X`) divide cohort's figure by X's in every
  column: above 1× in ops/s is better for cohort, below 1× in latency, CPU
  and memory is better for cohort.""")
        trials = m.get("durations", "").split("failover_trials=")[-1] or "5"
        self.w(f"""- **Failover**: writes at concurrency 1; {trials} trials; each trial
  finds the primary/leader, SIGKILLs it 2 s into the run and reports the time
  from the kill to the first acknowledged write sent after it; the killed
  member is then restarted (same command line and data) and the next trial
  waits until every member is healthy again.
- **Snapshot under load**: writes of 100 B at 128 outstanding on a fresh
  cluster, twice: a *steady* run whose snapshot interval is too large to
  trigger within the run, and a *loaded* run with a snapshot every 20,000
  ops, so that several snapshots land inside the measurement. The interval
  is cohort's `--snapshot-interval-ops`, etcd's `--snapshot-count`
  (environment `ETCD_SNAPSHOT_COUNT`) and ZooKeeper's `snapCount`
  (`-Dzookeeper.snapCount`; ZooKeeper snapshots after a random count between
  half and all of it). cohort also snapshots when its log's bodies fill half
  its in-memory arena (16 × `--max-value-size`, at least 64 MiB, i.e. every
  ~270,000 100-byte writes), so both of its snapshot runs set
  `--max-value-size 12MiB` (the most its peer transport allows; arena
  ~193 MiB, ~800,000 such writes) and the snapshot runs last at most 6 s
  after the warm-up, so that only the interval decides.
  The table shows the snapshots counted during each run (cohort: each
  member's `last_snapshot_op` polled every 0.1 s; etcd: the
  `etcd_debugging_snap_save_total_duration_seconds` count; ZooKeeper:
  `Snapshotting` log lines; all summed over the 3 members, warm-up included).""")
        self.w()

    def table(self, tag, title):
        self.w(f"## {title}")
        self.w()
        self.w(f"`{tag}`")
        self.w()
        self.w("| system | ops/s | p50 µs | p90 µs | p99 µs | p99.9 µs | "
               "max µs | errors | CPU s/1k ops per process: mean (max) | "
               "peak RSS MiB | server cores | client cores | busy |")
        self.w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        rows = {}
        for s in self.systems_for(tag):
            r = self.run(s, tag)
            rows[s] = r
            if r is None:
                self.w(f"| {s} | {self.absent(s, tag)} |" + " |" * 11)
                continue
            mean, mx = r.cpu_per_kop()
            self.w(f"| {s} | {fint(r.g('ops_per_s'))} | {fus(r.g('p50_us'))} | "
                   f"{fus(r.g('p90_us'))} | {fus(r.g('p99_us'))} | "
                   f"{fus(r.g('p999_us'))} | {fus(r.g('max_us'))} | "
                   f"{fint(r.g('errors'))} | "
                   f"{fcpu(mean)} ({fcpu(mx)}) | {fint(r.rss_mib())} | "
                   f"{fcpu(r.server_cores())} | {fcpu(r.client_cores())} | "
                   f"{fpct(r.busy)} |")
        c = rows.get("cohort")
        for s in self.systems_for(tag)[1:]:
            o = rows.get(s)
            if c is None or o is None:
                continue
            self.w(f"| *cohort ÷ {s}* | {ratio_cells(c, o)} | "
                   f"{fratio(c.rss_mib(), o.rss_mib())} | | | |")
        self.w()

    def where(self):
        self.w("## cohort: through all members, at the primary only, "
               "through one backup")
        self.w()
        self.w("The main tables spread cohort's connections round-robin over "
               "the 3 members (`--members`); here the same workloads run "
               "with every connection to the primary (asked with "
               "`cohort bench --print-primary` just before the run), and "
               "the single client at 1 outstanding connected to a backup, "
               "which forwards each write to the primary. Same durations, "
               "same cluster, run after the main cohort runs.")
        self.w()
        self.w("| workload | load through | ops/s | p50 µs | p90 µs | p99 µs | "
               "p99.9 µs | max µs | errors | CPU s/1k ops per process: "
               "mean (max) | server cores | busy |")
        self.w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for title, runs in WHERE:
            got = []
            for tag, label in runs:
                r = self.run("cohort", tag)
                if r is None:
                    self.w(f"| {title} | {label} | {self.absent('cohort', tag)} |"
                           + " |" * 9)
                    continue
                got.append((label, r))
                mean, mx = r.cpu_per_kop()
                via = f" ({r.f['via']})" if r.f.get("via") else ""
                self.w(f"| {title} | {label}{via} | {fint(r.g('ops_per_s'))} | "
                       f"{fus(r.g('p50_us'))} | {fus(r.g('p90_us'))} | "
                       f"{fus(r.g('p99_us'))} | {fus(r.g('p999_us'))} | "
                       f"{fus(r.g('max_us'))} | {fint(r.g('errors'))} | "
                       f"{fcpu(mean)} ({fcpu(mx)}) | {fcpu(r.server_cores())} | "
                       f"{fpct(r.busy)} |")
            if len(got) >= 2 and got[0][1].tag == runs[0][0]:
                a = got[0][1]
                for label, b in got[1:]:
                    self.w(f"| {title} | *all members ÷ {label}* | "
                           f"{ratio_cells(a, b)} | "
                           f"{fratio(a.server_cores(), b.server_cores())} | |")
        self.w()

    def failover(self):
        self.w("## Failover: SIGKILL the primary/leader during writes at concurrency 1")
        self.w()
        self.w("Time from the kill to the first acknowledged write sent after it.")
        self.w()
        self.w("| system | trials (ms) | median ms | max ms | errors | "
               "cohort ÷ system (median) |")
        self.w("|---|---|---:|---:|---:|---:|")
        med = {}
        for s in ["cohort", "etcd", "zookeeper"]:
            rs = self.all_runs(s, "failover")
            fails = [f for f in self.fails
                     if f.get("system") == s and f.get("tag") == "failover"]
            if not rs:
                self.w(f"| {s} | {self.absent(s, 'failover')} | | | | |")
                continue
            vals = [r.g("failover_ms") for r in rs]
            ok = [v for v in vals if v is not None and v >= 0]
            trials = ", ".join("none" if v is None or v < 0 else f"{v:,.0f}"
                               for v in vals)
            if fails:
                trials += f" (+{len(fails)} failed)"
            errs = sum(r.g("errors") or 0 for r in rs)
            if ok:
                med[s] = statistics.median(ok)
                # A trial with no acknowledged write after the kill counts as
                # unbounded for the max.
                mx = "∞" if len(ok) < len(vals) or fails else f"{max(ok):,.0f}"
                ratio = "" if s == "cohort" else fratio(med.get("cohort"), med[s])
                self.w(f"| {s} | {trials} | {med[s]:,.0f} | {mx} | {errs:,.0f} | {ratio} |")
            else:
                self.w(f"| {s} | {trials} | – | – | {errs:,.0f} | |")
        self.w()

    def snap_run(self, system, mode):
        runs = self.all_runs(system, "snap-" + mode)
        return MedianRun(runs) if runs else None

    def snapshot(self):
        self.w("## Snapshot under load: writes of 100 B at 128 outstanding")
        self.w()
        pairs = max((len(self.all_runs(s, "snap-loaded"))
                     for s in ["cohort", "etcd", "zookeeper"]), default=0)
        if pairs > 1:
            self.w(f"Each figure is the median of {pairs} runs; steady and "
                   "loaded runs alternate, each on a fresh cluster. p99.9 of "
                   "each run, steady / loaded:")
            self.w()
            for s in ["cohort", "etcd", "zookeeper"]:
                st, ld = self.snap_run(s, "steady"), self.snap_run(s, "loaded")
                if st and ld:
                    self.w(f"- {s}: " + ", ".join(
                        f"{fus(a)} / {fus(b)}"
                        for a, b in zip(st.each("p999_us"), ld.each("p999_us"))))
            self.w()
        self.w("| system | interval steady / loaded | snapshots steady / loaded | "
               "ops/s steady / loaded | p99 µs steady / loaded | "
               "p99.9 µs steady / loaded | p99.9 loaded ÷ steady | "
               "max µs steady / loaded |")
        self.w("|---|---|---|---|---|---|---:|---|")
        for s in ["cohort", "etcd", "zookeeper"]:
            st, ld = self.snap_run(s, "steady"), self.snap_run(s, "loaded")
            iv = (f"{fint(num(self.snapconfig.get((s, 'steady'))))} / "
                  f"{fint(num(self.snapconfig.get((s, 'loaded'))))}")
            if st is None and ld is None:
                self.w(f"| {s} | {self.absent(s, 'snap-steady')} | | | | | | |")
                continue

            def pair(key, fmt):
                a = st.g(key) if st else None
                b = ld.g(key) if ld else None
                return f"{fmt(a)} / {fmt(b)}"

            sn = (f"{'–' if not st or st.snapshots is None else st.snapshots} / "
                  f"{'–' if not ld or ld.snapshots is None else ld.snapshots}")
            ratio = fratio(ld.g("p999_us") if ld else None,
                           st.g("p999_us") if st else None)
            self.w(f"| {s} | {iv} | {sn} | {pair('ops_per_s', fint)} | "
                   f"{pair('p99_us', fus)} | {pair('p999_us', fus)} | {ratio} | "
                   f"{pair('max_us', fus)} |")
        self.w()

    def stall_section(self):
        """The stall stage (issue 12): tests/system/stall_probe.py's rounds,
        one row per command, and whether any call failed."""
        self.w("## Write stall during a leadership transfer, a rolling "
               "restart and a membership change (from make bench)")
        self.w()
        m, rounds = self.meta, self.stall["rounds"]
        fail = next((f.get("reason", "?") for f in self.fails
                     if f.get("tag") == "stall"), None)
        if not rounds and not fail:
            self.w("Not in this run (no `stall` lines in raw.txt): "
                   "`BENCH_STAGES=stall bash bench/run.sh` adds them to it.")
            self.w()
            return
        cfg = self.stall["config"] or {}
        threads = cfg.get("threads", "?")
        when = f"{m.get('stall_date', '?')}, commit {m.get('stall_rev', '?')}"
        if m.get("stall_load"):
            when += f", load average {m['stall_load']}"
        if m.get("stall_mode") == "quick":
            self.w("> **Smoke-test stage (BENCH_QUICK=1): few rounds.**")
            self.w()
        secs = num(m.get("stall_seconds"))
        took = "? s" if secs is None else f"{secs:,.0f} s"
        reconfig = (num(cfg.get("reconfigs"), 0) > 0 or
                    any(r.get("cmd") in ("add", "remove") for r in rounds))
        where = ("membership changes first, on 5 addresses started with "
                 "`--voters 3` (each round `cohort add 3` and `cohort add "
                 "4`, each two epochs: the learner, then the voter once "
                 "caught up; then `cohort remove 3` and `cohort remove 4`), "
                 "then transfers and rejuvenations on 3 members"
                 if reconfig else "3 members")
        self.w(f"Run by bench/run.sh's stall stage ({when}; "
               f"`{m.get('stall_command', '?')}`, {took}): "
               "`tests/system/stall_probe.py` on groups of its own (this "
               "Release build, the system tests' harness: 10 ms heartbeat, "
               f"100 ms suspicion, loopback): {where}. "
               "Each command runs through a fresh load, stopped "
               "0.3 s after the command returns. The load: libcohort-client "
               f"(`cohort-client-test incr`, {threads} handles, exactly once "
               f"through COHORT.REQ, 120 s deadline) and {threads} raw RESP "
               "writer threads (retrying -TRYAGAIN and dropped connections "
               "on the next member). *Longest ack gap*: the longest time in "
               "which no raw writer got any acknowledgement while the "
               "command ran; *longest C call*: the longest single library "
               "call (it rides out the stall plus its retry); *failed "
               "calls*: library calls that returned an error.")
        self.w()
        if rounds:
            self.w("| command | rounds | longest ack gap, ms (each round) | "
                   "max | longest C call, ms (each round) | max | "
                   "command took, ms | failed calls |")
            self.w("|---|---:|---|---:|---|---:|---|---:|")
        names = {"transfer": "`cohort transfer ID` (to the next member)",
                 "rejuvenate": "`cohort rejuvenate` (3 restarts + 1 transfer)",
                 "add": "`cohort add ID` (2 epochs)",
                 "remove": "`cohort remove ID`"}
        by = {cmd: [] for cmd in names}  # this order, then any other
        for r in rounds:
            by.setdefault(r.get("cmd", "?"), []).append(r)
        for cmd, rs in by.items():
            if not rs:
                continue
            gaps = [num(r.get("gap_ms")) for r in rs]
            calls = [num(r.get("call_ms")) for r in rs]
            took = [num(r.get("took_ms")) for r in rs]
            failed = sum(num(r.get("failed"), 0) for r in rs)
            span = ("–" if None in took else f"{min(took):,.0f}" +
                    ("" if min(took) == max(took) else f"–{max(took):,.0f}"))
            self.w(f"| {names.get(cmd, cmd)} | {len(rs)} | "
                   f"{each(gaps, '{:.1f}')} | {top(gaps, '{:.1f}')} | "
                   f"{each(calls, '{:,.0f}')} | {top(calls, '{:,.0f}')} | "
                   f"{span} | {failed:,.0f} |")
        if fail:
            if rounds:
                self.w()
            self.w(f"The stage did not finish: {fail}")
        self.w()
        self.w("| target | measured | verdict |")
        self.w("|---|---|---|")
        for cmd, key, per, what in (
                ("transfer", "transfers", 1, "a leadership transfer"),
                ("rejuvenate", "rejuvenations", 1,
                 "a rolling restart, `cohort rejuvenate`"),
                ("add", "reconfigs", 2, "`cohort add`"),
                ("remove", "reconfigs", 2, "`cohort remove`")):
            rs = by.get(cmd, [])
            want = per * int(num(cfg.get(key), 0))
            if per == 2 and not want and not rs:
                continue  # membership changes: only when the stage ran them
            failed = sum(num(r.get("failed"), 0) for r in rs)
            name = f"0 failed calls during {what} (issue 12)"
            if not rs:
                why = ("not measured: the stage did not finish (above)"
                       if fail else "no rounds run")
                self.w(f"| {name} | {why} | – |")
                continue
            got = (f"{failed:,.0f} failed calls in {len(rs)} "
                   f"round{'' if len(rs) == 1 else 's'}")
            if failed:
                v = "**missed**"
            elif len(rs) < want:
                got += f" of {want} (the stage stopped)"
                v = "– (incomplete)"
            else:
                v = "**met**"
            self.w(f"| {name} | {got} | {v} |")
        self.w()

    def ops(self, s, tag):
        """ops/s of system s's run tag, None if it did not run."""
        r = self.run(s, tag)
        return r.g("ops_per_s") if r else None

    def targets(self):
        self.w("## Targets (issue 5)")
        self.w()
        self.w("| target | measured | verdict |")
        self.w("|---|---|---|")

        ops = self.ops

        c128 = ops("cohort", "write-100-c128")
        for peer, want in (("etcd", 5.0), ("zookeeper", 3.0), ("redis", 0.5)):
            p = ops(peer, "write-100-c128")
            ratio = c128 / p if c128 and p else None
            self.verdict(f"writes at 128 (100 B): cohort ≥ {want:g}× {peer}",
                         None if ratio is None else
                         f"{ratio:.2f}× ({fint(c128)} vs {fint(p)} ops/s)",
                         ratio, want, higher=True,
                         missing=self.why_not(("cohort", "write-100-c128"),
                                              (peer, "write-100-c128")))
        r1 = self.run("cohort", "write-100-c1")
        why1 = self.why_not(("cohort", "write-100-c1"))
        self.verdict("single-client write p50 ≤ 0.5 ms",
                     r1 and f"{r1.g('p50_us') / 1000:.3f} ms",
                     r1 and r1.g("p50_us") / 1000, 0.5, higher=False,
                     missing=why1)
        self.verdict("single-client write p99 ≤ 1 ms",
                     r1 and f"{r1.g('p99_us') / 1000:.3f} ms",
                     r1 and r1.g("p99_us") / 1000, 1.0, higher=False,
                     missing=why1)
        lin, loc = ops("cohort", "read-c128"), ops("cohort", "lread-c128")
        share = lin / loc if lin and loc else None
        self.verdict("linearizable reads ≥ 70% of local reads (128)",
                     share and f"{100 * share:.0f}% ({fint(lin)} vs {fint(loc)} ops/s)",
                     share, 0.70, higher=True,
                     missing=self.why_not(("cohort", "read-c128"),
                                          ("cohort", "lread-c128")))
        fo = [r.g("failover_ms") for r in self.all_runs("cohort", "failover")]
        good = [v for v in fo if v is not None and v >= 0]
        med = statistics.median(good) if good else None
        mx = max(good) if good and len(good) == len(fo) else None
        whyf = self.why_not(("cohort", "failover"))
        self.verdict("failover median ≤ 300 ms", med and f"{med:,.0f} ms ({len(fo)} trials)",
                     med, 300, higher=False, missing=whyf)
        self.verdict("failover max ≤ 600 ms",
                     (f"{mx:,.0f} ms" if mx is not None else
                      ("a trial without a write after the kill" if fo else None)),
                     mx if mx is not None else (float("inf") if fo else None),
                     600, higher=False, missing=whyf)
        st, ld = self.snap_run("cohort", "steady"), self.snap_run("cohort", "loaded")
        ratio = (ld.g("p999_us") / st.g("p999_us")
                 if st and ld and st.g("p999_us") else None)
        self.verdict("p99.9 write latency during snapshots ≤ 2× steady",
                     ratio and f"{ratio:.2f}× ({fus(ld.g('p999_us'))} vs "
                     f"{fus(st.g('p999_us'))} µs; {ld.snapshots} snapshots in the run)",
                     ratio, 2.0, higher=False,
                     missing=self.why_not(("cohort", "snap-steady"),
                                          ("cohort", "snap-loaded")))
        c = self.run("cohort", "write-100-c128")
        cm = c.cpu_per_kop()[0] if c else None
        for peer in PEERS:
            p = self.run(peer, "write-100-c128")
            pm = p.cpu_per_kop()[0] if p else None
            self.verdict(f"CPU per 1,000 writes per replica (100 B, 128) below {peer}",
                         cm and pm and f"{cm:.3f} vs {pm:.3f} CPU s",
                         cm / pm if cm and pm else None, 1.0, higher=False,
                         strict=True,
                         missing=self.why_not(("cohort", "write-100-c128"),
                                              (peer, "write-100-c128")))
        self.w()

    def disk(self, block):
        """(MiB/s, µs per write) of the sequential O_DSYNC probe, or None."""
        f = kv(self.meta.get(f"dsync_{block}", "").split())
        mib, us = num(f.get("mib_per_s")), num(f.get("us_per_write"))
        return (mib, us) if mib else None

    def targets16(self):
        self.w("## Targets (issue 16)")
        self.w()
        self.w("cohort's load spread over all members unless the row says "
               "otherwise; 100-byte writes unless it names a size.")
        self.w()
        self.w("| target | measured | verdict |")
        self.w("|---|---|---|")

        ops = self.ops

        for c, want in ((16, 20000), (128, 80000)):
            tag = f"write-100-c{c}"
            v = ops("cohort", tag)
            self.verdict(f"writes at {c} outstanding ≥ {want:,} /s",
                         v and f"{fint(v)} /s", v, want, higher=True,
                         missing=self.why_not(("cohort", tag)))
            if c == 16:
                z = ops("zookeeper", tag)
                ratio = v / z if v and z else None
                self.verdict("writes at 16 outstanding ≥ 4× ZooKeeper",
                             ratio and f"{ratio:.2f}× ({fint(v)} vs {fint(z)} /s)",
                             ratio, 4.0, higher=True,
                             missing=self.why_not(("cohort", tag),
                                                  ("zookeeper", tag)))
        b = self.run("cohort", "backup-write-100-c1")
        why = self.why_not(("cohort", "backup-write-100-c1"))
        via = f" via {b.f['via']}" if b and b.f.get("via") else ""
        for key, name, bound in (("p50_us", "p50", 0.4), ("p99_us", "p99", 1.0)):
            v = b.g(key) / 1000 if b and b.g(key) is not None else None
            self.verdict(f"1 outstanding through a backup: {name} ≤ {bound:g} ms",
                         v is not None and f"{v:.3f} ms{via}" or None, v, bound,
                         higher=False, missing=why)
        tag = "write-1024-c128"
        c, z = ops("cohort", tag), ops("zookeeper", tag)
        ratio = c / z if c and z else None
        self.verdict("1 KiB writes at 128: ≥ 4× ZooKeeper",
                     ratio and f"{ratio:.2f}× ({fint(c)} vs {fint(z)} /s)",
                     ratio, 4.0, higher=True,
                     missing=self.why_not(("cohort", tag), ("zookeeper", tag)))
        r = self.run("cohort", tag)
        v = r.g("p999_us") / 1000 if r and r.g("p999_us") is not None else None
        self.verdict("1 KiB writes at 128: p99.9 ≤ 20 ms",
                     v is not None and f"{v:.1f} ms" or None, v, 20.0,
                     higher=False, missing=self.why_not(("cohort", tag)))
        lin, loc = ops("cohort", "read-c128"), ops("cohort", "lread-c128")
        share = lin / loc if lin and loc else None
        self.verdict("linearizable reads ≥ 80% of local reads (128, through "
                     "all members)",
                     share and f"{100 * share:.0f}% ({fint(lin)} vs {fint(loc)} /s)",
                     share, 0.80, higher=True,
                     missing=self.why_not(("cohort", "read-c128"),
                                          ("cohort", "lread-c128")))
        st, ld = self.snap_run("cohort", "steady"), self.snap_run("cohort", "loaded")
        ratio = (ld.g("p999_us") / st.g("p999_us")
                 if st and ld and st.g("p999_us") and ld.g("p999_us") else None)
        self.verdict("p99.9 during snapshots ≤ 1.5× steady (100 B at 128)",
                     ratio and f"{ratio:.2f}× ({fus(ld.g('p999_us'))} vs "
                     f"{fus(st.g('p999_us'))} µs; "
                     f"{'?' if ld.snapshots is None else ld.snapshots} "
                     "snapshots in the run)",
                     ratio, 1.5, higher=False,
                     missing=self.why_not(("cohort", "snap-steady"),
                                          ("cohort", "snap-loaded")))
        for tag, block, name in (("write-64k-c16", 65536, "64 KiB"),
                                 ("write-1m-c16", 1048576, "1 MiB")):
            v = ops("cohort", tag)
            d = self.disk(block)
            mib = v * block / 1048576 if v else None
            share = mib / d[0] if mib and d else None
            missing = self.why_not(("cohort", tag))
            if missing is None and d is None:
                missing = f"no disk probe (meta dsync_{block})"
            self.verdict(f"{name} values at 16: throughput within 2× of the "
                         f"disk's sequential fdatasync bandwidth ({name} blocks)",
                         share and f"{mib:,.1f} MiB/s ({fint(v)} /s) vs the "
                         f"disk's {d[0]:,.1f} MiB/s ({d[1]:,.0f} µs per "
                         f"write): {100 * share:.0f}%",
                         share, 0.5, higher=True, missing=missing)
        total = num(self.meta.get("total_seconds"))
        self.verdict("the whole run, unattended, under 30 minutes",
                     total and f"{total / 60:.1f} min", total and total / 60,
                     30.0, higher=False, strict=True,
                     missing="no meta total_seconds")
        self.w()
        self.w("The disk figures come from the probe under *Machine* (one "
               "process writing that block size sequentially, each write "
               "O_DSYNC, into a preallocated file as cohort's WAL does). On "
               "this machine the 3 replicas share that one disk, so each "
               "replica gets at most a share of it.")
        self.w()

    def verdict(self, name, measured, value, bound, higher, strict=False,
                missing=None):
        if value is None or measured is None:
            self.w(f"| {name} | {missing or 'not measured'} | – |")
            return
        if higher:
            ok = value > bound if strict else value >= bound
            gap = (value / bound - 1) * 100 if bound else 0
        else:
            ok = value < bound if strict else value <= bound
            gap = (1 - value / bound) * 100 if bound and value != float("inf") else -1e9
        if ok:
            v = f"**met** (margin {abs(gap):.0f}%)"
        elif gap == -1e9:
            v = "**missed**"
        else:
            v = (f"**missed**: {100 * value / bound:.0f}% of the target"
                 if higher else f"**missed**: {value / bound:.2f}× the bound")
        self.w(f"| {name} | {measured} | {v} |")

    def bottleneck(self, profile):
        self.w("## What the bottleneck is")
        self.w()
        self.w("Measured facts per run (server cores, client cores, machine busy "
               "in the tables above; the fsync cost under *Machine*):")
        self.w()
        self.w("| run | system | ops/s | server cores | client cores | busy | iowait |")
        self.w("|---|---|---:|---:|---:|---:|---:|")
        for tag in ("write-100-c1", "write-100-c128", "write-100-c1000",
                    "read-c128", "write-64k-c16", "write-1m-c16"):
            for s in self.systems_for(tag):
                r = self.run(s, tag)
                if r:
                    self.w(f"| {tag} | {s} | {fint(r.g('ops_per_s'))} | "
                           f"{fcpu(r.server_cores())} | {fcpu(r.client_cores())} | "
                           f"{fpct(r.busy)} | {fpct(r.iowait)} |")
        self.w()
        self.w("Reading them: *busy* near 100% means the 2 cores are the limit "
               "(servers and client together); at concurrency 1 the limit is "
               "the round trip plus one fsync per write (see the fsync cost).")
        self.w()
        self.w("## Where the time goes")
        self.w()
        if profile:
            self.w("`perf record -g` of the cohort primary during the 100-byte, "
                   "128-outstanding write run (`BENCH_PROFILE=1`); top of "
                   "`perf report --no-children --sort dso,sym` "
                   "(full: `bench/results/profile.txt`):")
            self.w()
            self.w("```")
            for line in profile.splitlines()[:40]:
                self.w(line)
            self.w("```")
            self.w()
        # The reading of a profile is written by hand in bench/analysis.md
        # (it survives regenerating this file); without it, a placeholder.
        analysis = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "analysis.md")
        if os.path.exists(analysis):
            with open(analysis, encoding="utf-8") as f:
                for line in f.read().rstrip("\n").splitlines():
                    self.w(line)
        else:
            self.w("*(to be filled in from a profile, in bench/analysis.md)*")
        self.w()

    def problems(self):
        if not self.fails and not self.skips:
            return
        self.w("## Runs that did not produce a result")
        self.w()
        for s, why in self.skips.items():
            self.w(f"- {s}: skipped ({why})")
        for f in self.fails:
            self.w(f"- {f.get('system', '?')} `{f.get('tag', '?')}` "
                   f"(run {f.get('run', '?')}): {f.get('reason', '?')}")
        self.w()

    def indicative(self):
        """bench/indicative.md (hand-written sections measured by other
        tools), copied as it is minus its leading comment."""
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "indicative.md")
        if not os.path.exists(path):
            return
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if text.lstrip().startswith("<!--"):
            text = text.split("-->", 1)[1]
        text = text.strip("\n")
        if not text:
            return
        self.w("---")
        self.w()
        self.w("*The sections below are not from the run above: they were "
               "measured by hand with other tools, each says how and when, "
               "and report.py copies them from `bench/indicative.md`.*")
        self.w()
        for line in text.splitlines():
            self.w(line)
        self.w()

    def render(self, profile):
        self.header()
        self.targets()
        self.targets16()
        for tag, title in TABLES:
            self.table(tag, title)
        self.where()
        self.failover()
        self.snapshot()
        self.stall_section()
        self.bottleneck(profile)
        self.problems()
        self.method()
        self.indicative()
        return "\n".join(self.lines).rstrip() + "\n"


def fmin(secs):
    s = num(secs)
    if s is None:
        return "?"
    return f"{s / 60:.1f} min"


def per_system_times(m):
    parts = []
    for s in SYSTEMS:
        t = m.get(f"time_{s}")
        if t:
            parts.append(f"{s} {fmin(t.split()[0])}")
    return ", ".join(parts) if parts else "per system: ?"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("raw")
    ap.add_argument("-o", "--output", default="-")
    ap.add_argument("--profile")
    a = ap.parse_args()
    meta, runs, fails, skips, snapconfig, stall = parse(a.raw)
    profile = None
    if a.profile:
        try:
            with open(a.profile) as f:
                profile = f.read()
        except OSError:
            pass
    text = Doc(meta, runs, fails, skips, snapconfig, stall).render(profile)
    if a.output == "-":
        sys.stdout.write(text)
    else:
        with open(a.output, "w") as f:
            f.write(text)
        print(f"report.py: wrote {a.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
