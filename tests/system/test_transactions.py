#!/usr/bin/env python3
"""test_transactions — MULTI/EXEC/WATCH and COHORT.TXN on a 3-replica cluster.

Checks, on real processes:
  - MULTI/EXEC through a backup (forwarded to the primary as one op): the
    replies, +QUEUED, and that every replica holds the result, written at
    one mod op (KVINFO);
  - Redis's errors: EXEC and DISCARD without MULTI, nested MULTI, WATCH
    inside MULTI; an unknown command or a wrong arity while queuing makes
    EXEC answer -EXECABORT and applies nothing; DISCARD drops the queue;
    a runtime error (INCR of text) stays inside EXEC's array;
  - WATCH: a key changed by another client makes EXEC answer nil and apply
    nothing; an unchanged one lets it apply;
  - WATCH across a failover: keys watched on a backup, the primary
    SIGKILLed; a key changed by another client after the new primary
    takes over makes EXEC nil, an unchanged one applies;
  - COHORT.TXN runs its THEN or its ELSE list by its compares, and a
    COHORT.REQ retry of one is answered, not applied twice; PING inside
    it is refused by name, and an overflowing PSETEX or EXPIRE inside it
    names that command;
  - a WATCH that fails (-TRYAGAIN: its primary stopped) makes the EXEC
    pipelined after it answer nil, not run unguarded; so does one refused
    for watching over 1024 keys;
  - a user without write permission can neither queue a SET nor run one
    inside COHORT.TXN, COHORT.EXEC or COHORT.REQ COHORT.TXN.

usage: test_transactions.py [path/to/cohort]
"""

import sys
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log, retry  # noqa: E402


def err_text(reply):
    check(isinstance(reply, resp.RespError), "want an error, got %r" % reply)
    return reply.message


def errors_and_discard(c, i):
    with c.client(i) as k:
        r = k.pipeline([("EXEC",), ("DISCARD",), ("MULTI",), ("MULTI",),
                        ("WATCH", "x"), ("SET", "d", "1"), ("DISCARD",),
                        ("EXISTS", "d")])
        check(err_text(r[0]) == "ERR EXEC without MULTI", "EXEC: %r" % r[0])
        check(err_text(r[1]) == "ERR DISCARD without MULTI",
              "DISCARD: %r" % r[1])
        check(r[2] == "OK", "MULTI: %r" % r[2])
        check(err_text(r[3]) == "ERR MULTI calls can not be nested",
              "nested MULTI: %r" % r[3])
        check(err_text(r[4]) == "ERR WATCH inside MULTI is not allowed",
              "WATCH in MULTI: %r" % r[4])
        check(r[5:] == ["QUEUED", "OK", 0], "DISCARD: %r" % r[5:])
        # Queue-time errors abort the whole transaction.
        r = k.pipeline([("MULTI",), ("SET", "e", "1"), ("NOSUCH", "a"),
                        ("GET",), ("EXEC",), ("EXISTS", "e")])
        check(r[1] == "QUEUED", "queued: %r" % r[1])
        check(err_text(r[2]).startswith("ERR unknown command 'NOSUCH'"),
              "unknown: %r" % r[2])
        check(err_text(r[3]) ==
              "ERR wrong number of arguments for 'get' command",
              "arity: %r" % r[3])
        check(err_text(r[4]) == "EXECABORT Transaction discarded because "
              "of previous errors.", "EXECABORT: %r" % r[4])
        check(r[5] == 0, "an aborted transaction wrote: %r" % r[5])


