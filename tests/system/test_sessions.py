#!/usr/bin/env python3
"""test_sessions — sessions and ephemeral keys on a real 3-replica group.

1. Bad input: every malformed COHORT.SESSION and SET ... SESSION gets its
   one-line error, on the primary and through a backup.
2. An ephemeral key vanishes: a session opened through one member, its key
   written through another, is deleted on every member once its client
   stops sending KEEPALIVEs; KEEPALIVE then says the session is gone.
   CLOSE deletes a session's keys at once.
3. Groups: views, ELECT, a leader that stops its keepalives losing the
   group; a COHORT.WATCH GROUP watcher hears each view in order, and one
   resumed FROM an older revision on another member hears the same.
4. Blocking lock waits: COHORT.LOCK ... WAIT ms on a backup answers the
   token when the holder unlocks, nil when it times out (still queued) or
   when the session leaves the queue; pipelined replies keep their order;
   a waiting connection that closes is forgotten.
5. Failovers expire no healthy session: a client thread sends KEEPALIVE
   every ttl/5 through each member in turn (a backup forwards it, so the
   session survives its client moving between members) while the primary
   is SIGKILLed and restarted KILLS times, then while two of three replicas
   are down for longer than the TTL (no primary at all). The test counts
   expiries (KEEPALIVE answered "no such session", or the ephemeral key
   gone) and expects 0: each new primary extends every session by one TTL
   before it expires any (kv/session_cmd.h).

Every wait is a poll with a bounded deadline; nothing asserts a timing.

usage: test_sessions.py [path/to/cohort]
"""

import sys
import threading
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402

KILLS = 5


def write(c, *args, tries=None):
    """A command through whichever member answers, retried across a
    failover; an error reply other than TRYAGAIN is returned."""
    deadline = time.monotonic() + (tries or 20 * c.slow)
    last = None
    while time.monotonic() < deadline:
        for i in c.live():
            try:
                return c.command(i, *args)
            except resp.RespError as e:
                if not str(e).startswith(("TRYAGAIN", "UNKNOWN")):
                    return e
                last = e
            except (OSError, resp.ProtocolError) as e:
                last = e
        time.sleep(0.1)
    raise cl.TestFailure("command %s never answered: %r" % (args, last))


def on(c, i, *args):
    """A command on member i, retried while it answers TRYAGAIN (a view
    change right after start or a failover); other errors raise."""
    deadline = time.monotonic() + 20 * c.slow
    while True:
        try:
            return c.command(i, *args)
        except resp.RespError as e:
            if not str(e).startswith("TRYAGAIN") or \
                    time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def error_of(c, i, *args):
    try:
        r = on(c, i, *args)
    except resp.RespError as e:
        return str(e)
    raise cl.TestFailure("%s answered %r, not an error" % (args, r))


def bad_input(c, p):
    b = c.backups(p)[0]
    cases = [
        (("COHORT.SESSION", "OPEN", "5"), "ERR session ttl-ms must be"),
        (("COHORT.SESSION", "OPEN", "ten"), "ERR session ttl-ms must be"),
        (("COHORT.SESSION", "KEEPALIVE", "0"), "ERR session id must be"),
        (("COHORT.SESSION", "KEEPALIVE", "999999"),
         "ERR no such session 999999"),
        (("COHORT.SESSION", "RENEW", "1"),
         "ERR unknown COHORT.SESSION subcommand 'RENEW'"),
        (("COHORT.SESSION", "OPEN"), "ERR wrong number of arguments"),
        (("SET", "k", "v", "SESSION"), "ERR syntax error"),
        (("SET", "k", "v", "SESSION", "x"), "ERR session id must be"),
        (("SET", "k", "v", "SESSION", "999999"),
         "ERR no such session 999999"),
        (("SET", "k", "v", "SESSION", "1", "PX", "10"),
         "ERR SET with SESSION takes no EX"),
        (("COHORT.LOCK", "L", "999999"), "ERR no such session 999999"),
        (("COHORT.LOCK", "L", "1", "LATER"), "ERR syntax error"),
        (("COHORT.FENCE", "L", "zero", "k", "v"),
         "ERR fencing token must be"),
        (("COHORT.FENCE", "L", "5", "k", "v"),
         "ERR fencing token 5 is not current for lock 'L' (it is free)"),
    ]
    for i in (p, b):
        for args, want in cases:
            got = error_of(c, i, *args)
            check(got.startswith(want), "%s on %d: %r, want %r"
                  % (args, i, got, want))
    check(on(c, p, "EXISTS", "k") == 0, "a refused SET wrote its key")
    return len(cases) * 2


