#!/usr/bin/env python3
"""test_client_tls — TLS for clients (issue 17, item 4).

Certificates are made with the openssl command: a CA, two server
certificates (A, then B for the reload) and a client certificate. Three
replicas with --requirepass, --tls-port and --tls-auth-clients yes (Redis's
default: a client certificate is required):
  - on every member, `redis-cli --tls` with the CA and the client
    certificate and the password SETs (through the backups: forwarded) and
    GETs; as an ACL user made with ACL SETUSER over TLS, it may SET a key
    in its pattern and gets NOPERM outside it;
  - redis-py (Debian's python3-redis) with ssl=True on every member: a
    password, the ACL user (NOPERM outside its keys), a wrong password
    refused, a pipeline of INCRs;
  - Python's ssl module: without a client certificate the handshake is
    refused; with one, AUTH and commands work; a plain RESP client on the
    TLS port is closed without an answer;
  - reload: certificate B is written over A's files and the replica gets
    SIGHUP: new connections are served certificate B, a connection opened
    before keeps working; then a broken certificate file and SIGHUP: the
    replica logs that it kept the old one, and new connections still get B.

usage: test_client_tls.py [path/to/cohort]
"""

import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402

PASSWORD = "tls-pw"


def openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd,
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise cl.TestFailure("openssl %s: %s" % (args[0], r.stderr.strip()))


