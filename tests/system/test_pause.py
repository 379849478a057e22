#!/usr/bin/env python3
"""test_pause — SIGSTOP the primary (a process pause, as a long GC or a
stalled VM), let the others take over, then SIGCONT it.

Under write load: SET zk=before (acknowledged), SIGSTOP the primary, write
zk=after through the other replicas until acknowledged (a new primary), a
client connects to the paused replica and queues a GET zk there, then
SIGCONT. Pass: the resumed old primary never answers the old value for a
linearizable GET (neither the GET queued while it was paused nor fresh ones
right after it resumes), every acknowledged write reads back, and the group
converges with the old primary as a backup.

usage: test_pause.py [path/to/cohort]
"""

import sys
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402
from workload import Writers, verify_writes  # noqa: E402


def set_until_acked(c, targets, key, value, timeout):
    deadline = time.monotonic() + timeout
    last = None
    k = 0
    while time.monotonic() < deadline:
        i = targets[k % len(targets)]
        k += 1
        try:
            if c.command(i, "SET", key, value, timeout=1.0 * c.slow) == "OK":
                return i
        except (OSError, resp.RespError, resp.ProtocolError) as e:
            last = e
        time.sleep(0.01)
    raise cl.TestFailure("SET %s=%s not acknowledged by %s within %.0fs "
                         "(last: %r); roles %s" % (key, value, targets,
                                                   timeout, last, c.roles()))


def main(binary):
    c = cl.Cluster(binary, n=3, name="pause")
    c.start()
    p, _ = c.wait_for_primary()
    others = [i for i in range(c.n) if i != p]
    w = Writers(c, threads=3).start()
    check(w.wait_acks(100, 20 * c.slow), "no progress: %s" % w.summary())
    set_until_acked(c, [p], "zk", "before", 10 * c.slow)

    # A connection to the primary made before the pause, used after it.
    early = c.client(p, timeout=10 * c.slow)
    early.command("PING")
    c.pause(p)
    t0 = time.monotonic()
    log("SIGSTOP primary r%d" % p)
    via = set_until_acked(c, others, "zk", "after", 30 * c.slow)
    t_after = time.monotonic() - t0
    np, _ = c.wait_for_primary(probe=False)
    log("zk=after acknowledged through r%d %.2fs into the pause; primary "
        "now r%d" % (via, t_after, np))
    check(np != p, "the paused replica is still the primary")

    # Queue a linearizable read on the paused replica, then resume it.
    early.send_raw(resp.encode_command("GET", "zk"))
    time.sleep(0.2)
    c.resume(p)
    log("SIGCONT r%d after %.2fs" % (p, time.monotonic() - t0))
    stale = []
    try:
        r = early.read_reply()
        log("GET zk queued while paused -> %r" % (r,))
        if r == b"before":
            stale.append("the GET queued while r%d was paused" % p)
    except (OSError, resp.ProtocolError) as e:
        log("GET zk queued while paused -> %r (allowed)" % e)
    early.close()
    reads = 0
    deadline = time.monotonic() + 2.0 * c.slow
    while time.monotonic() < deadline:
        try:
            r = c.command(p, "GET", "zk", timeout=2.0 * c.slow)
            reads += 1
            if r == b"before":
                stale.append("a GET on r%d %.3fs after it resumed"
                             % (p, time.monotonic() - t0))
            else:
                check(r == b"after", "GET zk on r%d: %r" % (p, r))
        except resp.RespError as e:
            check(e.code in ("TRYAGAIN", "UNKNOWN", "NOQUORUM", "LOADING"),
                  "GET zk on the resumed r%d: -%s" % (p, e.message))
        except OSError:
            pass
        time.sleep(0.01)
    check(not stale, "stale reads (zk=before after zk=after was "
          "acknowledged): %s" % "; ".join(stale[:5]))

    time.sleep(0.5)
    w.stop()
    check(not w.stats.unexpected, "unexpected replies: %s"
          % w.stats.unexpected[:5])
    infos = c.wait_converged()
    check(infos[p].get("role") == "backup" or
          int(infos[p].get("view", 0)) > 0,
          "r%d after the pause: %s" % (p, infos[p]))
    problems = []
    for i in range(c.n):
        problems += verify_writes(c, w, i)
        problems += verify_writes(c, w, i, readonly=True)
    check(not problems, "after the pause:\n  " + "\n  ".join(problems[:30]))
    return ("primary r%d paused; zk=after acked %.2fs into the pause; %d "
            "reads on the resumed replica, none stale; %d writes acked, 0 "
            "lost" % (p, t_after, reads, w.ack_count()))


if __name__ == "__main__":
    cl.run_test("pause", main, budget_s=60)
