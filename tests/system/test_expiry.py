#!/usr/bin/env python3
"""test_expiry — keys expire by log time on a real 3-replica group.

1. Idle log: a key set with PX counts down (PTTL) and, with no other write
   at all, disappears on every member: linearizable GETs everywhere, and
   READONLY reads of each member's own store once the primary's EXPIRE_DUE
   op has removed it. INFO expired_keys counts it on every member.
   MULTI/EXEC may queue EXPIRE and TTL; a WATCHed key that expires before
   EXEC makes it answer nil.
2. Many keys expiring together (20000, or fewer under sanitizers) are
   removed by the primary in many bounded EXPIRE_DUE ops (INFO
   expire_ops_proposed grows by at least keys / 256) while a client's
   writes keep succeeding; DBSIZE drops back on every member.
3. Failover: a key with EX survives a SIGKILL of the primary with its
   remaining TTL (present until shortly before its deadline, a margin scaled
   by the build's slowness) and is gone after it. A key that a linearizable
   read has seen expire stays gone after the primary that served that read
   is killed at once (before or after its removal committed).
4. Errors name the command typed: SETEX, PSETEX, GETEX, SET EX/PX and the
   EXPIRE family with a zero, negative or overflowing time answer Redis 7's
   "invalid expire time in '<command>' command", through a backup too.

Every wait is a poll with a bounded deadline; nothing asserts a timing.

usage: test_expiry.py [path/to/cohort]
"""

import sys
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402


def write(c, *args, tries=None):
    """A command through whichever member answers, retried across a
    failover."""
    deadline = time.monotonic() + (tries or 20 * c.slow)
    last = None
    while time.monotonic() < deadline:
        for i in c.live():
            try:
                r = c.command(i, *args)
                if isinstance(r, Exception) or (
                        isinstance(r, str) and r.startswith(("TRYAGAIN",
                                                             "UNKNOWN"))):
                    last = r
                    continue
                return r
            except Exception as e:  # refused or TRYAGAIN while failing over
                last = e
        time.sleep(0.1)
    raise cl.TestFailure("command %s never answered: %r" % (args, last))


def read_on(c, i, *args, readonly=True):
    with c.client(i) as cl_:
        if readonly:
            cl_.command("READONLY")
        return cl_.command(*args)


def gone_everywhere(c, key, readonly):
    def probe():
        try:
            return all(read_on(c, i, "GET", key, readonly=readonly) is None
                       for i in c.live())
        except (resp.RespError, OSError):
            return False
    return probe


def idle_expiry(c, p):
    slow = c.slow
    before = [int(c.info(i, "stats").get("expired_keys", "0"))
              for i in c.live()]
    check(write(c, "SET", "short", "v", "PX", "1000") == "OK", "SET PX")
    pttl = c.command(p, "PTTL", "short")
    check(0 < pttl <= 1000, "PTTL after SET PX: %r" % pttl)
    check(c.command(p, "TTL", "plain") == -2, "TTL of a missing key")
    # From here on nothing writes: the log is idle.
    later = cl.poll("PTTL counting down", 10 * slow,
                 lambda: (lambda v: v if v < pttl else None)(
                     c.command(p, "PTTL", "short")))
    check(later >= -2, "PTTL %r" % later)
    cl.poll("the 1 s key hidden from linearizable reads on every member",
         20 * slow, gone_everywhere(c, "short", readonly=False))
    cl.poll("the 1 s key removed from every member's store", 20 * slow,
         gone_everywhere(c, "short", readonly=True))
    after = [int(c.info(i, "stats").get("expired_keys", "0"))
             for i in c.live()]
    check(all(a >= b + 1 for a, b in zip(after, before)),
          "expired_keys before %r after %r" % (before, after))
    log("1 s key gone on every member with no other write")


