#!/usr/bin/env python3
"""test_maxmemory — --maxmemory with Redis's noeviction behaviour (issue 11,
item 6).

A cluster started with --maxmemory 2mb (Redis's unit syntax): 100 KiB SETs
through the primary are accepted until the next would take the store past
2 MiB, then get Redis's exact "-OOM command not allowed when used memory >
'maxmemory'." -- also through a backup (forwarded, decided by the
primary) and inside COHORT.REQ. At the limit: GET, MGET, DBSIZE work; an
overwrite with a value no longer than the old one works; DEL works and
frees room, after which a SET succeeds again; a COHORT.REQ retry of a
request applied before the limit was reached gets its stored reply, not
-OOM (an -OOM says "certainly not applied", which would be false for it).
INFO memory (used_memory, used_memory_human, used_memory_rss,
maxmemory 2097152, maxmemory_human 2.00M, maxmemory_policy noeviction) and
CONFIG GET maxmemory agree; used_memory is at most maxmemory, and equal on
every replica (it is the store's accounted bytes, a function of the data:
the refusal never makes replicas differ). A bad unit is refused at start.

usage: test_maxmemory.py [path/to/cohort]
"""

import subprocess
import sys

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402

LIMIT = 2 << 20
VALUE = 100 << 10
OOM = "OOM command not allowed when used memory > 'maxmemory'."


def bad_unit(binary):
    p = subprocess.run([binary, "server", "--id", "0", "--peers",
                        "127.0.0.1:1", "--clients", "127.0.0.1:2",
                        "--maxmemory", "2xb"], capture_output=True,
                       text=True, timeout=10)
    log("--maxmemory 2xb -> exit %d: %s" % (p.returncode, p.stderr.strip()))
    check(p.returncode == 2 and "--maxmemory" in p.stderr,
          "--maxmemory 2xb: want exit 2 naming the flag, got %d %r"
          % (p.returncode, p.stderr))


def fill(x, prefix):
    """SET prefix:N with 100 KiB values until -OOM; returns the count
    stored."""
    for k in range(1000):
        try:
            r = x.command("SET", "%s:%d" % (prefix, k), b"v" * VALUE)
            check(r == "OK", "SET %s:%d replied %r" % (prefix, k, r))
        except resp.RespError as e:
            check(e.message == OOM, "SET past the limit: want -%s, got -%s"
                  % (OOM, e.message))
            return k
    raise cl.TestFailure("1000 SETs of 100 KiB under --maxmemory 2mb were "
                         "all accepted")


def memory(c, i):
    inf = c.info(i, "memory")
    return inf


def main(binary):
    bad_unit(binary)
    c = cl.Cluster(binary, n=3, extra_args=["--maxmemory", "2mb"],
                   name="maxmemory")
    c.start()
    p, _ = c.wait_for_primary()
    b = c.backups(p)[0]
    with c.client(p) as x:
        cfg = x.command("CONFIG", "GET", "maxmemory*")
        check(cfg == [b"maxmemory", b"2097152", b"maxmemory-policy",
                      b"noeviction"], "CONFIG GET maxmemory*: %r" % (cfg,))
        # Applied before the limit: its retry must be answered later.
        r = x.command("COHORT.REQ", 4242, 1, "SET", "early", b"e" * VALUE)
        check(r == "OK", "COHORT.REQ 4242 1: %r" % (r,))
        stored = fill(x, "k")
        log("stored %d values of 100 KiB before -OOM" % stored)
        check(stored >= 10, "only %d values of 100 KiB fit in 2 MiB"
              % stored)
        inf = memory(c, p)
        used = int(inf["used_memory"])
        log("primary INFO memory: %s" % {k: inf[k] for k in sorted(inf)})
        check(int(inf["maxmemory"]) == LIMIT and
              inf["maxmemory_human"] == "2.00M" and
              inf["maxmemory_policy"] == "noeviction",
              "INFO memory limit fields: %r" % (inf,))
        check(LIMIT - 2 * VALUE < used <= LIMIT,
              "used_memory %d after filling a %d limit" % (used, LIMIT))
        check(int(inf["used_memory_rss"]) > 0 and
              inf["used_memory_human"].endswith(("K", "M")),
              "INFO memory: %r" % (inf,))
        # Reads work at the limit.
        check(x.command("GET", "k:0") == b"v" * VALUE, "GET at the limit")
        check(x.command("DBSIZE") == stored + 2, "DBSIZE at the limit")
        # An overwrite that does not grow is allowed; one that does is not.
        check(x.command("SET", "k:0", b"w" * VALUE) == "OK",
              "an overwrite of the same size at the limit")
        try:
            x.command("SET", "k:0", b"w" * (2 * VALUE))
            raise cl.TestFailure("a growing overwrite at the limit was "
                                 "accepted")
        except resp.RespError as e:
            check(e.message == OOM, "growing overwrite: -%s" % e.message)
        # Exactly once: the retry of the early request gets its reply; a
        # new request of that client gets -OOM.
        r = x.command("COHORT.REQ", 4242, 1, "SET", "early", b"e" * VALUE)
        check(r == "OK", "a retry of a request applied before the limit: "
              "want its stored reply, got %r" % (r,))
        try:
            x.command("COHORT.REQ", 4242, 2, "SET", "late", b"l" * VALUE)
            raise cl.TestFailure("COHORT.REQ past the limit was accepted")
        except resp.RespError as e:
            check(e.message == OOM, "COHORT.REQ past the limit: -%s"
                  % e.message)
    # Through a backup: forwarded, refused by the primary.
    with c.client(b) as x:
        try:
            x.command("SET", "via-backup", b"b" * VALUE)
            raise cl.TestFailure("a SET through a backup past the limit "
                                 "was accepted")
        except resp.RespError as e:
            check(e.message == OOM, "SET through a backup: -%s" % e.message)
        check(x.command("GET", "k:1") == b"v" * VALUE, "GET through a "
              "backup at the limit")
    # Deletes work and make room.
    with c.client(p) as x:
        check(x.command("DEL", "k:1", "k:2", "k:3") == 3, "DEL at the limit")
        check(x.command("SET", "again", b"a" * VALUE) == "OK",
              "SET after DEL made room")
        check(x.command("GET", "late") is None, "the refused write is there")
    # Every replica holds the same data and accounts the same memory.
    infos = c.wait_converged()
    used = {}
    for i in range(c.n):
        with c.client(i) as x:
            x.command("READONLY")
            check(x.command("GET", "again") == b"a" * VALUE,
                  "r%d lacks the last write" % i)
        used[i] = int(memory(c, i)["used_memory"])
    log("used_memory per replica: %s (applied op %s)"
        % (used, {i: inf["applied_op"] for i, inf in infos.items()}))
    check(len(set(used.values())) == 1, "used_memory differs between "
          "replicas: %s" % used)
    return "%d x 100 KiB fit in 2 MiB, then -OOM; reads, deletes, " \
        "retries and overwrites work; replicas agree" % stored


if __name__ == "__main__":
    cl.run_test("maxmemory", main, budget_s=120)
