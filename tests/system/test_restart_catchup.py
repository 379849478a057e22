#!/usr/bin/env python3
"""test_restart_catchup — the killed primary comes back and catches up.

Runs test_failover's scenario (SIGKILL the primary under load), then
restarts the killed replica on its data dir while a second load runs. Pass:
the replica recovers and catches up; once the load stops all replicas
report the same view and applied op, the same DBSIZE, and the same value
for every key ever written (read with READONLY from each replica's own
store); every acknowledged write is there.

usage: test_restart_catchup.py [path/to/cohort]
"""

import sys
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402
from test_failover import Failover  # noqa: E402
from workload import Writers, verify_writes  # noqa: E402


def compare_replicas(c, keys, replicas):
    """READONLY MGET of keys and DBSIZE on each replica: all equal.
    Returns the common DBSIZE."""
    views = {}
    sizes = {}
    for i in replicas:
        views[i] = cl.read_all(c, i, keys, readonly=True)
        with c.client(i) as conn:
            conn.command("READONLY")
            sizes[i] = conn.command("DBSIZE")
    ref = replicas[0]
    for i in replicas[1:]:
        diff = [k for k in keys if views[i].get(k) != views[ref].get(k)]
        check(not diff, "replica r%d and r%d disagree on %d keys, e.g. %s: "
              "%r vs %r" % (ref, i, len(diff), diff[0],
                            views[ref].get(diff[0]), views[i].get(diff[0]))
              if diff else "")
    check(len(set(sizes.values())) == 1, "DBSIZE differs: %s" % sizes)
    return sizes[ref]


def readonly_across_restart(c):
    """A key written just before (in the log, not in any snapshot) that the
    backup served; then kill and restart the backup and read it there
    with READONLY as fast as it answers."""
    p, _ = c.wait_for_primary(probe=False)
    b = next(i for i in range(c.n) if i != p)
    key, want = "ro-restart", "v-%d" % time.monotonic_ns()
    check(c.command(p, "SET", key, want) == "OK", "SET %s" % key)
    deadline = time.monotonic() + 10 * c.slow
    while time.monotonic() < deadline:
        with c.client(b) as cl_:
            cl_.command("READONLY")
            if cl_.command("GET", key) in (want, want.encode()):
                break
        time.sleep(0.01)
    c.kill(b)
    c.restart(b, wait=False)
    deadline = time.monotonic() + 20 * c.slow
    answers = {"value": 0, "tryagain": 0, "refused": 0}
    while time.monotonic() < deadline:
        try:
            with c.client(b, timeout=1.0) as cl_:
                cl_.command("READONLY")
                while time.monotonic() < deadline:
                    try:
                        got = cl_.command("GET", key)
                    except resp.RespError as e:
                        check(e.message.startswith(("TRYAGAIN", "LOADING")),
                              "READONLY GET on restarting r%d: -%s"
                              % (b, e.message))
                        answers["tryagain"] += 1
                        continue
                    check(got in (want, want.encode()),
                          "READONLY GET %s on restarting r%d "
                          "answered %r, before the restart %r"
                          % (key, b, got, want))
                    answers["value"] += 1
                    if answers["value"] >= 20:
                        break
        except OSError:
            answers["refused"] += 1
            time.sleep(0.005)
            continue
        if answers["value"] >= 20:
            break
    check(answers["value"] >= 20, "restarted r%d never served %s: %s"
          % (b, key, answers))
    log("READONLY GET across r%d's restart: %s" % (b, answers))
    c.wait_converged(list(range(c.n)))


def main(binary):
    f = Failover(binary)
    f.run(load_before=0.5, load_after=1.0)
    c = f.c
    k = f.killed

    w2 = Writers(c, threads=3, prefix="x").start()
    check(w2.wait_acks(50, 20 * c.slow), "no progress before the restart")
    t0 = time.monotonic()
    c.restart(k)
    log("restarted r%d (pid %d)" % (k, c.pids[k]))
    time.sleep(1.5)
    w2.stop()
    log("second load: %s" % w2.summary())
    check(not w2.stats.unexpected, "unexpected replies: %s"
          % w2.stats.unexpected[:5])

    infos = c.wait_converged(list(range(c.n)))
    t_caught = time.monotonic() - t0
    applied = {i: inf.get("applied_op") for i, inf in infos.items()}
    log("converged %.2fs after the restart: %s (roles %s)"
        % (t_caught, applied, {i: inf.get("role") for i, inf in infos.items()}))

    problems = []
    for i in range(c.n):
        problems += verify_writes(c, f.writers, i, readonly=True)
        problems += verify_writes(c, w2, i, readonly=True)
    check(not problems, "lost or wrong writes after catch-up:\n  "
          + "\n  ".join(problems[:30]))
    keys = sorted(set(f.writers.attempted) | set(w2.attempted)
                  | {f.inc.key, "__probe__"})
    size = compare_replicas(c, keys, list(range(c.n)))
    f.verify(list(range(c.n)))

    # READONLY across a restart: while a killed backup replays its log its
    # store is behind what it served before; it must answer -TRYAGAIN
    # then, never the old state (nil for a key it held).
    readonly_across_restart(c)

    # Rolling restarts under load: kill the primary, restart it right
    # away (it recovers while the others change view), twice.
    w3 = Writers(c, threads=3, prefix="y").start()
    gaps = []
    for rnd in range(2):
        check(w3.wait_acks(w3.ack_count() + 50, 20 * c.slow),
              "no progress before rolling kill %d: %s" % (rnd, w3.summary()))
        p, _ = c.wait_for_primary(probe=False)
        t_kill = time.monotonic()
        c.kill(p)
        c.restart(p)
        deadline = t_kill + 30 * c.slow
        first = None
        while first is None and time.monotonic() < deadline:
            first = w3.first_ack_after(t_kill)
            time.sleep(0.01)
        check(first is not None, "no write acknowledged after rolling kill "
              "%d of r%d: roles %s" % (rnd, p, c.roles()))
        gaps.append(first - t_kill)
        log("rolling kill %d: r%d killed and restarted; first ack after "
            "%.3fs" % (rnd, p, first - t_kill))
        time.sleep(0.5)
    w3.stop()
    check(not w3.stats.unexpected, "unexpected replies: %s"
          % w3.stats.unexpected[:5])
    infos = c.wait_converged(list(range(c.n)))
    keys = sorted(set(keys) | set(w3.attempted))
    problems = []
    for i in range(c.n):
        for w in (f.writers, w2, w3):
            problems += verify_writes(c, w, i, readonly=True)
    check(not problems, "lost or wrong writes after rolling restarts:\n  "
          + "\n  ".join(problems[:30]))
    size = compare_replicas(c, keys, list(range(c.n)))
    return ("r%d restarted and caught up in %.2fs; then 2 rolling primary "
            "kills (first ack after %s); %d replicas agree on applied op "
            "%s, DBSIZE %d and %d keys; %d writes acked, 0 lost; kill -> "
            "first ack %.3fs"
            % (k, t_caught, ", ".join("%.3fs" % g for g in gaps), c.n,
               infos[0].get("applied_op"), size, len(keys),
               f.writers.ack_count() + w2.ack_count() + w3.ack_count(),
               f.timings["kill_to_first_ack_s"]))


if __name__ == "__main__":
    cl.run_test("restart_catchup", main, budget_s=75)