def txn_expiry(c, p):
    slow = c.slow
    with c.client(p) as x:
        check(x.command("SET", "tx", "v") == "OK", "SET")
        # SETEX and PSETEX are SET EX/PX, through the server's table too.
        check(x.command("SETEX", "sx", "100", "v") == "OK", "SETEX")
        check(x.command("GET", "sx") == b"v", "GET after SETEX")
        check(x.command("TTL", "sx") == 100, "TTL after SETEX")
        check(x.command("PSETEX", "sx", "5000", "w") == "OK", "PSETEX")
        check(0 < x.command("PTTL", "sx") <= 5000, "PTTL after PSETEX")
        r = x.pipeline([("SETEX", "sx", "0", "v")])[0]
        check("invalid expire time in 'setex'" in str(r), "SETEX 0: %r" % r)
        # Gone before mass_expiry counts keys (it would expire meanwhile).
        check(x.command("DEL", "sx") == 1, "DEL sx")
        check(x.command("MULTI") == "OK", "MULTI")
        check(x.command("EXPIRE", "tx", "100") == "QUEUED", "EXPIRE queued")
        check(x.command("TTL", "tx") == "QUEUED", "TTL queued")
        r = x.command("EXEC")
        check(r == [1, 100], "EXEC of EXPIRE, TTL: %r" % r)
        # A WATCHed key that expires before EXEC aborts it, as in Redis.
        check(x.command("SET", "wk", "v", "PX", "300") == "OK", "SET PX")
        check(x.command("WATCH", "wk") == "OK", "WATCH")
        cl.poll("the watched key expired", 20 * slow,
             lambda: c.command(p, "GET", "wk") is None)
        check(x.command("MULTI") == "OK", "MULTI")
        check(x.command("SET", "wk", "new") == "QUEUED", "SET queued")
        r = x.command("EXEC")
        check(r is None, "EXEC after the WATCHed key expired: %r" % r)
    log("EXPIRE and TTL inside MULTI; an expired WATCHed key aborts EXEC")


def stored_keys(c, i):
    """Keys in member i's store, expired ones not yet removed included
    (INFO keyspace db0 keys=; no db0 line when the store is empty)."""
    db0 = c.info(i, "keyspace").get("db0")
    return 0 if db0 is None else int(db0.split(",")[0][5:])


def mass_expiry(c, p):
    slow = c.slow
    n = 20000 if slow <= 1 else 5000
    ttl_ms = int(3000 * slow)
    # Earlier steps leave keys with expiries (up to 100 s); one that expires
    # while this step counts would hold DBSIZE below base + writes for good
    # on a slow build. Start from an empty store.
    check(write(c, "FLUSHALL") == "OK", "FLUSHALL")
    cl.poll("an empty store before the mass expiry", 20 * slow,
         lambda: int(c.command(p, "DBSIZE")) == 0 and
         stored_keys(c, p) == 0)
    base = 0
    proposed0 = int(c.info(p, "stats")["expire_ops_proposed"])
    with c.client(p, timeout=30) as cl_:
        for s in range(0, n, 1000):
            replies = cl_.pipeline([("SET", "mass:%d" % i, "v", "PX",
                                     str(ttl_ms))
                                    for i in range(s, min(n, s + 1000))])
            check(all(r == "OK" for r in replies), "SET PX in bulk: %r"
                  % [r for r in replies if r != "OK"][:3])
    check(int(c.command(p, "DBSIZE")) <= base + n, "DBSIZE after bulk SET")
    log("%d keys set with PX %d" % (n, ttl_ms))
    # Writes keep flowing while they expire and are removed.
    writes = 0
    end = time.monotonic() + 60 * slow
    while True:
        check(write(c, "SET", "flow:%d" % writes, "x") == "OK", "write")
        writes += 1
        size = int(c.command(p, "DBSIZE"))
        if size == base + writes and stored_keys(c, p) == size:
            break  # hidden and removed on the primary
        check(time.monotonic() < end, "expired keys not removed: DBSIZE %r"
              " (want %d)" % (size, base + writes))
    cl.poll("every member's store without the expired keys", 20 * slow,
         lambda: all(int(read_on(c, i, "DBSIZE")) == base + writes and
                     stored_keys(c, i) == base + writes for i in c.live()))
    proposed = int(c.info(p, "stats")["expire_ops_proposed"]) - proposed0
    check(proposed >= n // 256, "%d keys removed in only %d ops" % (n,
                                                                   proposed))
    log("%d keys removed in %d EXPIRE_DUE ops; %d writes meanwhile"
        % (n, proposed, writes))
    return n, proposed, writes


