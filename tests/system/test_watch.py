#!/usr/bin/env python3
"""test_watch — revisions and watches that survive failover (issue 14,
items 1 and 2).

Checks, on a 3-replica cluster (each member retains 1,000 events):
  - shapes: COHORT.GET key [WITHREV]; COHORT.WATCH KEY / PREFIX
    confirmations and events (set, del, expire, and the several events of
    one MSET, RENAME, MULTI/EXEC and FLUSHALL at one revision); RESP2
    subscriber mode (GET refused, PING) and RESP3 pushes; COHORT.UNWATCH;
    bad input (unknown form, bad FROM, FROM on a watching connection, an
    over-long name, COHORT.GET with a bad option); ACL key patterns (a
    user with ~app:* may watch keys and prefixes under app: only);
  - failover: a prefix watcher on the primary reads part of a stream that
    two writers (COHORT.REQ, so a retry is never applied twice) keep
    writing; the primary is SIGKILLed mid-stream; the watcher resumes on a
    backup with FROM <last revision seen> and gets exactly the rest: every
    value once, per-writer order kept, revisions in order; a FROM 0
    watcher on the other backup agrees event for event; the old primary
    restarts and serves the same rest FROM the same revision;
  - retention: past the 1,000 retained events FROM an old revision is
    refused as compacted, naming the oldest accepted, which works; a
    watcher that does not read is cut off with an error after the events
    it was given, in order and without a gap.

usage: test_watch.py [path/to/cohort]
"""

import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log, retry  # noqa: E402

HISTORY = 1000
PER_WRITER = 300


def read_events(k, want, deadline, what):
    """Read pushes from watcher k until `want` events arrived; returns them
    as (revision, kind, key, value)."""
    got = []
    while len(got) < want:
        left = deadline - time.monotonic()
        check(left > 0, "%s: %d of %d events before the deadline"
              % (what, len(got), want))
        k.timeout = left
        r = k.read_reply()
        if isinstance(r, resp.RespError):
            raise cl.TestFailure("%s: error after %d events: %s"
                                 % (what, len(got), r.message))
        check(isinstance(r, list) and len(r) == 5 and r[0] == b"watch",
              "%s: not an event: %r" % (what, r))
        got.append(tuple(r[1:]))
    return got


def watch(k, *args):
    k.send_raw(resp.encode_command("COHORT.WATCH", *args))
    r = k.read_reply()
    check(isinstance(r, list) and r[0] == b"watching",
          "COHORT.WATCH %r: %r" % (args, r))
    return r


def error_of(k, *args):
    k.send_raw(resp.encode_command(*args))
    e = k.read_reply()
    check(isinstance(e, resp.RespError), "%r: not an error: %r" % (args, e))
    return e.message


