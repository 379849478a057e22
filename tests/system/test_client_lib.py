#!/usr/bin/env python3
"""test_client_lib — libcohort-client masks failover, exactly once (issue
15), through build/cohort-client-test (linked against the shared library).

  1. not applied: every member is down from the start; one INCR with a
     short deadline fails with ENOTAPPLIED (nothing could have reached a
     member), not EUNKNOWN.
  2. exactly once: one client makes INCRs of its own counter with a
     generous deadline while the primary is SIGKILLed 3 times (each time
     restarted once a new primary serves) and SIGSTOPped twice (resumed
     once another serves). Every call succeeds, the replies are 1, 2, 3,
     ... in order (no write lost or applied twice, and each reply is the
     write's one true reply), and the counter read back equals the number
     of calls. Then the same with 8 threads (a handle each) on one
     counter and 2 kills: every call succeeds, no two calls got the same
     reply, each thread's replies rise, and the replies are exactly 1..N.
  2b. hedging: 4 handles INCR with a 60 s attempt timeout; the primary is
     SIGSTOPped and, while it is still stopped, 200 more INCRs must
     succeed (each call hedged to another member after hedge_ms; without
     hedging they would all wait 60 s on the frozen primary). Exactly
     once as above.
  3. short deadline: the same with a deadline shorter than a failover and
     2 kills: calls may fail, but the counter lies between the calls that
     succeeded and those plus the ones that failed with EUNKNOWN (a call
     that said ENOTAPPLIED never counted).
  4. unknown: a client connected to the primary, then every replica is
     SIGSTOPped; an INCR with a short deadline fails with EUNKNOWN (it was
     sent, no answer came). After SIGCONT the group serves again.
  5. local reads: GET with COHORT_CALL_READ_LOCAL answers from members.
  5a. read your writes: 60 times a SET, then a local GET on the members
     in turn (backups included): every GET sees its SET, though the
     application passes no revision (the library's read_your_writes
     option); the stale count without the option is printed.
  5b. `cohort cli` (on the library): a command from the arguments, commands
     from stdin, an error reply (exit 1).
  6. auth (a 1-replica group with --requirepass): the right password
     works, a wrong one fails at once with EAUTH.
  7. TLS (3 replicas with --tls-port, client certificates required, and a
     password; skipped without the openssl command): INCRs over TLS to
     the TLS ports through a SIGKILL of the primary are exactly once; a CA
     that did not sign the servers' certificates gets ENOTAPPLIED with
     the verification failure in the message.

The counts and the longest run of calls are printed, not asserted.

usage: test_client_lib.py [path/to/cohort]
"""

import os
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
from cluster import check, log  # noqa: E402


def tool(binary):
    path = os.path.join(os.path.dirname(os.path.abspath(binary)),
                        "cohort-client-test")
    check(os.path.exists(path), "%s is not built (cmake target "
          "cohort-client-test)" % path)
    return path


def members(c):
    return ",".join("%s:%d" % (cl.HOST, p) for p in c.client_ports)


def parse_kv(line):
    return dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)


def call(binary, member_list, args, deadline_ms, extra=(), timeout=60):
    p = subprocess.run([tool(binary), "call", "--members", member_list,
                        "--deadline-ms", str(deadline_ms)] + list(extra)
                       + ["--"] + list(args),
                       capture_output=True, text=True, timeout=timeout)
    check(p.returncode == 0, "cohort-client-test call %s: rc %d: %s"
          % (args, p.returncode, p.stdout + p.stderr))
    lines = p.stdout.splitlines()
    first = lines[0].split()
    out = {"rc": first[0].split("=", 1)[1], "text": ""}
    if len(first) > 2:
        out["text"] = lines[0].split("text=", 1)[1]
    out["error"] = lines[1].split("=", 1)[1] if len(lines) > 1 else ""
    return out