def failover_expiry(c, p):
    slow = c.slow
    ttl_s = int(12 * slow)
    t0 = time.monotonic()
    check(write(c, "SET", "durable", "v", "EX", str(ttl_s)) == "OK", "SET EX")
    ks = c.info(p, "keyspace").get("db0", "")
    expires = dict(kv.split("=") for kv in ks.split(",")).get("expires")
    check(expires is not None and int(expires) >= 1,
          "INFO keyspace with a TTL: %r" % ks)
    c.kill(p)
    p2, waited = c.wait_for_primary()
    log("primary r%d killed; r%d primary after %.2fs" % (p, p2, waited))
    margin = 3 * slow
    while time.monotonic() < t0 + ttl_s - margin:
        v = write(c, "GET", "durable")
        check(v == "v" or v == b"v", "key with TTL lost early after "
              "failover: %r at %.1fs of %ds" % (v, time.monotonic() - t0,
                                                ttl_s))
        time.sleep(0.5)
    remaining = c.command(p2, "PTTL", "durable")
    check(remaining > 0, "PTTL before the deadline: %r" % remaining)
    # Log time lags wall time by the failover gap (docs/PROTOCOL.md), so
    # the key may outlive its wall deadline by about that gap.
    cl.poll("the EX key gone after its deadline", waited + 20 * slow,
         gone_everywhere(c, "durable", readonly=False), pause=0.2)
    over = time.monotonic() - (t0 + ttl_s)
    c.restart(p)
    c.wait_converged()
    # A key a read saw expire never comes back, even when the primary that
    # served the read dies at once.
    p3, _ = c.wait_for_primary()
    check(write(c, "SET", "gone", "v", "PX", "500") == "OK", "SET PX")
    cl.poll("the 500 ms key hidden on the primary", 20 * slow,
         lambda: c.command(p3, "GET", "gone") is None, pause=0.01)
    c.kill(p3)
    p4, _ = c.wait_for_primary()
    for _ in range(5):
        v = write(c, "GET", "gone")
        check(v is None, "expired key came back after a failover: %r" % v)
    check(write(c, "EXISTS", "gone") == 0, "EXISTS of an expired key")
    return ttl_s, waited, over


def idle_then_failover(c):
    """A key's remaining time does not grow back across a failover that
    follows an idle log: the primary puts the time in the log while keys
    have expiries (a clock tick each second), so the next primary does not
    resume log time from before the idle stretch."""
    p, _ = c.wait_for_primary()
    check(c.command(p, "SET", "idle-ttl", "v", "PX", "20000") == "OK",
          "SET PX")
    time.sleep(5)  # nothing written: an idle log
    before = int(c.command(p, "PTTL", "idle-ttl"))
    c.kill(p)
    p2, waited = c.wait_for_primary()
    after = int(write(c, "PTTL", "idle-ttl"))
    log("PTTL %d ms before the primary's kill, %d ms after (new primary "
        "r%d after %.2fs; clock ops %s)"
        % (before, after, p2, waited,
           c.info(p2, "stats").get("expire_clock_ops")))
    check(after <= before + 2500, "the key's PTTL grew from %d to %d ms "
          "across a failover after 5 s of idle log" % (before, after))
    c.restart(p)
    c.wait_converged()


