#!/usr/bin/env python3
"""test_strings — the string and keyspace commands of src/kv/strings.h on a
3-replica cluster.

Checks, on real processes:
  - GETDEL, GETSET, SETNX, MSETNX, APPEND, STRLEN, SETRANGE, GETRANGE,
    SUBSTR, INCRBYFLOAT, UNLINK, COPY, RENAME, RENAMENX, FLUSHDB and
    FLUSHALL through a backup (forwarded to the primary): the replies and
    error texts Redis documents for them;
  - the same commands inside MULTI/EXEC, as one op;
  - ACL: the commands are in Redis's categories (ACL CAT string, keyspace,
    dangerous); a user without @dangerous, or whose key patterns do not
    admit every key, gets NOPERM for FLUSHALL and the keys survive;
  - redis-cli prints the replies as it prints Redis's (when installed);
  - after the primary is SIGKILLed and a new one takes over, more writes
    (INCRBYFLOAT, APPEND, RENAME, COPY) apply, and every live member holds
    the same values and versions (KVINFO, read locally after READONLY);
    a FLUSHALL then empties every member.

usage: test_strings.py [path/to/cohort]
"""

import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log, retry  # noqa: E402


def expect(k, args, want):
    try:
        got = k.command(*args)
    except resp.RespError as e:
        got = e
    if isinstance(want, str) and want.startswith("-"):
        ok = isinstance(got, resp.RespError) and got.message == want[1:]
    else:
        ok = not isinstance(got, resp.RespError) and got == want
    check(ok, "%s: got %r, want %r" % (" ".join(map(str, args)), got, want))


# Each (command, Redis's reply); "-..." is an error reply's text.
SEQUENCE = [
    (("SET", "s:a", "1"), "OK"),
    (("GETDEL", "s:a"), b"1"),
    (("GETDEL", "s:a"), None),
    (("GETSET", "s:a", "x"), None),
    (("GETSET", "s:a", "y"), b"x"),
    (("SETNX", "s:a", "z"), 0),
    (("SETNX", "s:b", "z"), 1),
    (("MSETNX", "s:c", "1", "s:b", "2"), 0),
    (("EXISTS", "s:c"), 0),
    (("MSETNX", "s:c", "1", "s:d", "2"), 1),
    (("MSETNX", "s:c"), "-ERR wrong number of arguments for 'msetnx' "
     "command"),
    (("APPEND", "s:e", "Hello"), 5),
    (("APPEND", "s:e", " World"), 11),
    (("GET", "s:e"), b"Hello World"),
    (("STRLEN", "s:e"), 11),
    (("STRLEN", "s:none"), 0),
    (("SETRANGE", "s:e", "6", "Redis"), 11),
    (("GET", "s:e"), b"Hello Redis"),
    (("SETRANGE", "s:f", "6", "Redis"), 11),
    (("GET", "s:f"), b"\0\0\0\0\0\0Redis"),
    (("SETRANGE", "s:f", "-1", "x"), "-ERR offset is out of range"),
    (("SETRANGE", "s:f", "x", "x"), "-ERR value is not an integer or out "
     "of range"),
    (("SETRANGE", "s:f", "1048576", "x"), "-ERR string exceeds maximum "
     "allowed size: 1048577 bytes; limit is 1048576 (max-value-size)"),
    (("SET", "s:g", "This is a string"), "OK"),
    (("GETRANGE", "s:g", "0", "3"), b"This"),
    (("GETRANGE", "s:g", "-3", "-1"), b"ing"),
    (("GETRANGE", "s:g", "0", "-1"), b"This is a string"),
    (("GETRANGE", "s:g", "10", "100"), b"string"),
    (("SUBSTR", "s:g", "0", "3"), b"This"),
    (("GETRANGE", "s:g", "-1", "-5"), b""),
    (("SET", "s:h", "10.50"), "OK"),
    (("INCRBYFLOAT", "s:h", "0.1"), b"10.6"),
    (("INCRBYFLOAT", "s:h", "-5"), b"5.6"),
    (("SET", "s:h", "5.0e3"), "OK"),
    (("INCRBYFLOAT", "s:h", "2.0e2"), b"5200"),
    (("INCRBYFLOAT", "s:h", "abc"), "-ERR value is not a valid float"),
    (("INCRBYFLOAT", "s:e", "1"), "-ERR value is not a valid float"),
    (("INCRBYFLOAT", "s:h", "inf"), "-ERR increment would produce NaN or "
     "Infinity"),
    (("COPY", "s:h", "s:i"), 1),
    (("COPY", "s:h", "s:i"), 0),
    (("COPY", "s:e", "s:i", "REPLACE"), 1),
    (("GET", "s:i"), b"Hello Redis"),
    (("COPY", "s:h", "s:h"), "-ERR source and destination objects are "
     "the same"),
    (("COPY", "s:h", "s:j", "DB", "1"), "-ERR DB index is out of range: "
     "cohort has one database, 0"),
    (("RENAME", "s:none", "s:k"), "-ERR no such key"),
    (("RENAME", "s:i", "s:k"), "OK"),
    (("EXISTS", "s:i"), 0),
    (("RENAMENX", "s:k", "s:h"), 0),
    (("RENAMENX", "s:k", "s:l"), 1),
    (("GET", "s:l"), b"Hello Redis"),
    (("UNLINK", "s:l", "s:none", "s:g"), 2),
    (("FLUSHALL", "NOW"), "-ERR syntax error"),
]


