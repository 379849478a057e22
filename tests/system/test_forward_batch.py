#!/usr/bin/env python3
"""test_forward_batch — pipelined commands through a backup: in order, with
the right replies, and batched on the forward link (issue 16).

1. Order and replies: two connections to a backup each pipeline, in one
   send, 50 rounds of SET k<i>, GET k<i>, INCR n, GET n (every write is
   forwarded as COHORT.REQ, every GET as a linearizable read). Each reply
   must be the one a single Redis server gives: OK, the value just set, the
   counter's next value, that value again.
2. Batching: after one write (a session's first write runs alone), 200
   SETs sent in one send are forwarded, and INFO's forward_link_writes
   grows by a handful, not by 200: the commands of one loop turn leave in
   one socket write. 200 GETs are served by the backup itself after
   read-index rounds, one per loop turn: a handful of COHORT.READINDEX on
   the link, not 200 forwarded GETs. The bound (8) leaves room for a read
   split over loop turns; writing each command on its own makes 200.

3. Through every member at once: one connection to each of the three
   members (so the primary's own client and both backups' links feed the
   same primary turns and the same batches) each pipelines, in one send,
   100 INCRs of a shared counter interleaved with 100 of its own counter.
   Each connection's own counter must answer 1..100 in order; its shared
   counter replies must rise; the 300 shared replies must be exactly
   1..300 (no INCR lost, applied twice or answered to the wrong
   connection) and a final GET must say 300.

-TRYAGAIN or -UNKNOWN (a view change on a loaded machine) restarts a step
on fresh keys, a bounded number of times.

usage: test_forward_batch.py [path/to/cohort]
"""

import socket
import sys

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402

ROUNDS = 50
MEMBER_INCRS = 100
BATCH = 200
LINK_WRITES_MAX = 8
TRIES = 5


class Retry(Exception):
    pass


def is_retry(reply):
    return isinstance(reply, resp.RespError) and \
        reply.code in ("TRYAGAIN", "UNKNOWN")


def mixed_commands(tag):
    out = []
    for i in range(ROUNDS):
        out += [("SET", "%s:k%d" % (tag, i), "v%d" % i),
                ("GET", "%s:k%d" % (tag, i)),
                ("INCR", "%s:n" % tag),
                ("GET", "%s:n" % tag)]
    return out


def check_mixed(tag, replies):
    if any(is_retry(r) for r in replies):
        raise Retry(tag)
    for i in range(ROUNDS):
        got = replies[4 * i:4 * i + 4]
        want = ["OK", b"v%d" % i, i + 1, b"%d" % (i + 1)]
        check(got == want, "%s round %d: got %r, want %r" %
              (tag, i, got, want))


def ordered_step(c, b, attempt):
    tags = ["order%d-a" % attempt, "order%d-b" % attempt]
    xs = [c.client(b, timeout=10 * c.slow) for _ in tags]
    try:
        cmds = [mixed_commands(t) for t in tags]
        for x, cs in zip(xs, cmds):
            x.send_raw(b"".join(resp.encode_command(*cm) for cm in cs))
        for x, cs, t in zip(xs, cmds, tags):
            check_mixed(t, [x.read_reply() for _ in cs])
    finally:
        for x in xs:
            x.close()


def all_members_step(c, attempt):
    shared = "shared%d" % attempt
    xs = [c.client(i, timeout=10 * c.slow) for i in range(3)]
    try:
        cmds = []
        for i in range(3):
            own = "own%d:%d" % (attempt, i)
            cs = []
            for _ in range(MEMBER_INCRS):
                cs += [("INCR", shared), ("INCR", own)]
            cmds.append(cs)
        for x, cs in zip(xs, cmds):
            x.send_raw(b"".join(resp.encode_command(*cm) for cm in cs))
        seen = []
        for i, (x, cs) in enumerate(zip(xs, cmds)):
            replies = [x.read_reply() for _ in cs]
            if any(is_retry(r) for r in replies):
                raise Retry("member %d" % i)
            mine, ours = replies[1::2], replies[0::2]
            check(mine == list(range(1, MEMBER_INCRS + 1)),
                  "member %d: own counter answered %r..., want 1..%d in "
                  "order" % (i, mine[:8], MEMBER_INCRS))
            check(all(isinstance(v, int) for v in ours) and
                  ours == sorted(ours),
                  "member %d: shared counter replies not rising: %r..." %
                  (i, ours[:8]))
            seen += ours
        total = 3 * MEMBER_INCRS
        check(sorted(seen) == list(range(1, total + 1)),
              "shared counter: %d replies, %d distinct, range %r..%r; want "
              "exactly 1..%d" % (len(seen), len(set(seen)), min(seen),
                                 max(seen), total))
        got = xs[0].pipeline([("GET", shared)])[0]
        if is_retry(got):
            raise Retry("final GET")
        check(got == b"%d" % total,
              "shared counter is %r after %d INCRs" % (got, total))
    finally:
        for x in xs:
            x.close()


