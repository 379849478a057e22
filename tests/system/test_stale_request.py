#!/usr/bin/env python3
"""test_stale_request — a COHORT.REQ retry with an old request number gets an
answer (issue 11, item 3).

COHORT.REQ 77 1 SET stale a, then COHORT.REQ 77 2 SET stale b, then
COHORT.REQ 77 1 SET stale c: the last one used to get no reply at all from
the primary (and through a backup, -UNKNOWN after about ten minutes). Now,
against the primary and through each backup, it is answered at once with
"-ERR stale request: ...; this one was not applied now", and the value
stays b. The latest request (2) is still answered from the client table,
and the connection goes on (a PING behind the stale request is answered).

Each reply is awaited for at most 5 s (x the sanitizer factor): long enough
for any loaded machine, far shorter than the old hang. -TRYAGAIN (a view
change under way on a loaded machine) and -UNKNOWN are retried: COHORT.REQ
makes that safe.

Then the same 50 COHORT.REQs pipelined on two connections at once: a first
copy still in flight when the second arrives is answered -UNKNOWN naming
the request and the retry (it used to say that the primary changed), every
other answer is the INCR's one value, and the counter ends at 50.

usage: test_stale_request.py [path/to/cohort]
"""

import sys
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402


def retried(c, x, *cmd):
    """cmd, sent again while the answer is -TRYAGAIN or -UNKNOWN (a view
    change under way on a loaded machine; a COHORT.REQ retry is answered
    exactly once) for a bounded time."""
    deadline = time.monotonic() + 20 * c.slow
    while True:
        got = x.pipeline([cmd])[0]
        if not (isinstance(got, resp.RespError) and
                got.code in ("TRYAGAIN", "UNKNOWN") and
                time.monotonic() < deadline):
            return got
        time.sleep(0.05)


def stale_case(c, i, client_id, where):
    key = "stale:%d" % client_id
    with c.client(i, timeout=5 * c.slow) as x:
        r = retried(c, x, "COHORT.REQ", client_id, 1, "SET", key, "a")
        check(r == "OK", "%s: request 1: %r" % (where, r))
        r = retried(c, x, "COHORT.REQ", client_id, 2, "SET", key, "b")
        check(r == "OK", "%s: request 2: %r" % (where, r))
        try:
            got = x.pipeline([("COHORT.REQ", client_id, 1, "SET", key, "c"),
                              ("PING",)])
            if isinstance(got[0], resp.RespError) and \
                    got[0].code in ("TRYAGAIN", "UNKNOWN"):
                got = [retried(c, x, "COHORT.REQ", client_id, 1, "SET", key,
                               "c"), got[1]]
        except OSError as e:
            raise cl.TestFailure("%s: no answer to a request older than the "
                                 "client's latest (%r)" % (where, e))
        err = got[0]
        log("%s: stale request -> %r" % (where, err))
        check(isinstance(err, resp.RespError) and err.code == "ERR" and
              "stale request" in err.message and
              "not applied" in err.message,
              "%s: want -ERR stale request ... not applied, got %r"
              % (where, err))
        check(got[1] == "PONG", "%s: PING after the stale request: %r"
              % (where, got[1]))
        r = retried(c, x, "COHORT.REQ", client_id, 2, "SET", key, "b")
        check(r == "OK", "%s: retry of the latest request: %r" % (where, r))
        check(retried(c, x, "GET", key) == b"b", "%s: the stale write was "
              "applied" % where)


def view_of(c, i):
    return c.info(i).get("view")


def twice_in_flight(c, p):
    """The same COHORT.REQs pipelined on two connections at once, so the
    second copy of each arrives while the first is in flight: the first
    caller was answered "-UNKNOWN the primary changed ..." though no
    primary changed. Now its -UNKNOWN names the request and says it was
    sent again; the request is applied once (an INCR per request number)."""
    count = 50
    for attempt in range(3):
        client_id = 90 + attempt
        key = "twice:%d" % client_id
        view = view_of(c, p)
        cmds = [("COHORT.REQ", client_id, n, "INCR", key)
                for n in range(1, count + 1)]
        data = b"".join(resp.encode_command(*cmd) for cmd in cmds)
        with c.client(p, timeout=10 * c.slow) as a, \
                c.client(p, timeout=10 * c.slow) as b:
            a.send_raw(data)
            b.send_raw(data)
            first = [a.read_reply() for _ in cmds]
            second = [b.read_reply() for _ in cmds]
        if view_of(c, p) != view:
            log("twice_in_flight: the view changed; again")
            continue
        errors = [r for r in first + second if isinstance(r, resp.RespError)]
        superseded = [e for e in errors if e.code == "UNKNOWN"]
        log("twice_in_flight: %d of %d first copies superseded, e.g. %r"
            % (len(superseded), count, superseded[:1]))
        for e in errors:
            check(e.code == "UNKNOWN" and "primary changed" not in e.message
                  and "sent again while in flight" in e.message,
                  "a copy superseded by the same request: %r" % e)
        check(superseded, "no first copy was still in flight when the "
              "second arrived (%d requests)" % count)
        for n, (x, y) in enumerate(zip(first, second), 1):
            check(not isinstance(y, resp.RespError) or
                  not isinstance(x, resp.RespError),
                  "request %d: neither copy was answered: %r, %r"
                  % (n, x, y))
            for r in (x, y):
                check(isinstance(r, resp.RespError) or r == n,
                      "request %d: want :%d (applied once), got %r"
                      % (n, n, r))
        with c.client(p, timeout=5 * c.slow) as x:
            total = retried(c, x, "GET", key)
        check(total == str(count).encode(), "the counter after %d requests "
              "sent twice: %r" % (count, total))
        return
    raise cl.TestFailure("twice_in_flight: the view changed in every try")


def main(binary):
    c = cl.Cluster(binary, n=3, name="stale")
    c.start()
    p, _ = c.wait_for_primary()
    stale_case(c, p, 77, "primary r%d" % p)
    for k, b in enumerate(c.backups(p)):
        stale_case(c, b, 78 + k, "backup r%d" % b)
    twice_in_flight(c, p)
    return "a stale COHORT.REQ is answered at once on the primary and " \
        "through both backups; a copy superseded in flight says so"


if __name__ == "__main__":
    cl.run_test("stale_request", main, budget_s=60)