def gone_everywhere(c, key):
    def probe():
        try:
            return all(c.command(i, "GET", key) is None for i in c.live())
        except (resp.RespError, OSError):
            return False
    return probe


def ephemeral_vanishes(c, p):
    b1, b2 = c.backups(p)
    ttl = int(1000 * c.slow)
    sid = on(c, b1, "COHORT.SESSION", "OPEN", str(ttl))
    check(isinstance(sid, int) and sid > 0, "OPEN answered %r" % sid)
    check(on(c, b2, "SET", "eph", "v", "SESSION", str(sid)) == "OK",
          "SET SESSION through a backup")
    check(on(c, p, "COHORT.SESSION", "KEEPALIVE", str(sid)) == ttl,
          "KEEPALIVE answers the ttl")
    for i in c.live():
        check(on(c, i, "GET", "eph") == b"v", "eph missing on %d" % i)
    t0 = time.monotonic()
    cl.poll("the ephemeral key gone on every member", 30 * c.slow,
         gone_everywhere(c, "eph"))
    waited = time.monotonic() - t0
    got = error_of(c, b2, "COHORT.SESSION", "KEEPALIVE", str(sid))
    check(got.startswith("ERR no such session %d" % sid),
          "KEEPALIVE of an expired session: %r" % got)
    expired = [int(inf.get("sessions_expired", "0"))
               for inf in c.infos(section="stats").values()]
    check(expired and all(n == 1 for n in expired),
          "INFO sessions_expired on the members: %s" % expired)
    # CLOSE deletes the keys in its own op.
    sid2 = on(c, p, "COHORT.SESSION", "OPEN", str(60000))
    on(c, p, "SET", "eph2", "v", "SESSION", str(sid2))
    on(c, p, "SET", "plain", "v")
    check(on(c, b1, "COHORT.SESSION", "CLOSE", str(sid2)) == 1, "CLOSE")
    check(on(c, b1, "GET", "eph2") is None, "CLOSE left its key")
    check(on(c, b1, "GET", "plain") == b"v", "CLOSE took a plain key")
    return waited


class Keeper(threading.Thread):
    """Sends KEEPALIVE every interval through each member in turn."""

    def __init__(self, c, sid, interval):
        super().__init__(daemon=True)
        self.ports = list(c.client_ports)
        self.sid = sid
        self.interval = interval
        self.stop = threading.Event()
        self.ok = 0
        self.failed = 0
        self.why = {}
        self.expired = []
        self.members = set()

    def fail(self, e):
        self.failed += 1
        k = str(e).split(":")[0][:40]
        self.why[k] = self.why.get(k, 0) + 1

    def one(self, member):
        """One KEEPALIVE through member: True if it answered."""
        try:
            with resp.connect(self.ports[member], timeout=1.0) as conn:
                conn.command("COHORT.SESSION", "KEEPALIVE", str(self.sid))
            self.ok += 1
            self.members.add(member)
            return True
        except resp.RespError as e:
            if "no such session" in str(e):
                self.expired.append(str(e))
                return True
            self.fail(e)
        except (OSError, resp.ProtocolError) as e:
            self.fail(e)
        return False

    def run(self):
        """Each round starts at the next member and, as a client does,
        moves on to the others until one answers."""
        n = 0
        while not self.stop.is_set():
            for k in range(len(self.ports)):
                if self.one((n + k) % len(self.ports)):
                    break
            n += 1
            self.stop.wait(self.interval)


