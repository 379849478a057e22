#!/usr/bin/env python3
"""test_rejuvenate — `cohort rejuvenate`: a rolling restart under load.

A 3-replica group runs from a copy of the binary. Refusals first, each one
line that changes nothing (no member's INFO run_id changes): an unreachable
cluster; a backup that is down (SIGKILLed; restarted afterwards);
COHORT.REJUVENATE sent to the primary, or with a bad argument.

Then, under two loads, the binary file is replaced by a rename (an
upgrade: every replica's /proc/PID/exe now reads "(deleted)") and
`cohort rejuvenate` restarts every replica in turn. The loads: the C
client library (cohort-client-test incr and casincr, 16 handles each:
INCRs, and GET+CAS increments, exactly once through COHORT.REQ retries;
issue 15's load), and the harness's raw RESP writers (workload.Writers,
which retry -TRYAGAIN and dropped connections against the next member).
Pass:
  - the command exits 0 and prints one line per step and a final line;
  - every replica kept its PID but is a new process image: a new run_id,
    an uptime no longer than the rejuvenation, and /proc/PID/exe is the
    new binary (no "(deleted)");
  - the C client saw 0 failed calls (no EUNKNOWN, no ENOTAPPLIED, no other
    error), its replies are exactly 1..N and each counter reads its N;
  - every write the raw writers had acknowledged reads back on every
    member, and none got an error a retrying client would not retry;
  - while it runs, INFO replication shows rejuvenation_in_progress:1 and
    a "restarting replica ..." note; afterwards every member shows 0;
  - `cohort members` shows the transfer among the recent view changes,
    and INFO shows no transfer or rejuvenation in progress.
Printed, never asserted: the longest gap between acknowledged raw writes
during the rejuvenation, and the command's own lines.

usage: test_rejuvenate.py [path/to/cohort]
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
from test_client_lib import Incrementer as CIncrementer, check_load, counter  # noqa
from workload import Writers, verify_writes  # noqa: E402

RETRIED = {"TRYAGAIN", "UNKNOWN", "LOADING", "ConnectionRefusedError",
           "ConnectionResetError", "BrokenPipeError", "ProtocolError",
           "TimeoutError", "timeout", "OSError", "ConnectionClosed"}


def run_ids(c):
    return {i: c.info(i, "server")["run_id"] for i in range(c.n)}


def rejuvenate(c, member, *extra):
    cluster = "127.0.0.1:%d" % member if isinstance(member, int) and \
        member > c.n else "127.0.0.1:%d" % c.client_ports[member]
    return subprocess.run([c.binary, "rejuvenate", "--cluster", cluster,
                           "--timeout", str(int(60 * c.slow))] + list(extra),
                          capture_output=True, text=True,
                          timeout=400 * c.slow)


def rejuvenate_watching(c):
    """cohort rejuvenate from member 0, while polling every member's INFO
    for rejuvenation_progress: (its result, the notes seen)."""
    proc = subprocess.Popen([c.binary, "rejuvenate", "--cluster",
                             "127.0.0.1:%d" % c.client_ports[0], "--timeout",
                             str(int(60 * c.slow))], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    notes = set()
    k = 0
    while proc.poll() is None:
        try:
            inf = c.info(k % c.n, timeout=1.0)
            if inf.get("rejuvenation_in_progress") == "1":
                notes.add(inf.get("rejuvenation_progress", ""))
        except (OSError, resp.RespError, resp.ProtocolError):
            pass
        k += 1
        time.sleep(0.01)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out,
                                       err), notes


def one_line_error(out, what):
    check(out.returncode == 1 and out.stdout == ""
          and out.stderr.count("\n") == 1,
          "%s: rc %d, stdout %r, stderr %r"
          % (what, out.returncode, out.stdout, out.stderr))
    log("refusal (%s): %s" % (what, out.stderr.strip()))
    return out.stderr


def refusals(c):
    before = run_ids(c)
    free = cl.pick_ports(1)[0]
    err = one_line_error(rejuvenate(c, free), "unreachable cluster")
    check(str(free) in err and "cohort status" in err, err)
    p, _ = c.wait_for_primary(probe=False)
    for args, want in ((("COHORT.REJUVENATE",), "is the primary"),
                       (("COHORT.REJUVENATE", "NOW"), "usage")):
        try:
            r = c.command(p, *args)
            raise cl.TestFailure("%s on the primary answered %r" % (args, r))
        except resp.RespError as e:
            check(want in e.message and "\n" not in e.message, e.message)
            log("refusal (%s on the primary): -%s" % (args, e.message))
    down = (p + 1) % c.n
    c.kill(down)
    err = one_line_error(rejuvenate(c, p), "a backup down")
    check(("replica %d" % down) in err and "start it" in err, err)
    c.restart(down)
    c.wait_converged()
    after = run_ids(c)
    for i in range(c.n):
        if i != down:
            check(after[i] == before[i], "a refused rejuvenation restarted "
                  "replica %d" % i)


def upgrade(c, path):
    """Replace the binary by a rename, as install(1) does."""
    shutil.copy2(path, path + ".new")
    os.replace(path + ".new", path)
    for i in range(c.n):
        exe = os.readlink("/proc/%d/exe" % c.pids[i])
        check(exe.endswith("(deleted)"), "r%d runs %s after the binary was "
              "replaced" % (i, exe))


def main(binary):
    c0_dir = None
    c = cl.Cluster(binary, n=3, name="rejuvenate")
    # Run from a copy, so that replacing it is an upgrade of ours only.
    c0_dir = os.path.join(c.dir, "bin")
    os.makedirs(c0_dir)
    copy = os.path.join(c0_dir, "cohort")
    shutil.copy2(c.binary, copy)
    original = c.binary
    c.binary = copy
    c.start()
    c.wait_for_primary()
    c.wait_converged()
    refusals(c)
    pids = list(c.pids)
    old = run_ids(c)
    stop = os.path.join(c.dir, "stop-inc")
    # Issue 15's load: 16 threads of INCR and 16 of GET+CAS increments
    # through the library, exactly once, with a generous deadline.
    inc = CIncrementer(original, c, "rejuv", 120000 * c.slow, stop,
                       threads=16)
    check(c.command(c.find_primary(), "SET", "rejuvcas", "0") == "OK",
          "SET rejuvcas 0")
    cas = CIncrementer(original, c, "rejuvcas", 120000 * c.slow,
                       os.path.join(c.dir, "stop-cas"), threads=16,
                       mode="casincr")
    writers = Writers(c, threads=3).start()
    check(writers.wait_acks(100, 20 * c.slow),
          "fewer than 100 writes acknowledged: %s" % writers.summary())
    inc.wait_progress(100, 60 * c.slow)
    upgrade(c, copy)
    t_begin = time.monotonic()
    out, notes = rejuvenate_watching(c)
    t_end = time.monotonic()
    log("progress notes seen in INFO: %s" % sorted(notes))
    check(any(n.startswith("restarting replica") for n in notes),
          "INFO never showed the rejuvenation in progress: %s" % notes)
    log("cohort rejuvenate:\n  " + out.stdout.strip().replace("\n", "\n  "))
    check(out.returncode == 0, "cohort rejuvenate: rc %d: %s"
          % (out.returncode, out.stderr.strip()))
    lines = out.stdout.strip().split("\n")
    # One transfer, unless a view change on a loaded machine moved the
    # primary to a replica already restarted (then the old primary is
    # restarted as a backup, with no transfer).
    handed = sum("handed the primary role" in x for x in lines)
    check(handed <= 1 and len(lines) == c.n + 2 + handed
          and lines[-1].startswith("rejuvenated 3"),
          "expected a first line, %d restarts, a transfer and a final line: "
          "%r" % (c.n, lines))
    check(sum("restarted (run_id" in x for x in lines) == c.n, lines)
    inc.wait_progress(100, 60 * c.slow)
    time.sleep(0.3)
    writers.stop()
    res = inc.stop(60 * c.slow)
    res_cas = cas.stop(60 * c.slow)
    check_load("16 threads of GET+CAS", res_cas, counter(c, "rejuvcas"))
    new = run_ids(c)
    for i in range(c.n):
        check(c.pids[i] == pids[i] and c.alive(i), "r%d: pid %s -> %s"
              % (i, pids[i], c.pids[i]))
        check(new[i] != old[i], "r%d kept its run_id %s" % (i, old[i]))
        up = int(c.info(i, "server")["uptime_in_seconds"])
        check(up <= t_end - t_begin + 1, "r%d: uptime %d s, but the "
              "rejuvenation took %.1f s" % (i, up, t_end - t_begin))
        exe = os.readlink("/proc/%d/exe" % pids[i])
        check(not exe.endswith("(deleted)"), "r%d still runs the old "
              "binary: %s" % (i, exe))
    check(res["ok"] > 0 and res["unknown"] == 0 and res["notapplied"] == 0
          and res["other"] == 0, "C client calls failed: %s; errors: %s"
          % (res, inc.errors[-5:]))
    check(res["out_of_order"] == 0 and res["duplicates"] == 0
          and res["last"] == res["ok"], "replies were not 1..%d: %s"
          % (res["ok"], res))
    value = counter(c, "rejuv")
    check(value == res["ok"], "counter %d after %d INCRs" % (value, res["ok"]))
    errors = dict(writers.stats.errors)
    retried = sum(v for k, v in errors.items() if k in RETRIED)
    other = {k: v for k, v in errors.items() if k not in RETRIED}
    check(not other and not writers.stats.unexpected,
          "raw writers got errors a client would not retry: %s %s"
          % (other, writers.stats.unexpected[:5]))
    c.wait_converged()
    problems = []
    for i in range(c.n):
        problems += verify_writes(c, writers, i)
    check(not problems, "lost or wrong writes:\n  " +
          "\n  ".join(problems[:30]))
    members = subprocess.run([c.binary, "members", "--cluster",
                              "127.0.0.1:%d" % c.client_ports[0]],
                             capture_output=True, text=True,
                             timeout=30 * c.slow)
    log("cohort members:\n  " + members.stdout.strip().replace("\n", "\n  "))
    check(members.returncode == 0 and "recent view changes" in
          members.stdout and ("cause: transfer" in members.stdout
                              or not handed),
          "cohort members shows no transfer: %s" % members.stdout)
    p, _ = c.wait_for_primary(probe=False)
    inf = c.info(p)
    check(inf.get("transfer_in_progress") == "0"
          and inf.get("rejuvenating") == "0", "INFO after: %s" % inf)
    for i in range(c.n):
        check(c.info(i).get("rejuvenation_in_progress") == "0",
              "r%d still shows a rejuvenation in progress" % i)
    gap = writers.longest_gap(t_begin, t_end)
    c.check_healthy()
    return ("rejuvenated 3 replicas under load in %.1f s; C client: %d "
            "INCRs and %d CAS increments (16 threads each), 0 failed, "
            "longest call %d / %d ms; raw writers: %d acked, "
            "%d retried errors, longest ack gap %.1f ms"
            % (t_end - t_begin, res["ok"], res_cas["ok"], res["max_call_ms"],
               res_cas["max_call_ms"],
               writers.ack_count(), retried, 1000 * gap))


if __name__ == "__main__":
    cl.run_test("rejuvenate", main, budget_s=240)