def shapes(c, p, b):
    with c.client(p) as q, c.client(p) as k:
        q.command("SET", "g", "v")
        r = q.command("COHORT.GET", "g", "WITHREV")
        check(len(r) == 4 and r[0] == b"v" and r[2] == 1 and
              0 < r[1] <= r[3], "COHORT.GET WITHREV: %r" % r)
        info = q.command("KVINFO", "g")
        check(info[info.index(b"mod_op") + 1] == r[1], "revision = mod_op")
        check(q.command("COHORT.GET", "g") == b"v", "COHORT.GET")
        m = q.command("COHORT.GET", "nokey", "WITHREV")
        check(m[:3] == [None, 0, 0] and m[3] >= r[1], "missing: %r" % m)
        check("syntax" in error_of(q, "COHORT.GET", "g", "WITHVER"),
              "COHORT.GET bad option")
        conf = watch(k, "PREFIX", "s/")
        check(conf[1:3] == [b"prefix", b"s/"] and conf[4] == 1 and
              conf[3] >= r[3], "confirmation: %r" % conf)
        conf2 = watch(k, "KEY", "t")
        check(conf2[1:3] == [b"key", b"t"] and conf2[4] == 2,
              "second watch: %r" % conf2)
        check(k.command("PING") == [b"pong", b""], "PING while watching")
        msg = error_of(k, "GET", "g")
        check("COHORT.WATCH" in msg and "allowed in this context" in msg,
              "GET while watching on RESP2: %s" % msg)
        q.command("SET", "s/a", "1")
        q.command("MSET", "s/b", "2", "x", "0", "t", "3")
        q.command("RENAME", "s/a", "s/c")
        q.pipeline([("MULTI",), ("SET", "s/d", "4"), ("DEL", "s/b"),
                    ("EXEC",)])
        q.command("SET", "s/e", "5", "PX", "1")
        # The primary's expiry sweeper removes s/e by an EXPIRE_DUE op:
        # read until its event comes, then FLUSHALL.
        got = read_events(k, 9, time.monotonic() + 30 * c.slow, "shapes")
        q.command("FLUSHALL")
        got += read_events(k, 1, time.monotonic() + 30 * c.slow, "FLUSHALL")
    kinds = [(kind, key, val) for _, kind, key, val in got]
    want_start = [(b"set", b"s/a", b"1"), (b"set", b"s/b", b"2"),
                  (b"set", b"t", b"3"), (b"set", b"s/c", b"1"),
                  (b"del", b"s/a", None), (b"set", b"s/d", b"4"),
                  (b"del", b"s/b", None), (b"set", b"s/e", b"5")]
    check(kinds[:8] == want_start, "events: %r" % kinds)
    revs = [e[0] for e in got]
    check(revs == sorted(revs) and revs[1] == revs[2] and revs[3] == revs[4]
          and revs[5] == revs[6], "revisions: %r" % revs)
    tail = kinds[8:]
    check(tail == [(b"expire", b"s/e", None), (b"del", b"s/c", None)],
          "expiry, then FLUSHALL's del of s/c: %r" % tail)
    log("shapes: WITHREV, set/del/expire, MSET, RENAME, MULTI, FLUSHALL "
        "(%d events)" % len(got))
    with c.client(b) as k:
        h = k.command("HELLO", "3")
        check(isinstance(h, dict), "HELLO 3")
        start = len(k.buf)
        watch(k, "KEY", "r3")
        check(bytes(k.buf[start:start + 4]) == b">5\r\n", "a push")
        check(k.command("GET", "r3") is None, "GET on RESP3 while watching")
        with c.client(p) as q:
            q.command("SET", "r3", "v")
        pos = k.pos
        e = read_events(k, 1, time.monotonic() + 20 * c.slow, "RESP3")
        check(bytes(k.buf[pos:pos + 4]) == b">5\r\n" and
              e[0][1:] == (b"set", b"r3", b"v"), "RESP3 event %r" % e)
        check(k.command("COHORT.UNWATCH") ==
              [b"unwatching", b"key", b"r3", 0], "UNWATCH")
        check(k.command("COHORT.UNWATCH") == [b"unwatching", None, None, 0],
              "UNWATCH with none")
    with c.client(b) as k:
        bad = [
            (("COHORT.WATCH", "KEYS", "x"), "syntax error"),
            (("COHORT.WATCH", "KEY"), "wrong number"),
            (("COHORT.WATCH", "KEY", "x", "FROM"), "syntax error"),
            (("COHORT.WATCH", "KEY", "x", "FROM", "-1"), "not an integer"),
            (("COHORT.WATCH", "KEY", "x", "FROM", "z"), "not an integer"),
            (("COHORT.WATCH", "KEY", "x", "SINCE", "1"), "syntax error"),
            (("COHORT.WATCH", "PREFIX", "k" * 70000), "longer than any key"),
            (("COHORT.UNWATCH", "KEY"), "syntax error"),
        ]
        for args, want in bad:
            msg = error_of(k, *args)
            check(want in msg, "%r: %s" % (args[:4], msg))
        watch(k, "KEY", "x")
        msg = error_of(k, "COHORT.WATCH", "KEY", "y", "FROM", "1")
        check("needs a connection without watches" in msg, msg)
    log("RESP3 pushes, UNWATCH, %d bad inputs refused" % (len(bad) + 1))
    with c.client(p) as q, c.client(p) as k:
        check(q.command("ACL", "SETUSER", "wu", "on", ">pw", "~app:*",
                        "~one", "+@all") == "OK", "ACL SETUSER")
        check(k.command("AUTH", "wu", "pw") == "OK", "AUTH")
        for args in (("KEY", "app:x"), ("PREFIX", "app:y"), ("KEY", "one")):
            watch(k, *args)
        for args in (("PREFIX", "ap"), ("PREFIX", ""), ("KEY", "other"),
                     ("PREFIX", "one")):
            msg = error_of(k, "COHORT.WATCH", *args)
            check(msg.startswith("NOPERM"), "%r: %s" % (args, msg))
    log("ACL: a user with ~app:* watches under app: only")


def req(c, members, cid, seq, *cmd):
    """COHORT.REQ cid seq cmd, trying members in turn until one answers
    (a retry of a request is never applied twice)."""
    def once():
        last = None
        for i in members:
            if not c.alive(i):
                continue
            try:
                with c.client(i, timeout=3 * c.slow) as k:
                    return k.command("COHORT.REQ", cid, seq, *cmd)
            except (resp.RespError, OSError) as e:
                last = e
        raise last or OSError("no member alive")
    return retry(c, once, "%r" % (cmd,), 40 * c.slow)