def exec_through_backup(c, b, replicas):
    with c.client(b) as k:
        def run():
            r = k.pipeline([("MULTI",), ("SET", "t:a", "1"),
                            ("INCR", "t:a"), ("SET", "t:s", "text"),
                            ("INCR", "t:s"), ("MSET", "t:b", "x", "t:c", "y"),
                            ("GET", "t:a"), ("EXEC",)])
            if isinstance(r[-1], resp.RespError):
                raise r[-1]
            return r
        r = retry(c, run, "EXEC through backup r%d" % b, 20 * c.slow)
        check(r[1:7] == ["QUEUED"] * 6, "queued: %r" % r[1:7])
        ex = r[7]
        check(isinstance(ex, list) and len(ex) == 6, "EXEC: %r" % ex)
        check(ex[0] == "OK" and ex[1] == 2 and ex[2] == "OK",
              "EXEC replies: %r" % ex)
        check(err_text(ex[3]) == "ERR value is not an integer or out of "
              "range", "runtime error inside EXEC: %r" % ex[3])
        check(ex[4] == "OK" and ex[5] == b"2", "EXEC replies: %r" % ex)
    # One op: every key it wrote has the same mod op, on every replica.
    for i in replicas:
        def mod_ops():
            with c.client(i) as k:
                return [k.command("KVINFO", key)[7]
                        for key in ("t:a", "t:s", "t:b", "t:c")]
        ops = retry(c, mod_ops, "KVINFO on r%d" % i, 20 * c.slow)
        check(len(set(ops)) == 1, "r%d: mod ops %r (want one op)" % (i, ops))


def watch_conflict(c, i, j):
    """WATCH on replica i; another client writes through replica j."""
    with c.client(i) as k, c.client(j) as other:
        retry(c, lambda: k.command("SET", "w:k", "0"), "SET", 20 * c.slow)
        check(k.command("WATCH", "w:k", "w:missing") == "OK", "WATCH")
        retry(c, lambda: other.command("SET", "w:k", "1"), "other SET",
              20 * c.slow)
        r = k.pipeline([("MULTI",), ("SET", "w:k", "mine"), ("EXEC",)])
        check(r[2] is None, "EXEC after a conflicting write: %r" % r[2])
        check(k.command("GET", "w:k") == b"1", "the aborted EXEC wrote")
        # Unchanged: it applies (and EXEC forgot the earlier watch).
        check(k.command("WATCH", "w:k") == "OK", "WATCH")
        r = k.pipeline([("MULTI",), ("SET", "w:k", "mine"), ("EXEC",)])
        check(r[2] == ["OK"], "EXEC with an unchanged key: %r" % r[2])
        # UNWATCH forgets.
        k.command("WATCH", "w:k")
        other.command("SET", "w:k", "2")
        k.command("UNWATCH")
        r = k.pipeline([("MULTI",), ("GET", "w:k"), ("EXEC",)])
        check(r[2] == [b"2"], "EXEC after UNWATCH: %r" % r[2])


def cohort_txn(c, i):
    with c.client(i) as k:
        retry(c, lambda: k.command("SET", "x:k", "v1"), "SET", 20 * c.slow)
        r = k.command("COHORT.TXN", 2, "x:k", "VALUE", "=", "v1",
                      "x:new", "MISSING",
                      1, 3, "SET", "x:k", "v2",
                      1, 2, "GET", "x:k")
        check(r == [1, ["OK"]], "THEN branch: %r" % r)
        r = k.command("COHORT.TXN", 1, "x:k", "VALUE", "=", "v1",
                      1, 3, "SET", "x:k", "v3",
                      2, 2, "GET", "x:k", 2, "INCR", "x:n")
        check(r == [0, [b"v2", 1]], "ELSE branch: %r" % r)
        r = k.command("COHORT.TXN", 1, "x:k", "VERSION", "=", 2,
                      1, 3, "SET", "x:k", "v4", 0)
        check(r == [1, ["OK"]], "VERSION compare: %r" % r)
        # Exactly once: a retried request is answered from the client
        # table, not applied again.
        req = ("COHORT.REQ", 4242, 1, "COHORT.TXN", 0, 1, 2, "INCR", "x:once",
               0)
        check(k.command(*req) == [1, [1]], "COHORT.REQ COHORT.TXN")
        check(k.command(*req) == [1, [1]], "COHORT.REQ COHORT.TXN retried")
        check(k.command("GET", "x:once") == b"1", "a retry applied twice")
        try:
            k.command("COHORT.TXN", 1, "x:k", "SIZE", "=", 2, 0, 0)
            check(False, "a bad compare was accepted")
        except resp.RespError as e:
            check(err_text(e).startswith("ERR syntax error in a compare"),
                  "bad compare: %r" % e)
        # A command the server knows but a transaction cannot hold is
        # named as not allowed; one nobody knows is unknown. Redis's
        # expire error names the command typed, not the op it becomes.
        for cmd, want in [
                ((2, "PING", "x"), "ERR 'ping' is not allowed inside "
                 "COHORT.TXN; only store reads and writes can"),
                ((1, "NOSUCH"), "ERR unknown command 'NOSUCH'"),
                ((4, "PSETEX", "x:k", "9223372036854775807", "v"),
                 "ERR invalid expire time in 'psetex' command"),
                ((3, "EXPIRE", "x:k", "9223372036854775"),
                 "ERR invalid expire time in 'expire' command")]:
            try:
                r = k.command("COHORT.TXN", 0, 2, 2, "GET", "x:k", *cmd, 0)
                check(False, "COHORT.TXN with %s: %r" % (cmd[1], r))
            except resp.RespError as e:
                check(err_text(e).startswith(want),
                      "COHORT.TXN with %s: %r" % (cmd[1], e))