def sequence(c, i):
    with c.client(i) as k:
        retry(c, lambda: k.command("SET", "s:warm", "1"), "SET", 20 * c.slow)
        for args, want in SEQUENCE:
            expect(k, args, want)
    log("%d commands through r%d answered as Redis documents"
        % (len(SEQUENCE), i))


def in_multi(c, i):
    with c.client(i) as k:
        retry(c, lambda: k.command("SET", "m:a", "1"), "SET", 20 * c.slow)
        r = k.pipeline([("MULTI",), ("APPEND", "m:a", "2"),
                        ("RENAME", "m:a", "m:b"),
                        ("INCRBYFLOAT", "m:b", "0.5"), ("STRLEN", "m:b"),
                        ("GETRANGE", "m:b", "0", "1"), ("COPY", "m:b", "m:c"),
                        ("RENAME", "m:none", "m:d"), ("EXEC",)])
        check(r[1:8] == ["QUEUED"] * 7, "queued: %r" % r[1:8])
        ex = r[8]
        check(isinstance(ex, list) and len(ex) == 7, "EXEC: %r" % ex)
        check(ex[:6] == [2, "OK", b"12.5", 4, b"12", 1], "EXEC: %r" % ex)
        check(isinstance(ex[6], resp.RespError)
              and ex[6].message == "ERR no such key", "EXEC: %r" % ex)
        ops = {k.command("KVINFO", key)[7] for key in ("m:b", "m:c")}
        check(len(ops) == 1, "one op wrote m:b and m:c: %r" % ops)


def acl_categories(c, i):
    with c.client(i) as k:
        string = set(x.decode() for x in k.command("ACL", "CAT", "string"))
        for name in ("getdel", "getset", "setnx", "msetnx", "append",
                     "strlen", "setrange", "getrange", "substr",
                     "incrbyfloat"):
            check(name in string, "%s not in @string: %r" % (name, string))
        keyspace = set(x.decode() for x in k.command("ACL", "CAT",
                                                     "keyspace"))
        for name in ("unlink", "copy", "rename", "renamenx", "flushdb",
                     "flushall"):
            check(name in keyspace, "%s not in @keyspace" % name)
        dangerous = set(x.decode() for x in k.command("ACL", "CAT",
                                                      "dangerous"))
        check({"flushall", "flushdb"} <= dangerous, "@dangerous: %r"
              % dangerous)
        check("rename" not in dangerous, "rename in @dangerous")
    for user, rules in (("careful", ["+@all", "-@dangerous", "~*"]),
                        ("scoped", ["+@all", "~app:*"])):
        retry(c, lambda rules=rules, user=user: c.command(
            i, "ACL", "SETUSER", user, "on", ">pw", *rules),
            "ACL SETUSER", 20 * c.slow)
    retry(c, lambda: c.command(i, "SET", "acl:keep", "1"), "SET",
          20 * c.slow)
    for user in ("careful", "scoped"):
        with c.client(i) as k:
            # The member learns the user when it applies the op.
            deadline = time.monotonic() + 10 * c.slow
            while True:
                try:
                    k.command("AUTH", user, "pw")
                    break
                except resp.RespError as e:
                    check(e.code == "WRONGPASS"
                          and time.monotonic() < deadline,
                          "AUTH %s on r%d: %r" % (user, i, e))
                    time.sleep(0.02)
            for cmd in ("FLUSHALL", "FLUSHDB"):
                try:
                    r = k.command(cmd)
                    check(False, "%s by %s: %r" % (cmd, user, r))
                except resp.RespError as e:
                    check(e.code == "NOPERM", "%s by %s: %r" % (cmd, user, e))
        check(c.command(i, "EXISTS", "acl:keep") == 1, "%s flushed" % user)
    log("ACL categories as Redis; FLUSHALL refused without @dangerous or "
        "allkeys")