def writer(c, members, w, done, errors):
    cid = str(int.from_bytes(os.urandom(7), "little") + 1)
    try:
        for j in range(PER_WRITER):
            req(c, members, cid, j + 1, "SET", "w/%d/%d" % (w, j % 7),
                "%d-%d" % (w, j))
            done[w] = j + 1
    except Exception as e:  # reported by the main thread
        errors.append("writer %d: %r" % (w, e))


def check_stream(events, what):
    """Every value of both writers once, each writer's in order, revisions
    non-decreasing."""
    revs = [e[0] for e in events]
    check(revs == sorted(revs), "%s: revisions out of order" % what)
    vals = [e[3].decode() for e in events if e[1] == b"set"]
    check(len(vals) == len(set(vals)), "%s: a value twice" % what)
    for w in range(2):
        mine = [int(v.split("-")[1]) for v in vals if v.startswith("%d-" % w)]
        check(mine == list(range(PER_WRITER)),
              "%s: writer %d's values: %d, in order: %s"
              % (what, w, len(mine), mine == sorted(mine)))


def failover(c):
    p, _ = c.wait_for_primary()
    backups = c.backups(p)
    members = [p] + backups
    k = c.client(p, timeout=10 * c.slow)
    start = watch(k, "PREFIX", "w/")[3]
    done, errors, threads = [0, 0], [], []
    for w in range(2):
        t = threading.Thread(target=writer, args=(c, members, w, done,
                                                  errors))
        t.start()
        threads.append(t)
    first = read_events(k, 150, time.monotonic() + 60 * c.slow,
                        "before the failover")
    k.close()
    last = first[-1][0]
    log("read %d events up to revision %d (writers at %r); SIGKILL of the "
        "primary r%d" % (len(first), last, done, p))
    c.kill(p)
    for t in threads:
        t.join(120 * c.slow)
    check(not errors, "; ".join(errors))
    b, o = backups
    total = 2 * PER_WRITER
    # A marker after the last write: what arrives before it is the rest.
    req(c, backups, "77", 1, "SET", "w/end", "end")
    with c.client(b, timeout=10 * c.slow) as k2:
        watch(k2, "PREFIX", "w/", "FROM", str(last))
        rest = read_events(k2, total - len(first) + 1,
                           time.monotonic() + 60 * c.slow,
                           "after the failover")
    check(rest[-1][2:] == (b"w/end", b"end"), "the marker comes last: %r"
          % (rest[-1],))
    check(rest[0][0] > last, "FROM %d gave revision %d" % (last, rest[0][0]))
    check_stream(first + rest[:-1], "resumed stream")
    with c.client(o, timeout=10 * c.slow) as k3:
        watch(k3, "PREFIX", "w/", "FROM", str(start))
        full = read_events(k3, total + 1, time.monotonic() + 60 * c.slow,
                           "FROM %d on r%d" % (start, o))
    check(full == first + rest, "FROM %d on r%d disagrees" % (start, o))
    log("resumed on r%d FROM %d after the failover: %d events, no loss, "
        "duplicate or reordering; r%d FROM %d agrees"
        % (b, last, len(first) + len(rest), o, start))
    c.restart(p)
    with c.client(p, timeout=10 * c.slow) as k4:
        watch(k4, "PREFIX", "w/", "FROM", str(last))
        again = read_events(k4, len(rest), time.monotonic() + 60 * c.slow,
                            "FROM on the restarted r%d" % p)
    check(again == rest, "the restarted r%d's stream differs" % p)
    log("r%d restarted and served the same %d events FROM %d"
        % (p, len(rest), last))
    return b, len(first) + len(rest) + len(full) + len(again)


