#!/usr/bin/env python3
"""test_large_store — a large store must not cost the primary its view
(issue 11, item 2).

A cluster with cohort's default timings (as `cohort up` starts it: 25 ms
heartbeats, a 150 ms suspicion timeout) takes distinct-key SETs one at a
time through a backup until each replica's store holds about 300 MB: 300
values of 1 MiB, then, on a new cluster with --log-memory 128mb, 3,000
values of 100 KiB. The 64 MiB log arena makes every replica snapshot the
whole store every ~32 MiB of writes (~64 MiB with 128mb), so snapshots of
a store growing to
300 MB run all through. Every write must be acknowledged OK, and the view
read from INFO on every replica must be the same after as before: no
replica may suspect a primary that is alive and sending. Then a backup is
killed with SIGKILL and restarted: it must recover from its own snapshot
(every store's snapshot is now streamed to a thread, issue 16) and hold
what the primary holds.

The full form is the issue's reproduction (about 30 s in a release build
on a quiet 2-core machine, 80 s when it is saturated):
`python3 tests/system/test_large_store.py build/cohort`. `make test` runs
half of it in release (COHORT_LARGE_STORE_SCALE=0.5, set in tests.cmake:
150 x 1 MiB and 1,500 x 100 KiB, a 150 MB store, several snapshots per
replica); it is release-only: under the sanitizers the reduced form (the
script's default there, a quarter) still saw a view change on a saturated
machine, so it runs there only by hand.
--scale F (or COHORT_LARGE_STORE_SCALE) sets the fraction.

Failed before the fix (docs/ARCHITECTURE.md, "Stalls"): a view change in
5 of 8 full runs on the loaded machine, e.g. write 205 of 300 got
"-UNKNOWN the primary changed after the write was proposed" after "replica
2 suspected replica 1, the primary of view 1, after 215 ms of silence".

usage: test_large_store.py [path/to/cohort] [--scale F]
"""

import os
import sys

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402

# cohort's own defaults (cmd_server), which the issue's `cohort up` used.
DEFAULT_TIMING = dict(heartbeat_ms=25, suspect_timeout_ms=150,
                      view_change_timeout_ms=300)
# (writes, value size, --log-memory): the second run's larger log arena
# has its free pages given back after each compaction (runtime/node.c,
# release_arena), dozens of times per replica here: a body given back while
# still held would reach a backup damaged (refused by its checksum) or be
# applied as zeros, and the restarted backup would not match the primary.
RUNS = ((300, 1 << 20, None), (3000, 100 << 10, "128mb"))


def views(c):
    """{replica: (view, view_changes)} from INFO on every replica; every
    replica must answer."""
    out = {}
    for i in range(c.n):
        inf = c.info(i, timeout=10.0 * c.slow)
        out[i] = (int(inf["view"]), int(inf["view_changes"]))
    return out


def view_reasons(c):
    """Every view line with its cause, from every replica's log."""
    return "\n".join("r%d: %s" % (i, line) for i in range(c.n)
                     for line in c.log_text(i).splitlines() if "why:" in line)


def restart_from_snapshot(c, p, count, snaps):
    """SIGKILL the backup the client did not use and restart it: it must
    recover from its own snapshot (written by the thread from the stream of
    slices while the writes went on) and its WAL, pass over no snapshot,
    and hold what the primary holds (READONLY: its own store)."""
    k = c.backups(p)[-1]
    check(int(snaps[k]) > 0, "r%d took no snapshot" % k)
    c.kill(k)
    c.restart(k)
    c.wait_converged()
    text = c.log_text(k).split("test harness: SIGKILL")[-1]
    for bad in ("passed over a bad snapshot", "installed a snapshot"):
        check(bad not in text, "r%d on restart: %s (it should recover "
              "from its own snapshot):\n%s" % (k, bad, c.log_tail(k)))
    keys = ["big:%d" % i for i in range(0, count, max(1, count // 25))]
    digests = {}
    for i in (p, k):
        with c.client(i, timeout=30.0 * c.slow) as x:
            x.command("READONLY")
            size = x.command("DBSIZE")
            digests[i] = (size, [bytes(x.command("GETRANGE", key, 0, 63))
                                 for key in keys])
    check(digests[k] == digests[p], "restarted r%d differs from primary "
          "r%d: DBSIZE %d vs %d, or the first bytes of a sampled value"
          % (k, p, digests[k][0], digests[p][0]))
    log("r%d restarted from its snapshot (op %s) and matches r%d: %d keys"
        % (k, snaps[k], p, digests[p][0]))


def one_run(binary, count, size, log_memory):
    extra = ["--log-memory", log_memory] if log_memory else []
    c = cl.Cluster(binary, name="large-store", extra_args=extra,
                   **DEFAULT_TIMING)
    c.start()
    p, _ = c.wait_for_primary()
    c.wait_converged()
    view0 = views(c)
    log("%d x %d KiB through a backup; views before: %s"
        % (count, size >> 10, view0))
    check(len({v for v, _ in view0.values()}) == 1, "views differ before "
          "the writes: %s" % view0)
    b = c.backups(p)[0]
    value = bytearray(os.urandom(64)) * (size // 64)
    with c.client(b, timeout=30.0 * c.slow) as x:
        for k in range(count):
            value[0:8] = b"%08d" % k
            try:
                r = x.command("SET", "big:%d" % k, bytes(value))
            except resp.RespError as e:
                raise cl.TestFailure(
                    "write %d of %d (%d KiB) through backup r%d got -%s; "
                    "views now %s\n%s" % (k + 1, count, size >> 10, b,
                                          e.message, views(c),
                                          view_reasons(c)))
            check(r == "OK", "write %d replied %r" % (k + 1, r))
    after = views(c)
    c.wait_converged()
    snaps = {i: c.info(i, section="persistence")["last_snapshot_op"]
             for i in range(c.n)}
    stalls = {i: "%s/%sms" % (inf["loop_stalls"], inf["loop_stalled_ms"])
              for i, inf in ((i, c.info(i, section="stats"))
                             for i in range(c.n))}
    log("views after: %s; last snapshot ops: %s; loop stalls: %s"
        % (after, snaps, stalls))
    check(after == view0, "the view changed during %d writes of %d KiB "
          "(before %s, after %s)\n%s" % (count, size >> 10, view0, after,
                                          view_reasons(c)))
    with c.client(p) as x:
        check(x.command("DBSIZE") >= count, "DBSIZE below %d" % count)
    restart_from_snapshot(c, p, count, snaps)
    c.finish()
    return "%d x %d KiB" % (count, size >> 10)


def main(binary):
    scale = 1.0 if cl.slowness(binary) <= 1.0 else 0.25
    scale = float(os.environ.get("COHORT_LARGE_STORE_SCALE", scale))
    if "--scale" in sys.argv:
        scale = float(sys.argv[sys.argv.index("--scale") + 1])
    done = []
    for count, size, log_memory in RUNS:
        n = max(1, int(count * scale))
        done.append(one_run(binary, n, size, log_memory))
    return "%s: every write OK, 0 view changes" % ", ".join(done)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("--"):
        sys.argv.insert(1, cl.binary_from_argv())
    cl.run_test("large_store", main, budget_s=240)