def redis_cli(c, i):
    if not shutil.which("redis-cli"):
        log("redis-cli not installed: its comparison skipped")
        return
    port = c.client_ports[i]

    def cli(*args):
        cmd = ["redis-cli", "-h", cl.HOST, "-p", str(port)] + list(args)
        p = subprocess.run(cmd, capture_output=True, timeout=30)
        check(p.returncode == 0, "%s: exit %d" % (cmd, p.returncode))
        return p.stdout.decode("utf-8", "replace").strip()

    retry(c, lambda: c.command(i, "SET", "cli:f", "10.50"), "SET",
          20 * c.slow)
    for args, want in ((["INCRBYFLOAT", "cli:f", "0.1"], '"10.6"'),
                       (["APPEND", "cli:f", "x"], "(integer) 5"),
                       (["GETRANGE", "cli:f", "-2", "-1"], '"6x"'),
                       (["STRLEN", "cli:f"], "(integer) 5"),
                       (["SETNX", "cli:f", "y"], "(integer) 0"),
                       (["GETDEL", "cli:none"], "(nil)"),
                       (["RENAME", "cli:none", "cli:g"],
                        "(error) ERR no such key"),
                       (["COPY", "cli:f", "cli:g"], "(integer) 1")):
        # redis-cli prints replies to a terminal with types, else raw;
        # --no-raw asks for the typed form.
        got = cli("--no-raw", *args)
        check(got == want, "redis-cli %s: got %r, want %r"
              % (" ".join(args), got, want))
    log("redis-cli prints the replies as Redis's")


def same_on_every_member(c, keys):
    """KVINFO of every key, read locally after READONLY, is the same on
    every live member once they have converged."""
    c.wait_converged()
    seen = {}
    for i in c.live():
        def read(i=i):
            with c.client(i) as k:
                check(k.command("READONLY") == "OK", "READONLY")
                return [k.command("KVINFO", key) for key in keys] + \
                    [k.command("DBSIZE")]
        seen[i] = retry(c, read, "KVINFO on r%d" % i, 20 * c.slow)
    first = list(seen.values())[0]
    for i, v in seen.items():
        check(v == first, "r%d holds %r, another member %r" % (i, v, first))
    return first


def failover(c):
    p, _ = c.wait_for_primary()
    b = c.backups(p)[0]
    with c.client(b) as k:
        retry(c, lambda: k.command("SET", "f:n", "1.5"), "SET", 20 * c.slow)
        k.command("APPEND", "f:s", "abc")
        k.command("MSETNX", "f:x", "1", "f:y", "2")
    c.kill(p)
    p2, waited = c.wait_for_primary()
    log("SIGKILL primary r%d; new primary r%d after %.2fs" % (p, p2, waited))
    with c.client(b) as k:
        r = retry(c, lambda: k.command("INCRBYFLOAT", "f:n", "0.25"),
                  "INCRBYFLOAT after the failover", 30 * c.slow)
        check(r == b"1.75", "INCRBYFLOAT after the failover: %r" % r)
        check(k.command("APPEND", "f:s", "def") == 6, "APPEND")
        check(k.command("RENAME", "f:x", "f:z") == "OK", "RENAME")
        check(k.command("COPY", "f:s", "f:t") == 1, "COPY")
        check(k.command("SETRANGE", "f:t", "1", "ZZ") == 6, "SETRANGE")
        check(k.command("GETDEL", "f:y") == b"2", "GETDEL")
    keys = ("f:n", "f:s", "f:x", "f:y", "f:z", "f:t")
    state = same_on_every_member(c, keys)
    values = [kv[1] if kv else None for kv in state[:-1]]
    check(values == [b"1.75", b"abcdef", None, None, b"1", b"aZZdef"],
          "values after the failover: %r" % values)
    with c.client(b) as k:
        check(k.command("FLUSHALL") == "OK", "FLUSHALL")
    state = same_on_every_member(c, keys)
    check(state[-1] == 0, "DBSIZE after FLUSHALL: %r" % state[-1])
    log("after the failover every member holds the same keys and versions; "
        "FLUSHALL emptied all of them")


def scenario(binary):
    c = cl.Cluster(binary, n=3, name="strings")
    c.start()
    p, _ = c.wait_for_primary()
    backups = c.backups(p)
    log("primary r%d, backups %s" % (p, backups))
    sequence(c, backups[0])
    in_multi(c, backups[1])
    redis_cli(c, p)
    acl_categories(c, backups[0])
    failover(c)
    return "string commands as Redis, in MULTI, under ACLs, through a failover"


if __name__ == "__main__":
    cl.run_test("strings", scenario, budget_s=120)