def failovers(c):
    ttl = int(1500 * c.slow)
    sid = write(c, "COHORT.SESSION", "OPEN", str(ttl))
    check(isinstance(sid, int), "OPEN answered %r" % sid)
    check(write(c, "SET", "held", "v", "SESSION", str(sid)) == "OK",
          "SET SESSION")
    keeper = Keeper(c, sid, ttl / 5000.0)
    keeper.start()
    try:
        for k in range(KILLS):
            p, _ = c.wait_for_primary()
            c.kill(p)
            c.wait_for_primary()
            c.restart(p)
            c.wait_converged()
            check(not keeper.expired, "session expired after kill %d: %s"
                  % (k + 1, keeper.expired))
        # No primary at all for longer than the TTL.
        p, _ = c.wait_for_primary()
        down = [p, c.backups(p)[0]]
        for i in down:
            c.kill(i)
        outage_s = 2 * ttl / 1000.0
        time.sleep(outage_s)  # the outage must outlast the TTL
        for i in down:
            c.restart(i, wait=False)
        for i in down:
            c.wait_ready(i, 20 * c.slow)
        c.wait_for_primary()
        ok_before = keeper.ok
        cl.poll("a KEEPALIVE after the outage", 20 * c.slow,
             lambda: keeper.ok > ok_before + 3 or keeper.expired)
    finally:
        keeper.stop.set()
        keeper.join()
    held = write(c, "GET", "held")
    expiries = len(keeper.expired) + (0 if held == b"v" else 1)
    log("session expiries across %d primary kills and a %.1fs outage: %d "
        "(keepalives %d ok, %d failed, through members %s)"
        % (KILLS, outage_s, expiries, keeper.ok, keeper.failed,
           sorted(keeper.members)))
    log("keepalive failures by kind: %s" % keeper.why)
    check(expiries == 0, "a kept-alive session expired: %s, held=%r"
          % (keeper.expired, held))
    check(len(keeper.members) == c.n, "keepalives went through only %s"
          % sorted(keeper.members))
    # Stopping the keepalives still ends it.
    cl.poll("the session's key gone once its keepalives stop", 30 * c.slow,
         gone_everywhere(c, "held"))
    return expiries, keeper.ok, keeper.failed, outage_s


def locks(c):
    """A lock and its fencing token across a failover; the holder's session
    expiring grants the waiter a larger token and fences the old one out."""
    ttl = int(1500 * c.slow)
    a = write(c, "COHORT.SESSION", "OPEN", str(ttl))
    b = write(c, "COHORT.SESSION", "OPEN", str(ttl))
    ka, kb = Keeper(c, a, ttl / 5000.0), Keeper(c, b, ttl / 5000.0)
    ka.start()
    kb.start()
    try:
        ta = write(c, "COHORT.LOCK", "job", str(a))
        check(isinstance(ta, int) and ta > 0, "LOCK answered %r" % ta)
        check(write(c, "COHORT.LOCK", "job", str(b)) is None,
              "a held lock granted to another session")
        check(write(c, "COHORT.LOCK", "job", str(b), "WAIT") is None,
              "WAIT on a held lock")
        check(write(c, "COHORT.FENCE", "job", str(ta), "out", "1") == "OK",
              "FENCE with the current token")
        p, _ = c.wait_for_primary()
        c.kill(p)
        c.wait_for_primary()
        c.restart(p)
        c.wait_converged()
        check(write(c, "COHORT.LOCK", "job", str(a)) == ta,
              "the holder's token changed across a failover")
        check(write(c, "COHORT.FENCE", "job", str(ta), "out", "2") == "OK",
              "FENCE after a failover")
        ka.stop.set()  # the holder pauses; its session expires
        ka.join()
        tb = cl.poll("the waiter granted once the holder's session expired",
                  30 * c.slow,
                  lambda: write(c, "COHORT.LOCK", "job", str(b)))
        check(tb > ta, "token %r not above the old %r" % (tb, ta))
        stale = write(c, "COHORT.FENCE", "job", str(ta), "out", "3")
        check(isinstance(stale, resp.RespError) and
              "is not current" in str(stale),
              "a stale token wrote: %r" % stale)
        check(write(c, "COHORT.FENCE", "job", str(tb), "out", "4") == "OK",
              "FENCE with the new token")
        check(write(c, "GET", "out") == b"4", "fenced writes out of order")
        check(not kb.expired, "the waiter's session expired: %s"
              % kb.expired)
    finally:
        ka.stop.set()
        kb.stop.set()
        ka.join()
        kb.join()
    return ta, tb