def absolute_times(c, p):
    """EXAT, PXAT, EXPIREAT and PEXPIREAT take Unix times, as Redis: a
    deadline 30 s ahead reads back as about 30 s, one in the past removes
    the key, through the primary and through a backup; inside MULTI they
    are refused in one line (EXECABORT)."""
    b = next(i for i in c.live() if i != p)
    for via in (p, b):
        now = int(time.time())
        check(c.command(via, "SET", "abs-a", "v", "EXAT", str(now + 30))
              == "OK", "SET EXAT")
        ttl = int(c.command(via, "TTL", "abs-a"))
        check(25 <= ttl <= 30, "SET EXAT now+30 through r%d: TTL %d, want "
              "about 30" % (via, ttl))
        check(c.command(via, "SET", "abs-b", "v", "PXAT",
                        str((now - 60) * 1000)) == "OK", "SET PXAT")
        check(int(c.command(via, "EXISTS", "abs-b")) == 0,
              "SET PXAT a minute ago through r%d left the key" % via)
        c.command(via, "SET", "abs-c", "v")
        check(int(c.command(via, "EXPIREAT", "abs-c", str(now - 60))) == 1,
              "EXPIREAT in the past")
        check(int(c.command(via, "EXISTS", "abs-c")) == 0,
              "EXPIREAT a minute ago through r%d left the key" % via)
        c.command(via, "SET", "abs-d", "v")
        check(int(c.command(via, "PEXPIREAT", "abs-d",
                            str((now + 100) * 1000))) == 1, "PEXPIREAT")
        pttl = int(c.command(via, "PTTL", "abs-d"))
        check(95000 <= pttl <= 100000, "PEXPIREAT now+100s through r%d: "
              "PTTL %d" % (via, pttl))
    with c.client(p) as cl_:
        check(cl_.command("MULTI") == "OK", "MULTI")
        try:
            cl_.command("SET", "abs-e", "v", "EXAT", str(int(time.time())))
            queued = True
        except resp.RespError as e:
            queued = False
            check("cannot run inside a transaction" in e.message,
                  "SET EXAT in MULTI: %s" % e.message)
        check(not queued, "SET EXAT was queued in MULTI")
        try:
            cl_.command("EXEC")
            check(False, "EXEC after a refused command ran")
        except resp.RespError as e:
            check("EXECABORT" in e.message, "EXEC: %s" % e.message)


def expire_errors(c, p):
    """Redis's errors name the command the client typed (SETEX, not the
    SET it becomes in the log; EXPIRE, not PEXPIRE), through the primary
    and through a backup, for bad, zero and overflowing times."""
    big_s, big_ms = "9223372036854775", "9223372036854775807"
    cases = [
        (("SETEX", "ee", big_s, "v"), "setex"),
        (("SETEX", "ee", "0", "v"), "setex"),
        (("PSETEX", "ee", big_ms, "v"), "psetex"),
        (("PSETEX", "ee", "-1", "v"), "psetex"),
        (("SET", "ee", "v", "EX", big_s), "set"),
        (("SET", "ee", "v", "PX", big_ms), "set"),
        (("GETEX", "ee", "EX", big_s), "getex"),
        (("GETEX", "ee", "PX", "0"), "getex"),
        (("EXPIRE", "ee", big_s), "expire"),
        (("EXPIRE", "ee", big_ms), "expire"),
        (("PEXPIRE", "ee", big_ms), "pexpire"),
        (("EXPIREAT", "ee", big_ms), "expireat"),
    ]
    def error_of(via, *args):
        try:
            return c.command(via, *args)
        except resp.RespError as e:
            return e

    write(c, "SET", "ee", "v")
    for via in [p] + c.backups(p)[:1]:
        for args, name in cases:
            r = error_of(via, *args)
            want = "ERR invalid expire time in '%s' command" % name
            check(isinstance(r, resp.RespError) and r.message == want,
                  "%s through r%d: %r, want %r" % (" ".join(args), via, r,
                                                   want))
        r = error_of(via, "SETEX", "ee", "x", "v")
        check(isinstance(r, resp.RespError) and
              r.message == "ERR value is not an integer or out of range",
              "SETEX with a bad time: %r" % r)
    check(c.command(p, "PTTL", "ee") == -1, "a refused command changed ee")


def scenario(binary):
    c = cl.Cluster(binary, n=3, name="expiry")
    c.start()
    p, _ = c.wait_for_primary()
    idle_expiry(c, p)
    absolute_times(c, p)
    expire_errors(c, p)
    idle_then_failover(c)
    p, _ = c.wait_for_primary()
    txn_expiry(c, p)
    n, ops, writes = mass_expiry(c, p)
    ttl_s, waited, over = failover_expiry(c, p)
    c.cleanup()
    return ("1 s key gone everywhere on an idle log; absolute times are "
            "Unix times; %d keys removed in %d "
            "ops with %d writes meanwhile; EX %ds key kept through a failover "
            "(new primary after %.2fs), gone %.1fs after its wall deadline; "
            "an expired key stayed gone after its primary died"
            % (n, ops, writes, ttl_s, waited, over))


if __name__ == "__main__":
    cl.run_test("expiry", scenario, budget_s=240)