def make_certs(d):
    """CA, server certificates a and b (for 127.0.0.1), client cert."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
            "ca.key", "-out", "ca.crt", "-days", "2", "-subj",
            "/CN=cohort test CA", cwd=d)
    with open(os.path.join(d, "ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name in ("a", "b", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout",
                name + ".key", "-out", name + ".csr", "-subj",
                "/CN=cohort test " + name, cwd=d)
        extra = ["-extfile", "ext"] if name != "client" else []
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt",
                "-CAkey", "ca.key", "-CAcreateserial", "-out", name + ".crt",
                "-days", "2", *extra, cwd=d)


def fingerprint_of_file(path):
    with open(path) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return hashlib.sha256(der).hexdigest()


class TlsCluster(cl.Cluster):
    """Each replica also gets --tls-port (picked with the other ports)."""

    tls_ports = []

    def start(self, timeout=None):
        orig = cl.pick_ports

        def pick(count, tries=200):
            ports = orig(count + self.n, tries)
            self.tls_ports = ports[count:]
            return ports[:count]
        cl.pick_ports = pick
        try:
            super().start(timeout)
        finally:
            cl.pick_ports = orig

    def args(self, i):
        return super().args(i) + ["--tls-port", str(self.tls_ports[i])]

    def client(self, i, timeout=5.0):
        c = resp.connect(self.client_ports[i], timeout=timeout)
        c.command("AUTH", PASSWORD)
        return c


def redis_cli(d, port, *args, user=None, password=PASSWORD):
    cmd = ["redis-cli", "--tls", "--cacert", os.path.join(d, "ca.crt"),
           "--cert", os.path.join(d, "client.crt"), "--key",
           os.path.join(d, "client.key"), "-h", "127.0.0.1", "-p", str(port),
           "--no-auth-warning"]
    cmd += ["--user", user, "--pass", password] if user else ["-a", password]
    deadline = time.monotonic() + 20
    while True:
        r = subprocess.run(cmd + list(args), capture_output=True, text=True,
                           timeout=20)
        out = (r.stdout + r.stderr).strip()
        # -TRYAGAIN: a view change on a loaded machine; nothing applied.
        if "TRYAGAIN" not in out or time.monotonic() > deadline:
            return out
        time.sleep(0.05)


def tls_socket(d, port, with_cert=True):
    ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.crt"))
    if with_cert:
        ctx.load_cert_chain(os.path.join(d, "client.crt"),
                            os.path.join(d, "client.key"))
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def tls_command(sock, *args):
    sock.sendall(resp.encode_command(*args))
    buf = bytearray()
    while True:
        r = resp.parse_reply(buf, 0)
        if r is not None:
            return r[0]
        chunk = sock.recv(65536)
        if not chunk:
            raise cl.TestFailure("the TLS connection closed")
        buf += chunk


def served_fingerprint(d, port):
    with tls_socket(d, port) as s:
        return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


def check_redis_cli(c, d, primary):
    for i in range(c.n):
        port = c.tls_ports[i]
        out = redis_cli(d, port, "SET", "tls:%d" % i, "v%d" % i)
        check(out == "OK", "replica %d: redis-cli --tls SET answered %r"
              % (i, out))
        out = redis_cli(d, port, "GET", "tls:%d" % i)
        check(out == "v%d" % i, "replica %d: redis-cli --tls GET answered %r"
              % (i, out))
    out = redis_cli(d, c.tls_ports[primary], "ACL", "SETUSER", "app", "on",
                    ">app-pw", "~app:*", "+@read", "+@write")
    check(out == "OK", "ACL SETUSER over TLS answered %r" % out)
    for i in range(c.n):
        port = c.tls_ports[i]
        deadline = time.monotonic() + 10 * c.slow
        while True:
            out = redis_cli(d, port, "SET", "app:%d" % i, "x", user="app",
                            password="app-pw")
            if out == "OK" or time.monotonic() > deadline:
                break
            time.sleep(0.1)  # this member applies the new user a moment
        check(out == "OK", "replica %d: redis-cli --tls --user app SET "
              "answered %r" % (i, out))
        out = redis_cli(d, port, "SET", "other:%d" % i, "x", user="app",
                        password="app-pw")
        check("NOPERM" in out, "replica %d: user app's SET outside its keys "
              "over TLS answered %r" % (i, out))


def check_python_ssl(c, d):
    port = c.tls_ports[0]
    try:
        with tls_socket(d, port, with_cert=False) as s:
            s.sendall(resp.encode_command("PING"))
            got = s.recv(100)
        refused = got == b""
    except (ssl.SSLError, OSError):
        refused = True
    check(refused, "a TLS client without a certificate was served "
          "(--tls-auth-clients yes)")
    with tls_socket(d, port) as s:
        e = tls_command(s, "GET", "tls:0")
        check(isinstance(e, resp.RespError) and str(e).startswith("NOAUTH"),
              "GET before AUTH over TLS answered %r" % (e,))
        check(tls_command(s, "AUTH", PASSWORD) == "OK", "AUTH over TLS")
        check(tls_command(s, "GET", "tls:0") == b"v0", "GET over TLS")
    with resp.connect(port) as plain:
        plain.send_raw(resp.encode_command("PING"))
        check(plain.closed_by_peer(5 * c.slow), "a plain client on the TLS "
              "port was not closed")


def check_reload(c, d):
    port = c.tls_ports[0]
    fp_a = fingerprint_of_file(os.path.join(d, "a.crt"))
    fp_b = fingerprint_of_file(os.path.join(d, "b.crt"))
    check(served_fingerprint(d, port) == fp_a, "not serving certificate A")
    old = tls_socket(d, port)
    check(tls_command(old, "AUTH", PASSWORD) == "OK", "AUTH before reload")
    for ext in ("crt", "key"):
        shutil.copy(os.path.join(d, "b." + ext), os.path.join(d, "srv." + ext))
    c.signal(0, signal.SIGHUP)
    deadline = time.monotonic() + 10 * c.slow
    while served_fingerprint(d, port) != fp_b:
        check(time.monotonic() < deadline, "certificate B not served after "
              "SIGHUP:\n%s" % c.log_tail(0))
        time.sleep(0.05)
    check(tls_command(old, "PING") == "PONG", "a connection opened before "
          "the reload stopped working")
    old.close()
    with open(os.path.join(d, "srv.crt"), "w") as f:
        f.write("not a certificate\n")
    c.signal(0, signal.SIGHUP)
    deadline = time.monotonic() + 10 * c.slow
    while "not reloaded" not in c.log_text(0):
        check(time.monotonic() < deadline, "no log line for a failed "
              "reload:\n%s" % c.log_tail(0))
        time.sleep(0.05)
    check(served_fingerprint(d, port) == fp_b, "a failed reload changed the "
          "certificate served")
    check(c.alive(0), "replica 0 exited after SIGHUP")
    stats = c.info(0, "stats")
    check(stats.get("tls_certificate_reloads") == "1" and
          int(stats.get("tls_connection_failures", "0")) >= 2,
          "INFO stats: %r" % {k: v for k, v in stats.items()
                              if k.startswith("tls")})


REDIS_PY = r"""
import json, sys
import redis
a = json.loads(sys.argv[1])
tls = dict(ssl=True, ssl_ca_certs=a["ca"], ssl_certfile=a["crt"],
           ssl_keyfile=a["key"], socket_timeout=20)