def retention(c, i):
    big = "x" * 8192
    with c.client(i, timeout=20 * c.slow) as pub:
        lazy = socket.create_connection(("127.0.0.1", c.client_ports[i]))
        lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        lazy.sendall(resp.encode_command("COHORT.WATCH", "PREFIX", "big/"))
        buf = b""
        while b"big/\r\n" not in buf or not buf.endswith(b":1\r\n"):
            lazy.settimeout(10 * c.slow)
            chunk = lazy.recv(4096)
            check(chunk, "lazy watcher closed early")
            buf += chunk
        n_writes = 2500
        for j in range(0, n_writes, 100):
            batch = [("SET", "big/%d" % (x % 10), "%d:%s" % (x, big))
                     for x in range(j, j + 100)]
            retry(c, lambda: pub.pipeline(batch), "SET big", 30 * c.slow)
        # Until this member has applied every write its ring still moves:
        # a watcher FROM its oldest revision could be overtaken.
        c.wait_converged()
        with c.client(i) as q:
            msg = error_of(q, "COHORT.WATCH", "PREFIX", "big/", "FROM", "1")
            check("is compacted" in msg and "the oldest FROM it accepts"
                  in msg, "FROM 1: %s" % msg)
            oldest = int(msg.split("after revision ")[1].split(",")[0])
            watch(q, "PREFIX", "big/", "FROM", str(oldest))
            deadline = time.monotonic() + 30 * c.slow
            got = read_events(q, 1, deadline, "FROM oldest")
            while not got[-1][3].startswith(b"%d:" % (n_writes - 1)):
                got += read_events(q, 1, deadline, "FROM oldest")
            nums = [int(e[3].split(b":")[0]) for e in got]
            check(nums == list(range(nums[0], n_writes)) and
                  len(nums) >= HISTORY - 20 and got[0][0] > oldest,
                  "FROM the oldest: %d..%d" % (nums[0], nums[-1]))
        log("FROM 1 refused: %s" % msg)
        k = resp.Client.__new__(resp.Client)
        k.host, k.port, k.timeout = "127.0.0.1", c.client_ports[i], 20
        k.sock, k.buf, k.pos = lazy, bytearray(), 0
        n = 0
        while True:
            r = k.read_reply()
            if isinstance(r, resp.RespError):
                check("fell behind" in r.message and "compacted" in
                      r.message, "cut: %r" % r.message)
                break
            check(r[0] == b"watch" and r[4].startswith(b"%d:" % n),
                  "lazy watcher's event %d: %r" % (n, r[4][:10]))
            n += 1
        check(k.closed_by_peer(5 * c.slow), "closed after the cut")
        lazy.close()
        check(0 < n < n_writes, "cut after %d events" % n)
    stats = c.info(i, "stats")
    check(int(stats.get("watch_watchers_cut", "0")) >= 1 and
          stats.get("watch_history_events") == str(HISTORY) and
          int(stats.get("watch_events_delivered", "0")) >= n and
          stats.get("watch_history_floor") == str(oldest),
          "INFO stats: %r" % {k: v for k, v in stats.items()
                              if k.startswith("watch")})
    log("a watcher that did not read was cut off after %d events, in "
        "order: %s" % (n, r.message))
    return len(got) + n


def fan_out(c, p):
    """Large values to many watchers are written a few MiB per loop turn:
    3 SETs of 1 MB watched by 60 connections (180 MB of events) were
    written in the turns that applied them, holding the loop for seconds
    (a view change). Past the turn's budget a watcher falls behind and is
    fed from the change history in the next turns: every one still gets
    the 3 events, in order, with their values."""
    n, size = 60, 1000000
    ws = [c.client(p, timeout=60 * c.slow) for _ in range(n)]
    try:
        for k in ws:
            watch(k, "KEY", "fan")
        before = c.info(p, "stats")
        vals = [bytes([0x41 + i]) * size for i in range(3)]
        cid = str(int.from_bytes(os.urandom(6), "little") | 1)
        for i, v in enumerate(vals):
            check(req(c, [p] + c.backups(p), cid, i + 1, "SET", "fan", v)
                  == "OK", "SET fan #%d" % i)
        deadline = time.monotonic() + 60 * c.slow
        for i, k in enumerate(ws):
            got = read_events(k, 3, deadline, "watcher %d" % i)
            check([e[3] for e in got] == vals and
                  [e[1] for e in got] == [b"set"] * 3 and
                  got[0][0] < got[1][0] < got[2][0],
                  "watcher %d: events out of order or changed" % i)
        turns = c.stat_growth(p, before, "read_pace_feed_waits")
        check(turns > 0, "r%d wrote 180 MB of events without running out "
              "of a turn's room (read_pace_feed_waits)" % p)
    finally:
        for k in ws:
            k.close()
    log("fan-out: 3 SETs of 1 MB to %d watchers, in order; %d deliveries "
        "waited for a later turn" % (n, turns))


def scenario(binary):
    c = cl.Cluster(binary, n=3, name="watch",
                   extra_args=["--pubsub-history-messages", str(HISTORY)])
    c.start()
    p, _ = c.wait_for_primary()
    backups = c.backups(p)
    log("primary r%d, backups %s" % (p, backups))
    shapes(c, p, backups[0])
    fan_out(c, p)
    b, checked = failover(c)
    checked += retention(c, b)
    log("%d events checked in all" % checked)
    return ("shapes, bad input, fan-out, failover and restart resume, "
            "compaction, cut")


if __name__ == "__main__":
    cl.run_test("watch", scenario, budget_s=240)