def link_counters(c, b):
    """(commands forwarded, link writes, reads the backup served itself)."""
    inf = c.info(b, "stats", timeout=5 * c.slow)
    check("forward_link_writes" in inf,
          "INFO stats has no forward_link_writes: %r" % sorted(inf))
    return (int(inf["forwarded_commands"]), int(inf["forward_link_writes"]),
            int(inf["backup_reads_served"]))


def batch_step(c, b, attempt, kind):
    with c.client(b, timeout=10 * c.slow) as x:
        # A session's first write runs alone (cmd_store.c, the gate).
        first = x.pipeline([("SET", "batch%d:first" % attempt, "x")])[0]
        if is_retry(first):
            raise Retry(kind)
        check(first == "OK", "first SET: %r" % first)
        f0, w0, s0 = link_counters(c, b)
        if kind == "SET":
            cmds = [("SET", "batch%d:%d" % (attempt, i), "v")
                    for i in range(BATCH)]
        else:
            cmds = [("GET", "batch%d:%d" % (attempt, i % 7))
                    for i in range(BATCH)]
        replies = x.pipeline(cmds)  # one send()
        if any(is_retry(r) for r in replies):
            raise Retry(kind)
        bad = [r for r in replies if isinstance(r, resp.RespError)]
        check(not bad, "%s batch: errors %r" % (kind, bad[:3]))
        f1, w1, s1 = link_counters(c, b)
    if kind == "SET":
        check(f1 - f0 >= BATCH, "%s batch: %d forwarded, expected >= %d" %
              (kind, f1 - f0, BATCH))
    else:
        # Served by the backup after read-index rounds (COHORT.READINDEX,
        # one per loop turn, counted as forwarded commands), unless a
        # round failed or lagged: then forwarded one by one.
        check((s1 - s0) + (f1 - f0) >= BATCH,
              "GET batch: %d served here + %d forwarded, expected >= %d" %
              (s1 - s0, f1 - f0, BATCH))
        check(f1 - f0 <= LINK_WRITES_MAX,
              "GET batch: %d commands on the link for %d GETs (%d served "
              "here): expected one read-index round per loop turn" %
              (f1 - f0, BATCH, s1 - s0))
    check(w1 - w0 <= LINK_WRITES_MAX,
          "%s batch: %d forwarded commands took %d link writes (at most "
          "%d expected: one per loop turn)" %
          (kind, f1 - f0, w1 - w0, LINK_WRITES_MAX))
    return w1 - w0


def with_retries(what, fn):
    for attempt in range(TRIES):
        try:
            return fn(attempt)
        except (Retry, socket.timeout) as e:
            log("%s: attempt %d: %r; again on fresh keys" %
                (what, attempt, e))
    raise cl.TestFailure("%s: -TRYAGAIN/-UNKNOWN or timeouts on %d "
                         "attempts" % (what, TRIES))


def run(binary):
    c = cl.Cluster(binary, n=3, name="forward-batch")
    c.start()
    p, _ = c.wait_for_primary()
    # Every member a backup or the primary of one view first: the member
    # picked may still be recovering when the primary answers (tens of ms
    # in a release build, hundreds under ASan), and answers TRYAGAIN then.
    c.wait_converged()
    b = c.backups(p)[0]
    log("primary %d, pipelining through backup %d" % (p, b))
    with_retries("mixed pipeline", lambda a: ordered_step(c, b, a))
    w_set = with_retries("SET batch", lambda a: batch_step(c, b, a, "SET"))
    w_get = with_retries("GET batch", lambda a: batch_step(c, b, a, "GET"))
    with_retries("INCRs through every member",
                 lambda a: all_members_step(c, a))
    c.check_healthy()
    return ("2x%d mixed rounds in order; %d SETs in %d link writes, %d GETs "
            "in %d; 3x%d INCRs through all members exactly once" %
            (ROUNDS, BATCH, w_set, BATCH, w_get, MEMBER_INCRS))


if __name__ == "__main__":
    cl.run_test("forward_batch", run, budget_s=120)
