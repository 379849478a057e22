#!/usr/bin/env python3
"""test_listing — the listing reads on a real 3-replica cluster (issue 13,
item 3): SCAN with MATCH, COUNT and TYPE; KEYS; TYPE; RANDOMKEY; and
COHORT.RANGE start end [LIMIT n], through the primary, through a backup
(linearizable, the default) and on a backup after READONLY (its own
store), and again on the new primary after the old one is killed.

A full SCAN (cursor 0 until 0) returns every key (duplicates allowed);
MATCH and TYPE filter; COHORT.RANGE pages in key order, continuing from the
last key + "\\x00", and returns exactly the keys in [start, end); hostile
arguments get Redis's errors and the server stays up. A user whose ACL key
patterns are not ~* gets -NOPERM from COHORT.RANGE (it returns values of
keys it does not name) but may SCAN, as in Redis.

usage: test_listing.py [path/to/cohort]
"""

import sys

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402

KEYS = ["user:%d" % i for i in range(400)] + \
    ["job:%03d" % i for i in range(150)] + [b"bin\x00\xff", "a", "ab"]


def as_bytes(k):
    return k if isinstance(k, bytes) else k.encode()


ALL = sorted(as_bytes(k) for k in KEYS)


def full_scan(x, *opts):
    seen, cursor, calls = [], b"0", 0
    while True:
        cursor, keys = x.command("SCAN", cursor, *opts)
        seen.extend(keys)
        calls += 1
        check(calls < 10000, "SCAN did not finish")
        if cursor == b"0":
            return seen, calls


def full_range(x, start, end, limit):
    out, nxt = [], start
    while True:
        r = x.command("COHORT.RANGE", nxt, end, "LIMIT", limit)
        check(len(r) % 2 == 0 and len(r) // 2 <= limit,
              "COHORT.RANGE LIMIT %d gave %d items" % (limit, len(r)))
        pairs = [(r[i], r[i + 1]) for i in range(0, len(r), 2)]
        out.extend(pairs)
        if len(pairs) < limit:
            return out
        nxt = pairs[-1][0] + b"\x00"


def expect_error(x, want, *args):
    try:
        r = x.command(*args)
    except resp.RespError as e:
        check(e.message.startswith(want),
              "%r: want -%s..., got -%s" % (args, want, e.message))
        return
    raise cl.TestFailure("%r: want -%s, got %r" % (args, want, r[:6]))