class Incrementer:
    """cohort-client-test incr in the background, its progress followed."""

    def __init__(self, binary, c, key, deadline_ms, stop_file, threads=1,
                 member_list=None, extra=(), mode="incr"):
        self.stop_file = stop_file
        self.proc = subprocess.Popen(
            [tool(binary), mode, "--members", member_list or members(c),
             "--key", key, "--count", "1000000", "--deadline-ms",
             str(deadline_ms), "--stop-file", stop_file, "--threads",
             str(threads)] + list(extra),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.progress = 0
        self.result = None
        self.errors = []
        self.t_out = threading.Thread(target=self._read_out, daemon=True)
        self.t_err = threading.Thread(target=self._read_err, daemon=True)
        self.t_out.start()
        self.t_err.start()

    def _read_out(self):
        for line in self.proc.stdout:
            if line.startswith("progress "):
                self.progress = int(line.split()[1])
            elif line.startswith("result "):
                self.result = parse_kv(line)

    def _read_err(self):
        for line in self.proc.stderr:
            self.errors.append(line.rstrip())

    def wait_progress(self, more, timeout):
        target = self.progress + more
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if self.progress >= target:
                return
            time.sleep(0.01)
        check(False, "the client made no %d more calls in %.0fs (at %d; "
              "exit %s); its errors: %s" % (more, timeout, self.progress,
                                            self.proc.poll(),
                                            self.errors[-5:]))

    def stop(self, timeout):
        open(self.stop_file, "w").close()
        self.proc.wait(timeout=timeout)
        self.t_out.join(timeout=10)
        self.t_err.join(timeout=10)
        check(self.proc.returncode == 0 and self.result is not None,
              "cohort-client-test incr: exit %s, no result line; errors: %s"
              % (self.proc.returncode, self.errors[-5:]))
        return {k: int(v) for k, v in self.result.items()}


def check_load(name, res, value):
    """A load's result: no call failed, replies 1..n once each and in
    order, and the counter equal to the successful calls."""
    log("%s: %s; counter %d" % (name, res, value))
    check(res["ok"] > 0 and res["unknown"] == 0 and res["notapplied"] == 0
          and res["other"] == 0,
          "%s: calls failed with a generous deadline: %s" % (name, res))
    check(res["duplicates"] == 0 and res["out_of_order"] == 0,
          "%s: replies repeated or went back: %s" % (name, res))
    check(value == res["ok"] == res["last"],
          "%s: counter %d after %d successful calls (highest reply %d)"
          % (name, value, res["ok"], res["last"]))


def kill_primary_and_restart(c, slow):
    p, _ = c.wait_for_primary(probe=False)
    c.kill(p)
    q, waited = c.wait_for_primary(timeout=30 * slow, probe=False)
    c.restart(p)
    log("killed primary r%d; r%d took over after %.2fs; r%d restarted"
        % (p, q, waited, p))


def pause_primary_and_resume(c, slow):
    p, _ = c.wait_for_primary(probe=False)
    c.pause(p)
    try:
        q, waited = c.wait_for_primary(timeout=30 * slow, probe=False)
    finally:
        c.resume(p)
    log("froze primary r%d; r%d took over after %.2fs; r%d resumed"
        % (p, q, waited, p))


def counter(c, key):
    p, _ = c.wait_for_primary()
    v = c.command(p, "GET", key)
    return 0 if v is None else int(v)


def not_applied(binary):
    ports = cl.pick_ports(3)
    down = ",".join("%s:%d" % (cl.HOST, p) for p in ports)
    r = call(binary, down, ["INCR", "nobody-listens"], 500)
    check(r["rc"] == "ENOTAPPLIED", "INCR with every member down: %s (want "
          "ENOTAPPLIED)" % r)
    check("certainly not applied" in r["error"], "its message: %s" % r)
    log("all members down: %s" % r["error"])


def exactly_once(binary, c, key, kills, pauses, threads=1, mode="incr"):
    """mode incr: threads blocking handles; uvincr: handles in one libuv
    loop through include/cohort_client_uv.h."""
    stop = os.path.join(c.dir, "stop-" + key)
    inc = Incrementer(binary, c, key, 120000 * c.slow, stop, threads,
                      mode=mode)
    faults = [kill_primary_and_restart] * kills + \
        [pause_primary_and_resume] * pauses
    for fault in faults:
        inc.wait_progress(100, 60 * c.slow)
        fault(c, c.slow)
    inc.wait_progress(100, 60 * c.slow)
    res = inc.stop(60 * c.slow)
    value = counter(c, key)
    log("exactly once (%s), %d handle(s): %s; counter %d"
        % (mode, threads, res, value))
    check(res["ok"] > 0 and res["unknown"] == 0 and res["notapplied"] == 0
          and res["other"] == 0,
          "calls failed with a generous deadline: %s; errors: %s"
          % (res, inc.errors[-5:]))
    check(res["out_of_order"] == 0 and res["duplicates"] == 0
          and res["last"] == res["ok"],
          "replies were not 1..%d (in order per thread): %s"
          % (res["ok"], res))
    check(value == res["ok"], "counter %d after %d successful INCRs"
          % (value, res["ok"]))
    return res


def hedged_through_freeze(binary, c, extra=()):
    """4 handles INCR with an attempt timeout (60 s) far longer than the
    test waits: the primary is SIGSTOPped and, while it is still stopped,
    the calls must go on through the new primary. Only hedging does that
    (the same COHORT.REQ sent to another member after hedge_ms); without
    it every call waits on the frozen primary for the attempt timeout.
    Exactly once as above."""
    stop = os.path.join(c.dir, "stop-hedge")
    inc = Incrementer(binary, c, "hedge", 240000 * c.slow, stop, 4,
                      extra=["--attempt-timeout-ms", "60000"] + list(extra))
    inc.wait_progress(100, 60 * c.slow)
    p, _ = c.wait_for_primary(probe=False)
    c.pause(p)
    try:
        q, waited = c.wait_for_primary(timeout=30 * c.slow, probe=False)
        inc.wait_progress(200, 30 * c.slow)  # while r<p> is still stopped
    finally:
        c.resume(p)
    inc.wait_progress(100, 60 * c.slow)
    res = inc.stop(60 * c.slow)
    value = counter(c, "hedge")
    log("hedging: froze r%d, r%d took over after %.2fs, 200 INCRs went on "
        "meanwhile; %s; counter %d" % (p, q, waited, res, value))
    check(res["unknown"] == 0 and res["notapplied"] == 0
          and res["other"] == 0 and res["duplicates"] == 0
          and res["out_of_order"] == 0 and value == res["ok"],
          "hedged INCRs: %s, counter %d" % (res, value))
    return res


def short_deadline(binary, c, kills):
    stop = os.path.join(c.dir, "stop-short")
    inc = Incrementer(binary, c, "short", 150 * c.slow, stop)
    for _ in range(kills):
        inc.wait_progress(60, 60 * c.slow)
        kill_primary_and_restart(c, c.slow)
    inc.wait_progress(60, 60 * c.slow)
    res = inc.stop(60 * c.slow)
    value = counter(c, "short")
    log("short deadline: %s; counter %d" % (res, value))
    check(res["other"] == 0, "errors other than the deadline's: %s"
          % inc.errors[-5:])
    check(res["ok"] <= value <= res["ok"] + res["unknown"],
          "counter %d, but %d INCRs succeeded and %d are unknown"
          % (value, res["ok"], res["unknown"]))
    return res


def unknown(binary, c):
    c.wait_converged()
    proc = subprocess.Popen(
        [tool(binary), "call", "--members", members(c), "--deadline-ms",
         str(1000 * c.slow), "--attempt-timeout-ms", str(200 * c.slow),
         "--warmup", "--", "INCR", "frozen"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    ready = proc.stdout.readline()
    check(ready.strip() == "ready OK", "warm-up PING: %r" % ready)
    for i in range(c.n):
        c.pause(i)
    try:
        out, err = proc.communicate("go\n", timeout=60 * c.slow)
    finally:
        for i in range(c.n):
            c.resume(i)
    check("rc=EUNKNOWN" in out, "INCR sent to a frozen group: %s %s (want "
          "EUNKNOWN)" % (out, err))
    log("frozen group: %s" % out.strip().splitlines()[-1])
    c.wait_for_primary()
    value = counter(c, "frozen")
    check(value in (0, 1), "frozen counter is %d" % value)


def local_reads(binary, c):
    r = call(binary, members(c), ["SET", "greeting", "hello"], 20000 * c.slow)
    check(r["rc"] == "OK" and r["text"] == "OK", "SET: %s" % r)
    c.wait_converged()
    for _ in range(c.n):
        r = call(binary, members(c), ["GET", "greeting"], 20000 * c.slow,
                 extra=["--local"])
        check(r["rc"] == "OK" and r["text"] == "hello", "local GET: %s" % r)


def ryw(binary, c, key, count, extra=()):
    p = subprocess.run([tool(binary), "ryw", "--members", members(c),
                        "--deadline-ms", str(20000 * c.slow), "--key", key,
                        "--count", str(count)] + list(extra),
                       capture_output=True, text=True, timeout=120 * c.slow)
    check(p.returncode == 0, "cohort-client-test ryw: rc %d: %s"
          % (p.returncode, p.stdout + p.stderr))
    return parse_kv(p.stdout.strip().splitlines()[-1])


def read_your_writes(binary, c):
    """A SET through the library, then a local (bounded-staleness) GET on
    the members in turn: each GET sees the SET before it, the application
    passing no revision. Without the option a backup often answers before
    it has applied the write (printed, not asserted: it is timing)."""
    n = 60
    on = ryw(binary, c, "ryw:on", n)
    check(on["ok"] == str(n) and on["stale"] == "0" and on["failed"] == "0"
          and int(on["min_revision"]) > 0,
          "read your writes through local reads: %s" % on)
    off = ryw(binary, c, "ryw:off", n, extra=["--no-ryw"])
    log("read your writes: %s; without the option: %s" % (on, off))
    return "read your writes: %s/%d local reads saw the write before " \
        "them (%s without the option)" % (on["ok"], n, off["stale"] + " stale")


def cohort_cli(binary, c, args, stdin=None):
    p = subprocess.run([binary, "cli", "--members", members(c)] + args,
                       input=stdin, capture_output=True, text=True,
                       timeout=60 * c.slow)
    return p.returncode, p.stdout, p.stderr


def cli(binary, c):
    rc, out, err = cohort_cli(binary, c, ["SET", "cli:k", "hello"])
    check(rc == 0 and out == "OK\n", "cohort cli SET: %d %r %r"
          % (rc, out, err))
    rc, out, err = cohort_cli(binary, c, [],
                              "INCR cli:n\nINCR cli:n\nGET cli:k\n"
                              "GET cli:none\n")
    check(rc == 0 and out == "(integer) 1\n(integer) 2\nhello\n(nil)\n",
          "cohort cli from stdin: %d %r %r" % (rc, out, err))
    rc, out, err = cohort_cli(binary, c, ["INCR", "cli:k"])
    check(rc == 1 and out.startswith("(error) ERR"),
          "cohort cli INCR of a string: %d %r %r" % (rc, out, err))
    # redis-cli's -h/-p name one member; the rest are discovered.
    p = subprocess.run([binary, "cli", "-h", cl.HOST, "-p",
                        str(c.client_ports[-1]), "GET", "cli:k"],
                       capture_output=True, text=True, timeout=60 * c.slow)
    check(p.returncode == 0 and p.stdout == "hello\n",
          "cohort cli -h -p GET: %d %r %r" % (p.returncode, p.stdout,
                                              p.stderr))
    p = subprocess.run([binary, "cli", "-x", "GET", "cli:k"],
                       capture_output=True, text=True, timeout=60 * c.slow)
    check(p.returncode == 2 and "unknown flag -x" in p.stderr,
          "cohort cli -x: %d %r" % (p.returncode, p.stderr))


def auth(binary):
    c = cl.Cluster(binary, n=1, name="client-auth",
                   extra_args=["--requirepass", "pw-1"])
    c.start()
    m = members(c)
    r = call(binary, m, ["SET", "k", "v"], 20000 * c.slow,
             extra=["--password", "pw-1"])
    check(r["rc"] == "OK" and r["text"] == "OK", "SET with the password: %s"
          % r)
    r = call(binary, m, ["SET", "k", "v"], 20000 * c.slow,
             extra=["--password", "wrong"])
    check(r["rc"] == "EAUTH" and "WRONGPASS" in r["error"],
          "SET with a wrong password: %s (want EAUTH at once)" % r)
    log("wrong password: %s" % r["error"])


def tls(binary):
    import shutil
    import tempfile
    import test_client_tls as t
    if shutil.which("openssl") is None:
        log("openssl is missing: TLS not tested")
        return "TLS not tested (no openssl)"
    d = tempfile.mkdtemp(prefix="cohort-client-tls-")
    try:
        t.make_certs(d)
        c = t.TlsCluster(binary, name="client-tls", extra_args=[
            "--requirepass", t.PASSWORD,
            "--tls-cert-file", os.path.join(d, "a.crt"),
            "--tls-key-file", os.path.join(d, "a.key"),
            "--tls-ca-cert-file", os.path.join(d, "ca.crt")])
        c.start()
        c.wait_for_primary()
        tls_members = ",".join("127.0.0.1:%d" % p for p in c.tls_ports)
        opts = ["--tls", "--tls-cacert", os.path.join(d, "ca.crt"),
                "--tls-cert", os.path.join(d, "client.crt"),
                "--tls-key", os.path.join(d, "client.key"),
                "--password", t.PASSWORD]
        inc = Incrementer(binary, c, "tls", 120000 * c.slow,
                          os.path.join(c.dir, "stop-tls"),
                          member_list=tls_members, extra=opts)
        inc.wait_progress(100, 60 * c.slow)
        kill_primary_and_restart(c, c.slow)
        inc.wait_progress(100, 60 * c.slow)
        res = inc.stop(60 * c.slow)
        err = "\n".join(inc.errors[-5:])
        p, _ = c.wait_for_primary()
        with c.client(p) as conn:
            value = int(conn.command("GET", "tls"))
        log("TLS: %s; counter %d" % (res, value))
        check(res["ok"] > 0 and res["unknown"] == 0
              and res["notapplied"] == 0 and res["other"] == 0
              and res["duplicates"] == 0 and res["out_of_order"] == 0
              and value == res["ok"],
              "INCRs over TLS: %s, counter %d; errors: %s"
              % (res, value, err))
        wrong = ["--tls", "--tls-cacert", os.path.join(d, "client.crt"),
                 "--tls-cert", os.path.join(d, "client.crt"),
                 "--tls-key", os.path.join(d, "client.key"),
                 "--password", t.PASSWORD]
        r = call(binary, tls_members, ["INCR", "tls"], 1000 * c.slow,
                 extra=wrong)
        check(r["rc"] == "ENOTAPPLIED" and "certificate" in r["error"],
              "INCR with a CA that did not sign the servers: %s" % r)
        log("wrong CA: %s" % r["error"])
        return "TLS: %d INCRs through a kill, exact" % res["ok"]
    finally:
        shutil.rmtree(d, ignore_errors=True)


def body(binary):
    not_applied(binary)
    c = cl.Cluster(binary, n=3, name="client-lib")
    c.start()
    c.wait_for_primary()
    local_reads(binary, c)
    ryw_note = read_your_writes(binary, c)
    cli(binary, c)
    exact = exactly_once(binary, c, "exact", kills=3, pauses=2)
    many = exactly_once(binary, c, "threads", kills=2, pauses=0, threads=8)
    uv = exactly_once(binary, c, "uv", kills=1, pauses=1, threads=4,
                      mode="uvincr")
    hedged = hedged_through_freeze(binary, c)
    short = short_deadline(binary, c, kills=2)
    unknown(binary, c)
    auth(binary)
    tls_note = tls(binary)
    return (ryw_note + "; " + tls_note + "; " + "exactly once: %d INCRs over 3 kills and 2 pauses, longest "
            "call %d ms; 8 threads: %d INCRs over 2 kills, longest call %d "
            "ms; libuv, 4 handles: %d INCRs over a kill and a pause; 0 "
            "errors, 0 duplicates; hedging: 4 handles went on while the "
            "primary was stopped (longest call %d ms, attempt timeout 60 "
            "s); short deadline: %d ok, %d unknown, %d not applied"
            % (exact["ok"], exact["max_call_ms"], many["ok"],
               many["max_call_ms"], uv["ok"], hedged["max_call_ms"],
               short["ok"], short["unknown"], short["notapplied"]))


if __name__ == "__main__":
    cl.run_test("client_lib", body, budget_s=240)