def no_reply_yet(k, what):
    """k has no reply within a short while (a negative check: a correct
    server never answers here, so this cannot fail by timing)."""
    k.timeout = 0.3
    try:
        r = k.read_reply()
    except OSError:
        return
    raise cl.TestFailure("%s answered early: %r" % (what, r))


def blocking_locks(c):
    """COHORT.LOCK ... WAIT ms holds the answer on the member the client
    uses (a backup here) until the lock is granted, the session leaves the
    queue, or ms pass; replies pipelined behind it keep their order."""
    p, _ = c.wait_for_primary()
    b1, b2 = c.backups(p)
    a = write(c, "COHORT.SESSION", "OPEN", str(60000))
    b = write(c, "COHORT.SESSION", "OPEN", str(60000))
    for bad in (["-1"], ["x"], ["3600001"]):
        got = error_of(c, b1, "COHORT.LOCK", "bl", str(a), "WAIT", *bad)
        check(got.startswith("ERR WAIT takes the milliseconds"),
              "WAIT %s: %r" % (bad, got))
    got = error_of(c, b1, "COHORT.UNLOCK", "bl", str(a), "WAIT", "5")
    check(got.startswith("ERR wrong number of arguments"),
          "UNLOCK ... WAIT 5: %r" % got)
    ta = on(c, p, "COHORT.LOCK", "bl", str(a))
    # Granted: b waits on a backup while a holds the lock; a's UNLOCK
    # through the other backup answers b's wait with a larger token.
    k = c.client(b1, timeout=20 * c.slow)
    k.send_raw(resp.encode_command("COHORT.LOCK", "bl", str(b), "WAIT",
                                   str(60000)) + resp.encode_command("PING"))
    no_reply_yet(k, "LOCK WAIT on a held lock")
    # The queue as a linearizable read on the other backup.
    got = cl.poll("b queued behind a in COHORT.LOCKS", 20 * c.slow,
                  lambda: (lambda r: r if r == [b"bl", a, ta, [b]] else None)(
                      on(c, b2, "COHORT.LOCKS", "bl")))
    sessions = on(c, b2, "COHORT.SESSIONS", str(a))
    check(sessions[:2] == [a, 60000] and 0 < sessions[2] <= 60000 and
          sessions[3] == [], "COHORT.SESSIONS %d: %r" % (a, sessions))
    check(on(c, b2, "COHORT.SESSIONS", "999999999") is None,
          "COHORT.SESSIONS of no session")
    check(on(c, b2, "COHORT.UNLOCK", "bl", str(a)) == 1, "UNLOCK")
    k.timeout = 20 * c.slow
    tb = k.read_reply()
    check(isinstance(tb, int) and tb > ta, "the waiter got %r after the "
          "holder's token %r" % (tb, ta))
    check(k.read_reply() == "PONG", "the reply pipelined behind the wait")
    check(on(c, p, "COHORT.LOCK", "bl", str(b)) == tb,
          "the waiter's token is not the holder's")
    # Timed out: a waits 300 ms on the lock b holds, gets nil and stays
    # queued; then a waits again and leaves the queue (UNLOCK from another
    # connection), which answers nil at once rather than at the deadline.
    k.send_raw(resp.encode_command("COHORT.LOCK", "bl", str(a), "WAIT",
                                   "300"))
    check(k.read_reply() is None, "a timed-out wait answered non-nil")
    check(on(c, b2, "COHORT.LOCK", "bl", str(a)) is None,
          "the timed-out waiter left the queue")
    t0 = time.monotonic()
    k.send_raw(resp.encode_command("COHORT.LOCK", "bl", str(a), "WAIT",
                                   "3600000"))
    no_reply_yet(k, "LOCK WAIT while queued")
    check(on(c, p, "COHORT.UNLOCK", "bl", str(a)) == 1, "UNLOCK of a waiter")
    check(k.read_reply() is None, "a waiter that left answered non-nil")
    left_s = time.monotonic() - t0
    # A waiting connection that closes is forgotten: the member goes on.
    k.send_raw(resp.encode_command("COHORT.LOCK", "bl", str(a), "WAIT",
                                   "60000"))
    no_reply_yet(k, "LOCK WAIT before the close")
    k.close()
    stats = cl.poll("no lock wait held after the close", 20 * c.slow,
                    lambda: (lambda inf: inf if inf.get("lock_waits") == "0"
                             else None)(c.info(b1, section="stats")))
    check(int(stats["lock_waits_granted"]) >= 1 and
          int(stats["lock_waits_timed_out"]) >= 1,
          "INFO lock_waits_*: %r" % {x: y for x, y in stats.items()
                                     if x.startswith("lock_wait")})
    # The same on the primary when the wait is the connection's first
    # write (redis-cli COHORT.LOCK ... WAIT, then Ctrl-C): that write holds
    # the connection's session gate, which stopped its reading; the close
    # was seen only at the deadline (60 s), not at once.
    stats = c.info(p, section="stats")
    timed_out = int(stats["lock_waits_timed_out"])
    k = c.client(p, timeout=20 * c.slow)
    k.send_raw(resp.encode_command("COHORT.LOCK", "bl", str(a), "WAIT",
                                   "60000"))
    no_reply_yet(k, "a first-write LOCK WAIT on the primary")
    cl.poll("the primary holds the wait", 10 * c.slow,
            lambda: c.info(p, section="stats").get("lock_waits") == "1")
    k.close()
    stats = cl.poll("the primary forgot the wait of a closed connection",
                    10 * c.slow,
                    lambda: (lambda inf: inf if inf.get("lock_waits") == "0"
                             else None)(c.info(p, section="stats")))
    check(int(stats["lock_waits_timed_out"]) == timed_out,
          "the closed connection's wait timed out instead: %r"
          % {x: y for x, y in stats.items() if x.startswith("lock_wait")})
    # And with a command pipelined behind the wait (which stops the
    # connection's dispatch by the order rule until the wait's answer): the
    # member still reads on and sees the close.
    for i in (p, b1):
        stats = c.info(i, section="stats")
        timed_out = int(stats["lock_waits_timed_out"])
        k = c.client(i, timeout=20 * c.slow)
        k.send_raw(resp.encode_command("COHORT.LOCK", "bl", str(a), "WAIT",
                                       "60000") +
                   resp.encode_command("GET", "bl-after"))
        no_reply_yet(k, "a LOCK WAIT with a GET behind it")
        cl.poll("r%d holds the wait" % i, 10 * c.slow,
                lambda: c.info(i, section="stats").get("lock_waits") == "1")
        k.close()
        stats = cl.poll("r%d forgot the wait of a closed connection with a "
                        "command behind it" % i, 10 * c.slow,
                        lambda: (lambda inf: inf if inf.get("lock_waits") ==
                                 "0" else None)(c.info(i, section="stats")))
        check(int(stats["lock_waits_timed_out"]) == timed_out,
              "r%d: the closed connection's wait timed out instead" % i)
    write(c, "COHORT.SESSION", "CLOSE", str(a))
    write(c, "COHORT.SESSION", "CLOSE", str(b))
    return ta, tb, left_s