out = {}
for i, port in enumerate(a["ports"]):
    r = redis.Redis(host="127.0.0.1", port=port, password=a["pw"], **tls)
    for attempt in range(200):
        try:
            out["set%d" % i] = r.set("py:%d" % i, "v%d" % i)
            break
        except redis.exceptions.ResponseError as e:
            if "TRYAGAIN" not in str(e):
                raise
    out["get%d" % i] = r.get("py:%d" % i).decode()
    p = r.pipeline(transaction=False)
    for k in range(50):
        p.incr("py:count")
    out["pipe%d" % i] = p.execute()[-1]
    u = redis.Redis(host="127.0.0.1", port=port, username="app",
                    password="app-pw", **tls)
    out["user%d" % i] = u.set("app:py%d" % i, "x")
    try:
        u.set("other:py", "x")
        out["noperm%d" % i] = "allowed"
    except redis.exceptions.ResponseError as e:
        out["noperm%d" % i] = str(e)
    try:
        redis.Redis(host="127.0.0.1", port=port, password="wrong",
                    **tls).ping()
        out["wrong%d" % i] = "served"
    except (redis.exceptions.ResponseError,
            redis.exceptions.AuthenticationError) as e:
        # redis-py 4.3 raises ResponseError; later ones AuthenticationError
        out["wrong%d" % i] = "refused" if "WRONGPASS" in str(e) else str(e)
