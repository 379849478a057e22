#!/usr/bin/env python3
"""test_redis_tools — redis-cli and redis-benchmark (Debian redis-tools)
work against cohort.

On a 3-replica cluster, against the primary's and a backup's client port:
redis-cli SET/GET/INCR/MSET/MGET/DEL/EXISTS/DBSIZE/PING, `redis-cli --pipe`
with 2000 generated commands, 300 pipelined GET/SET pairs on one
connection (each GET sees the SET just before it, not the one after), and `redis-benchmark -t set,get -n 5000 -q`
(its output is printed). Skips if redis-cli is not installed.

usage: test_redis_tools.py [path/to/cohort]
"""

import shutil
import subprocess
import sys

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402


def cli(port, *args, stdin=None, timeout=30):
    cmd = ["redis-cli", "-h", cl.HOST, "-p", str(port)] + [str(a) for a in args]
    p = subprocess.run(cmd, input=stdin, capture_output=True,
                       timeout=timeout)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    check(p.returncode == 0, "%s exited %d: %s%s"
          % (" ".join(cmd), p.returncode, out, err))
    return out.strip()


def expect(port, args, want):
    got = cli(port, *args)
    check(got == want, "redis-cli -p %d %s: got %r, want %r"
          % (port, " ".join(map(str, args)), got, want))


def main(binary):
    if not shutil.which("redis-cli") or not shutil.which("redis-benchmark"):
        print("SKIP redis_tools: redis-cli/redis-benchmark not installed "
              "(apt-get install redis-tools)")
        sys.exit(cl.SKIP_CODE)
    c = cl.Cluster(binary, n=3, name="redis-tools")
    c.start()
    p, _ = c.wait_for_primary()
    b = [i for i in range(c.n) if i != p][0]
    results = []
    for who, i in (("primary", p), ("backup", b)):
        port = c.client_ports[i]
        t = who[0]  # keys per target
        expect(port, ["PING"], "PONG")
        expect(port, ["SET", t + "a", "1"], "OK")
        expect(port, ["GET", t + "a"], "1")
        expect(port, ["INCR", t + "a"], "2")
        expect(port, ["INCRBY", t + "a", "40"], "42")
        expect(port, ["DECR", t + "a"], "41")
        expect(port, ["GET", t + "missing"], "")
        expect(port, ["MSET", t + "x", "10", t + "y", "hello world"], "OK")
        expect(port, ["MGET", t + "x", t + "missing", t + "y"],
               "10\n\nhello world")
        expect(port, ["EXISTS", t + "x", t + "y", t + "missing"], "2")
        expect(port, ["DEL", t + "x"], "1")
        expect(port, ["SET", t + "a", "9", "NX"], "")
        expect(port, ["SET", t + "a", "9", "XX", "GET"], "41")
        expect(port, ["CAS", t + "a", "9", "10"], "1")
        expect(port, ["CAS", t + "a", "9", "11"], "0")
        expect(port, ["DECRBY", t + "a", "3"], "7")
        expect(port, ["INCRBY", t + "a", "-7"], "0")
        out = cli(port, "DBSIZE")
        check(out.isdigit() and int(out) >= 2, "DBSIZE: %r" % out)
        out = cli(port, "CLIENT", "ID")
        check(out.isdigit() and int(out) > 0, "CLIENT ID: %r" % out)
        # One connection: SETNAME then GETNAME (redis-cli -e runs a list of
        # commands from stdin on one connection).
        out = cli(port, stdin=b"CLIENT SETNAME tester\nCLIENT GETNAME\n"
                  b"QUIT\n")
        # (redis-cli may end at QUIT itself without printing its +OK.)
        check(out.split() in (["OK", "tester", "OK"], ["OK", "tester"]),
              "CLIENT SETNAME/GETNAME/QUIT: %r" % out)
        out = cli(port, "INCR", t + "y")
        check(out.startswith("ERR") or "(error)" in out,
              "INCR of a non-integer: %r" % out)
        info = cli(port, "INFO", "replication")
        check("role:" in info, "INFO replication has no role: %r" % info)

        # --pipe: 2000 commands in one stream, raw RESP.
        n = 2000
        data = b"".join(resp.encode_command("SET", "%spipe:%d" % (t, k),
                                            "v%d" % k) for k in range(n))
        out = cli(port, "--pipe", stdin=data, timeout=60)
        check("errors: 0" in out and "replies: %d" % n in out,
              "redis-cli --pipe: %r" % out)
        expect(port, ["GET", "%spipe:%d" % (t, n - 1)], "v%d" % (n - 1))
        expect(port, ["GET", "%spipe:0" % t], "v0")
        # Per-connection order, pipelined: SET v0, then GET (must see the
        # SET before it, not the one after it) and SET v<k>, 300 times.
        with resp.connect(port) as conn:
            cmds = [("SET", t + "order", "v0")]
            for k in range(1, 301):
                cmds += [("GET", t + "order"), ("SET", t + "order", "v%d" % k)]
            replies = conn.pipeline(cmds)
        wrong = [(k, replies[2 * k - 1]) for k in range(1, 301)
                 if replies[2 * k - 1] != b"v%d" % (k - 1)]
        check(not wrong, "pipelined SET/GET on one connection to the %s: "
              "reads out of order (round, value) %r" % (who, wrong[:5]))
        results.append("%s ok" % who)
        log("redis-cli against the %s r%d: %s" % (who, i, out.splitlines()[-1]))

    # redis-benchmark against the primary, then a backup.
    bench = []
    for who, i in (("primary", p), ("backup", b)):
        cmd = ["redis-benchmark", "-h", cl.HOST, "-p", str(c.client_ports[i]),
               "-t", "set,get", "-n", "5000", "-q"]
        proc = subprocess.run(cmd, capture_output=True, timeout=120 * c.slow)
        out = proc.stdout.decode("utf-8", "replace")
        err = proc.stderr.decode("utf-8", "replace")
        print("redis-benchmark against the %s r%d:" % (who, i))
        # -q rewrites its progress line with \r; print the final lines.
        lines = [ln.split("\r")[-1].strip() for ln in out.split("\n")]
        lines = [ln for ln in lines if ln]
        for ln in lines:
            print("    " + ln)
        if err.strip():
            print("    stderr: " + err.strip().replace("\n", "\n    "))
        check(proc.returncode == 0, "redis-benchmark exited %d"
              % proc.returncode)
        check(any(ln.startswith("SET:") for ln in lines)
              and any(ln.startswith("GET:") for ln in lines),
              "redis-benchmark did not report SET and GET: %r" % out)
        noise = "WARNING: Could not fetch server CONFIG"
        text = "\n".join(ln for ln in (out + "\n" + err).split("\n")
                         if noise not in ln)
        check("error" not in text.lower(),
              "redis-benchmark reported errors: %r %r" % (out, err))
        bench.append("%s: %s" % (who, ", ".join(
            ln.split(" requests per second")[0] + " req/s" for ln in lines
            if ln.startswith(("SET:", "GET:")))))
    return "redis-cli (%s); redis-benchmark %s" % (", ".join(results),
                                                   "; ".join(bench))


if __name__ == "__main__":
    cl.run_test("redis_tools", main, budget_s=90)