def watcher(c, i, *args):
    """A connection to member i watching (COHORT.WATCH args...)."""
    k = c.client(i)
    k.send_raw(resp.encode_command("COHORT.WATCH", *args))
    r = k.read_reply()
    check(isinstance(r, list) and r[:3] == [b"watching", b"group", b"svc"],
          "COHORT.WATCH %r: %r" % (args, r))
    return k


def views_of(k, want, c, what):
    """The next `want` group views pushed to watcher k, as (view,
    members)."""
    got = []
    deadline = time.monotonic() + 20 * c.slow
    while len(got) < want:
        check(time.monotonic() < deadline, "%s: %d of %d views"
              % (what, len(got), want))
        k.timeout = max(0.1, deadline - time.monotonic())
        r = k.read_reply()
        check(isinstance(r, list) and len(r) == 5 and r[0] == b"watch" and
              r[2] == b"group" and r[3] == b"svc",
              "%s: not a group view: %r" % (what, r))
        got.append((r[1], r[4]))
    return got


def groups(c):
    """Two members join through different members; the leader's client
    stops its keepalives and the other member leads a later view. A
    watcher of the group on a backup hears every view in order, and one
    that resumes FROM before the first view on another member hears the
    same views."""
    ttl = int(1000 * c.slow)
    w = watcher(c, 2, "GROUP", "svc")
    a = write(c, "COHORT.SESSION", "OPEN", str(ttl))
    b = write(c, "COHORT.SESSION", "OPEN", str(60000))
    v1 = on(c, 0, "COHORT.GROUP", "JOIN", "svc", "w1", str(a), "h1")
    v2 = on(c, 1, "COHORT.GROUP", "JOIN", "svc", "w2", str(b), "h2")
    check(isinstance(v1, int) and v2 > v1, "views %r %r" % (v1, v2))
    view = on(c, 2, "COHORT.GROUP", "VIEW", "svc")
    check(view == [v2, [b"w1", b"h1", b"w2", b"h2"]], "VIEW %r" % (view,))
    check(on(c, 2, "COHORT.ELECT", "svc") == [v2, b"w1", b"h1"],
          "ELECT before")
    leader = cl.poll("w2 elected once w1's session expired", 30 * c.slow,
                  lambda: (lambda r: r if r[1] == b"w2" else None)(
                      write(c, "COHORT.ELECT", "svc")))
    check(leader[0] > v2, "the new view %r is not above %r"
          % (leader[0], v2))
    check(write(c, "COHORT.GROUP", "VIEW", "svc") ==
          [leader[0], [b"w2", b"h2"]], "w1 still listed")
    got = error_of(c, 0, "COHORT.GROUP", "JOIN", "svc", "w2", str(a))
    check(got.startswith("ERR no such session"), "JOIN of an ended "
          "session: %r" % got)
    write(c, "COHORT.SESSION", "CLOSE", str(b))
    want = [(v1, [b"w1", b"h1"]), (v2, [b"w1", b"h1", b"w2", b"h2"]),
            (leader[0], [b"w2", b"h2"])]
    got = views_of(w, 4, c, "group watcher")
    check(got[:3] == want, "views pushed %r, not %r" % (got[:3], want))
    check(got[3][0] > leader[0] and got[3][1] == [],
          "the CLOSE's view %r is not the empty group" % (got[3],))
    w.close()
    again = watcher(c, 0, "GROUP", "svc", "FROM", str(v1 - 1))
    check(views_of(again, 4, c, "resumed group watcher") == got,
          "a watcher resumed FROM %d heard other views" % (v1 - 1))
    again.close()
    return v2, leader[0]


def scenario(binary):
    c = cl.Cluster(binary, n=3, name="sessions")
    c.start()
    p, _ = c.wait_for_primary()
    n_bad = bad_input(c, p)
    waited = ephemeral_vanishes(c, p)
    expiries, ok, failed, outage_s = failovers(c)
    ta, tb = locks(c)
    v_before, v_after = groups(c)
    bl_a, bl_b, left_s = blocking_locks(c)
    c.cleanup()
    return ("%d bad inputs refused; ephemeral key gone %.1fs after its "
            "keepalives stopped; %d session expiries across %d primary "
            "kills and a %.1fs total outage (%d keepalives ok, %d failed); "
            "lock token %d kept through a failover, fenced out by %d after "
            "its session expired; group leader moved from view %d to %d "
            "when its session expired; a blocked LOCK WAIT was granted "
            "token %d when token %d was unlocked, and a queued one left the "
            "queue after %.1fs"
            % (n_bad, waited, expiries, KILLS, outage_s, ok, failed, ta, tb,
               v_before, v_after, bl_b, bl_a, left_s))


if __name__ == "__main__":
    cl.run_test("sessions", scenario, budget_s=240)