def acl_inside_transactions(c, i):
    """A user who may read but not write can neither queue a SET nor slip
    one inside COHORT.TXN."""
    retry(c, lambda: c.command(i, "ACL", "SETUSER", "reader", "on",
                               ">pw", "+@read", "+@transaction", "~*"),
          "ACL SETUSER", 20 * c.slow)
    with c.client(i) as k:
        # The backup learns the user when it applies the op.
        deadline = time.monotonic() + 10 * c.slow
        while True:
            try:
                k.command("AUTH", "reader", "pw")
                break
            except resp.RespError as e:
                check(e.code == "WRONGPASS" and time.monotonic() < deadline,
                      "AUTH reader on r%d: %r" % (i, e))
                time.sleep(0.02)
        r = k.pipeline([("MULTI",), ("GET", "a:k"), ("SET", "a:k", "1"),
                        ("EXEC",)])
        check(r[1] == "QUEUED", "GET queued: %r" % r[1])
        check(err_text(r[2]).startswith("NOPERM"), "SET queued: %r" % r[2])
        check(err_text(r[3]).startswith("EXECABORT"), "EXEC: %r" % r[3])
        for cmd in (("COHORT.TXN", 0, 1, 3, "SET", "a:k", "1", 0),
                    ("COHORT.EXEC", 0, 1, 3, "SET", "a:k", "1"),
                    ("COHORT.REQ", 77, 1, "COHORT.TXN", 0, 0, 1, 2, "DEL",
                     "a:k")):
            try:
                r = k.command(*cmd)
                check(False, "%s by a reader: %r" % (cmd[0], r))
            except resp.RespError as e:
                check(e.code == "NOPERM", "%s by a reader: %r" % (cmd[0], e))
        check(k.command("COHORT.TXN", 0, 1, 2, "GET", "a:k", 0) ==
              [1, [None]], "a reader's read-only COHORT.TXN")
        check(k.command("EXISTS", "a:k") == 0, "a reader wrote a:k")


def failed_watch_guards_exec(c):
    """A WATCH forwarded to a primary that stops answering gets -TRYAGAIN;
    an EXEC pipelined after it must not run unguarded: nil."""
    p, _ = c.wait_for_primary()
    b = c.backups(p)[0]
    retry(c, lambda: c.command(b, "SET", "g:k", "0"), "SET", 20 * c.slow)
    with c.client(b, timeout=30.0 * c.slow) as k:
        c.pause(p)
        try:
            r = k.pipeline([("WATCH", "g:k"), ("MULTI",),
                            ("SET", "g:k", "mine"), ("EXEC",)])
        finally:
            c.resume(p)
        log("WATCH while the primary r%d was stopped: %r" % (p, r))
        if isinstance(r[0], resp.RespError):
            check(r[0].code == "TRYAGAIN", "WATCH: %r" % r[0])
            check(r[3] is None, "EXEC after a failed WATCH: %r" % r[3])
        else:
            check(r[3] == ["OK"] or isinstance(r[3], resp.RespError),
                  "EXEC after WATCH: %r" % r[3])
    c.wait_for_primary()
    if isinstance(r[0], resp.RespError):
        v = retry(c, lambda: c.command(b, "GET", "g:k"), "GET", 20 * c.slow)
        check(v == b"0", "the unguarded EXEC wrote: %r" % v)