def check_listing(x, where):
    seen, calls = full_scan(x, "COUNT", 40)
    check(set(seen) == set(ALL), "%s: full SCAN missed %d keys" %
          (where, len(set(ALL) - set(seen))))
    check(calls > 1, "%s: SCAN COUNT 40 over %d keys took one call" %
          (where, len(ALL)))
    jobs, _ = full_scan(x, "MATCH", "job:*", "COUNT", 100)
    check(sorted(set(jobs)) == [k for k in ALL if k.startswith(b"job:")],
          "%s: SCAN MATCH job:* gave %d keys" % (where, len(set(jobs))))
    strings, _ = full_scan(x, "TYPE", "string", "COUNT", 1000)
    check(set(strings) == set(ALL), "%s: SCAN TYPE string" % where)
    hashes, _ = full_scan(x, "TYPE", "hash", "COUNT", 1000)
    check(hashes == [], "%s: SCAN TYPE hash gave %r" % (where, hashes[:3]))
    keys = x.command("KEYS", "job:1[0-4]?")
    check(sorted(keys) == [b"job:%d" % i for i in range(100, 150)],
          "%s: KEYS job:1[0-4]? gave %r" % (where, sorted(keys)[:5]))
    check(x.command("TYPE", "a") == "string", "%s: TYPE a" % where)
    check(x.command("TYPE", "nope") == "none", "%s: TYPE nope" % where)
    check(x.command("RANDOMKEY") in set(ALL), "%s: RANDOMKEY" % where)
    pairs = full_range(x, "", "", 37)
    check([k for k, _ in pairs] == ALL, "%s: COHORT.RANGE \"\" \"\" is not "
          "every key in order" % where)
    ours = set(as_bytes(k) for k in KEYS)
    check(all(v == k for k, v in pairs if k in ours),
          "%s: RANGE values" % where)
    sub = full_range(x, "job:", "job;", 1000)
    check([k for k, _ in sub] == [k for k in ALL if k.startswith(b"job:")],
          "%s: COHORT.RANGE job: job; (a prefix)" % where)
    first = x.command("COHORT.RANGE", "user:", "")
    check(len(first) == 200, "%s: default LIMIT 100 gave %d items"
          % (where, len(first)))
    check(x.command("COHORT.RANGE", "z", "a") == [], "%s: empty range"
          % where)
    expect_error(x, "ERR invalid cursor", "SCAN", "-1")
    expect_error(x, "ERR invalid cursor", "SCAN", "abc")
    expect_error(x, "ERR syntax error", "SCAN", "0", "COUNT", "0")
    expect_error(x, "ERR value is not an integer", "SCAN", "0", "COUNT",
                 "99999999999999999999")
    expect_error(x, "ERR unknown type name 'foo'", "SCAN", "0", "TYPE", "foo")
    expect_error(x, "ERR LIMIT must be between 1 and 10000",
                 "COHORT.RANGE", "a", "b", "LIMIT", "-1")
    expect_error(x, "ERR LIMIT must be between 1 and 10000",
                 "COHORT.RANGE", "a", "b", "LIMIT", "100000000000")
    expect_error(x, "ERR wrong number of arguments", "KEYS")
    check(x.command("PING") == "PONG", "%s: alive after bad input" % where)


def main(binary):
    c = cl.Cluster(binary, n=3, name="listing")
    c.start()
    p, _ = c.wait_for_primary()
    with c.client(p) as x:
        for i in range(0, len(KEYS), 50):
            args = []
            for k in KEYS[i:i + 50]:
                args += [k, k]
            check(x.command("MSET", *args) == "OK", "MSET")
        # The harness may have written a probe key: list what is there.
        everything = sorted(x.command("KEYS", "*"))
        check(set(ALL) <= set(everything) and
              len(everything) == x.command("DBSIZE") and
              len(everything) - len(ALL) <= 2,
              "KEYS * gave %d keys, want ours (%d)" % (len(everything),
                                                       len(ALL)))
        ALL[:] = everything
        check_listing(x, "primary")
    b = c.backups(p)[0]
    with c.client(b) as x:
        check_listing(x, "backup %d" % b)
    c.wait_converged()
    with c.client(b) as x:
        check(x.command("READONLY") == "OK", "READONLY")
        check_listing(x, "backup %d READONLY" % b)
    # COHORT.RANGE returns values of keys it does not name: refused to a
    # user whose key patterns are not ~*; SCAN (names only, as Redis) not.
    with c.client(p) as x:
        check(x.command("ACL", "SETUSER", "lim", "on", ">pw", "~job:*",
                        "+@all") == "OK", "ACL SETUSER lim")
    with c.client(p) as x:
        check(x.command("AUTH", "lim", "pw") == "OK", "AUTH lim")
        expect_error(x, "NOPERM", "COHORT.RANGE", "job:", "job;")
        cursor, _ = x.command("SCAN", "0")
        check(isinstance(cursor, bytes), "SCAN as lim")
    c.kill(p)
    p2, _ = c.wait_for_primary()
    log("killed primary %d; new primary %d" % (p, p2))
    with c.client(p2) as x:
        check_listing(x, "new primary %d" % p2)
    c.check_healthy()
    return "%d keys listed through primary, backup, READONLY and failover" \
        % len(ALL)


if __name__ == "__main__":
    cl.run_test("test_listing", main, budget_s=120)