print(json.dumps(out))
"""


def python_with_redis():
    """A Python that has redis-py: this one, or Debian's (python3-redis,
    installed by scripts/deps.sh) when this one is another install."""
    for exe in (sys.executable, "/usr/bin/python3"):
        if exe and os.path.exists(exe) and subprocess.run(
                [exe, "-c", "import redis"], capture_output=True,
                timeout=30).returncode == 0:
            return exe
    return None


def check_redis_py(c, d):
    """redis-py with ssl=True, as its users connect: a password, then the
    ACL user made by check_redis_cli, on every member (writes from the
    backups are forwarded)."""
    exe = python_with_redis()
    if exe is None:
        check(os.environ.get("CI") != "true", "redis-py (python3-redis) is "
              "missing on CI: scripts/deps.sh installs it")
        log("redis-py step skipped: no python3 with the redis module "
            "(apt-get install python3-redis)")
        return False
    args = json.dumps({"ca": os.path.join(d, "ca.crt"),
                       "crt": os.path.join(d, "client.crt"),
                       "key": os.path.join(d, "client.key"),
                       "ports": c.tls_ports, "pw": PASSWORD})
    r = subprocess.run([exe, "-c", REDIS_PY, args], capture_output=True,
                       text=True, timeout=120 * c.slow)
    tail = " | ".join((r.stdout + r.stderr).splitlines()[-4:])
    check(r.returncode == 0, "redis-py over TLS failed (exit %d): %s"
          % (r.returncode, tail))
    out = json.loads(r.stdout)
    for i in range(c.n):
        check(out["set%d" % i] is True and out["get%d" % i] == "v%d" % i,
              "replica %d: redis-py SET/GET over TLS: %r" % (i, out))
        check(out["pipe%d" % i] == 50 * (i + 1), "replica %d: redis-py "
              "pipeline of 50 INCRs ended at %r" % (i, out["pipe%d" % i]))
        check(out["user%d" % i] is True, "replica %d: redis-py as ACL user "
              "app: %r" % (i, out))
        check("NOPERM" in out["noperm%d" % i] or
              "permission" in out["noperm%d" % i].lower(),
              "replica %d: redis-py as app outside its keys: %r"
              % (i, out["noperm%d" % i]))
        check(out["wrong%d" % i] == "refused", "replica %d: redis-py with "
              "a wrong password was served" % i)
    return True


def check_pipeline(c, d):
    """Many pipelined commands and a large value over TLS: input that
    arrives faster than it is parsed waits in the session, not lost. A
    failover during the round (a false suspicion on a loaded machine)
    answers some writes UNKNOWN or TRYAGAIN: the round is run again on
    fresh keys, a bounded number of times."""
    big = b"x" * (900 * 1024)
    n = 3000
    for attempt in range(4):
        count, key = "count%d" % attempt, "big%d" % attempt
        with tls_socket(d, c.tls_ports[1]) as s:
            s.settimeout(30 * c.slow)
            check(tls_command(s, "AUTH", PASSWORD) == "OK", "AUTH")
            s.sendall(resp.encode_command("SET", key, big) +
                      b"".join(resp.encode_command("INCR", count)
                               for _ in range(n)) +
                      resp.encode_command("GET", key))
            buf = bytearray()
            pos, replies = 0, []
            while len(replies) < n + 2:
                r = resp.parse_reply(buf, pos)
                if r is None:
                    chunk = s.recv(1 << 16)
                    check(chunk, "TLS connection closed after %d replies"
                          % len(replies))
                    buf += chunk
                    continue
                replies.append(r[0])
                pos = r[1]
        errors = [r for r in replies if isinstance(r, resp.RespError)]
        if errors and all(e.code in ("UNKNOWN", "TRYAGAIN") for e in errors) \
                and attempt < 3:
            log("pipelined round %d met a failover (%d replies %s); again"
                % (attempt, len(errors), errors[0].code))
            continue
        check(replies[0] == "OK" and replies[n] == n and
              replies[n + 1] == big, "pipelined replies over TLS: %r ... %r"
              % (replies[:2], replies[n:n + 1]))
        return


def run(binary):
    if shutil.which("openssl") is None or shutil.which("redis-cli") is None:
        print("SKIP client_tls: openssl or redis-cli is missing")
        sys.exit(cl.SKIP_CODE)
    d = tempfile.mkdtemp(prefix="cohort-tls-certs-")
    try:
        make_certs(d)
        for ext in ("crt", "key"):
            shutil.copy(os.path.join(d, "a." + ext),
                        os.path.join(d, "srv." + ext))
        c = TlsCluster(binary, name="tls", extra_args=[
            "--requirepass", PASSWORD,
            "--tls-cert-file", os.path.join(d, "srv.crt"),
            "--tls-key-file", os.path.join(d, "srv.key"),
            "--tls-ca-cert-file", os.path.join(d, "ca.crt")])
        c.start()
        primary, _ = c.wait_for_primary()
        c.wait_converged()
        check_redis_cli(c, d, primary)
        log("redis-cli --tls: password and ACL user on every member")
        if check_redis_py(c, d):
            log("redis-py ssl=True: password and ACL user on every member")
        check_python_ssl(c, d)
        log("python ssl: certificate required, AUTH, plain client closed")
        check_pipeline(c, d)
        log("a 900 KiB value and 3000 pipelined INCRs over TLS")
        check_reload(c, d)
        log("SIGHUP reloads the certificate; a broken one is refused")
        c.stop_all()
        c.cleanup()
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return ("redis-cli, redis-py and Python ssl over TLS on 3 members with a password "
            "and an ACL user; certificate reload on SIGHUP")


if __name__ == "__main__":
    cl.run_test("client_tls", run, budget_s=150)