def refused_watch_guards_exec(c, i):
    """A WATCH refused for its key count (over 1024) guards nothing, like
    one that fails: the EXEC pipelined after it answers nil and writes
    nothing; UNWATCH clears it."""
    keys = ["lw:%d" % n for n in range(1025)]
    with c.client(i) as k:
        r = k.pipeline([("SET", "lw:k", "0"), ("WATCH",) + tuple(keys),
                        ("MULTI",), ("SET", "lw:k", "mine"), ("EXEC",),
                        ("GET", "lw:k")])
        check(err_text(r[1]).startswith("ERR too many watched keys"),
              "WATCH of 1025 keys: %r" % r[1])
        check(r[4] is None, "EXEC after a refused WATCH: %r" % r[4])
        check(r[5] == b"0", "the unguarded EXEC wrote: %r" % r[5])
        r = k.pipeline([("WATCH",) + tuple(keys), ("UNWATCH",),
                        ("WATCH", "lw:k"), ("MULTI",), ("SET", "lw:k", "2"),
                        ("EXEC",)])
        check(r[1:] == ["OK", "OK", "OK", "QUEUED", ["OK"]],
              "a transaction after UNWATCH: %r" % r)


def watch_across_failover(c):
    p, _ = c.wait_for_primary()
    b = c.backups(p)[0]
    other_i = [i for i in c.backups(p) if i != b][0]
    for key in ("f:changed", "f:same"):
        retry(c, lambda key=key: c.command(b, "SET", key, "0"), "SET",
              20 * c.slow)
    # Watch on the backup, one connection per key.
    k1 = c.client(b, timeout=10.0)
    k2 = c.client(b, timeout=10.0)
    try:
        check(k1.command("WATCH", "f:changed") == "OK", "WATCH 1")
        check(k2.command("WATCH", "f:same") == "OK", "WATCH 2")
        c.kill(p)
        log("SIGKILL primary r%d; watches held on backup r%d" % (p, b))
        p2, waited = c.wait_for_primary()
        log("new primary r%d after %.2fs" % (p2, waited))
        check(p2 != p, "the killed replica r%d is still primary" % p)
        retry(c, lambda: c.command(other_i, "SET", "f:changed", "other"),
              "SET after the failover", 30 * c.slow)
        # Writes through b reach the new primary before the EXECs run.
        retry(c, lambda: c.command(b, "SET", "f:probe", "1"),
              "SET through r%d after the failover" % b, 30 * c.slow)

        def exec_on(k, key):
            def run():
                r = k.pipeline([("MULTI",), ("SET", key, "mine"), ("EXEC",)])
                if isinstance(r[-1], resp.RespError):
                    raise r[-1]
                return r[-1]
            return run
        # A -TRYAGAIN EXEC forgot the watch (as Redis does after EXEC): a
        # retry would run unguarded. The view is settled (wait_for_primary
        # wrote through it), so the first try must answer.
        r1 = exec_on(k1, "f:changed")()
        check(r1 is None, "EXEC on a key changed after the failover: %r" % r1)
        r2 = exec_on(k2, "f:same")()
        check(r2 == ["OK"], "EXEC on an unchanged key after the failover: %r"
              % r2)
        log("after the failover: EXEC nil on the changed key, applied on "
            "the unchanged one")
    finally:
        k1.close()
        k2.close()
    check(c.command(b, "GET", "f:changed") == b"other", "f:changed")
    check(c.command(b, "GET", "f:same") == b"mine", "f:same")


def scenario(binary):
    c = cl.Cluster(binary, n=3, name="txn")
    c.start()
    p, _ = c.wait_for_primary()
    # The backups too: one still recovering answers a read -TRYAGAIN (seen
    # under TSan, where a backup had not yet recovered its view).
    c.wait_converged()
    backups = c.backups(p)
    log("primary r%d, backups %s" % (p, backups))
    errors_and_discard(c, backups[0])
    exec_through_backup(c, backups[0], range(3))
    watch_conflict(c, backups[0], backups[1])
    watch_conflict(c, p, backups[0])
    cohort_txn(c, backups[1])
    acl_inside_transactions(c, backups[0])
    refused_watch_guards_exec(c, backups[1])
    refused_watch_guards_exec(c, p)
    failed_watch_guards_exec(c)
    watch_across_failover(c)
    return "MULTI/EXEC/WATCH/COHORT.TXN through backups and a failover"


if __name__ == "__main__":
    cl.run_test("transactions", scenario, budget_s=120)
