#!/usr/bin/env python3
"""test_peer_modes — the three ways replicas trust each other.

1. No authentication (the default, `cohort up`): the server says at start
   that peers are unauthenticated and accepted from loopback only; a peer
   list with a non-loopback address is refused at start with one line
   naming --cluster-secret-file and --peer-tls-*.
2. A cluster secret: the group works (INFO peer_auth:secret); a replica
   started with another secret is refused by the others, with a log line
   that names the secret file, and rejoins once given the right one.
   500 junk connections to a peer port are refused and counted, with at
   most a few log lines per 10 s, and the member serves clients through
   the flood. Connections held open without a handshake
   (from another loopback address, 127.0.0.9, as from another host) do
   not lock a member's peers out: a backup restarted while 100 of them
   are kept open to each other member's peer port rejoins, and the
   members count the connections they closed to make room.
3. Mutual TLS with certificates made by the openssl command (skipped
   without it): the group works (peer_auth:tls); a replica whose
   certificate comes from another CA is refused, then rejoins with its
   own; 500 connections that send a bad TLS handshake record are refused
   and counted like junk, in a few log lines.

usage: test_peer_modes.py [path/to/cohort]
"""

import os
import selectors
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
from cluster import check, log  # noqa: E402


def works(c, mode):
    p, _ = c.wait_for_primary()
    check(c.command(p, "SET", "k-%s" % mode, "v") == "OK", "SET failed")
    c.wait_converged()
    for i in range(c.n):
        got = c.info(i, "stats").get("peer_auth")
        check(got == (mode or "none"), "replica %d: INFO peer_auth:%s, "
              "want %s" % (i, got, mode or "none"))
    return p


def wait_log(c, i, needle, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [ln for ln in c.log_text(i).splitlines() if needle in ln]
        if lines:
            return lines[0]
        time.sleep(0.05)
    raise cl.TestFailure("replica %d never logged %r:\n%s"
                         % (i, needle, c.log_tail(i)))


def impostor(c, p, args_fn, needle):
    """Restart a backup with the wrong credentials: the others refuse it
    (a log line with needle); then with the right ones: it rejoins."""
    b = c.backups(p)[0]
    c.kill(b)
    saved = c.auth_args
    c.auth_args = args_fn
    c.restart(b, wait=False)
    line = wait_log(c, p, needle, 10 * c.slow)
    log(line)
    c.kill(b)
    c.auth_args = saved
    c.restart(b)
    c.wait_converged()


def other_host_is_still_logged(c, i, refusals, prefix):
    """Right after the flood's first batch (its host's lines used up for
    this window), a junk connection from another host (127.0.0.7) is
    still logged: each source host has its own few lines per window, so
    a flood cannot hide a real member's refusal."""
    seen = len([ln for ln in refusals() if "127.0.0.7" in ln])
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    s.bind(("127.0.0.7", 0))
    s.connect((cl.HOST, c.peer_ports[i]))
    try:
        s.sendall(prefix + os.urandom(64))
    except OSError:
        pass
    cl.poll("replica %d logs the refusal of 127.0.0.7 during a flood" % i,
            5 * c.slow,
            lambda: len([ln for ln in refusals() if "127.0.0.7" in ln])
            > seen)
    s.close()


def flood(c, i, count=500, prefix=b""):
    """count junk connections to replica i's peer port (prefix, then 64
    random bytes each; opened 50 at a time and left for the server to
    close) are all refused and counted, but logged only a few lines per
    window (runtime/log_limit), so whoever can reach the port cannot fill
    the disk with the log; between batches replica i keeps answering
    clients (a write through it, and a read)."""
    def refusals():
        return [ln for ln in c.log_text(i).splitlines() if "refusing" in ln]
    before = len(refusals())
    counted = int(c.info(i, "stats").get("peer_connections_refused", "0"))
    t0 = time.monotonic()
    for batch in range(0, count, 50):
        socks = []
        for _ in range(min(50, count - batch)):
            s = socket.create_connection((cl.HOST, c.peer_ports[i]),
                                         timeout=5)
            try:
                s.sendall(prefix + os.urandom(64))
            except OSError:
                pass  # refused already
            socks.append(s)
        if batch == 0:
            other_host_is_still_logged(c, i, refusals, prefix)
        key = "flood-%d" % batch
        check(c.command(i, "SET", key, "v", timeout=10 * c.slow) == "OK" and
              c.command(i, "GET", key, timeout=10 * c.slow) == b"v",
              "replica %d stopped serving clients under a peer-port flood"
              % i)
        for s in socks:
            s.close()
    deadline = time.monotonic() + 10 * c.slow
    while time.monotonic() < deadline:
        now = int(c.info(i, "stats").get("peer_connections_refused", "0"))
        if now >= counted + count:
            break
        time.sleep(0.05)
    check(now >= counted + count, "replica %d counted %d of %d junk "
          "connections" % (i, now - counted, count))
    # At most 10 lines per 10 s window, for each window the flood touched.
    windows = int((time.monotonic() - t0) / 10) + 2
    added = len(refusals()) - before
    check(0 < added <= 10 * windows, "%d junk connections made %d refusal "
          "lines (want at most %d windows of 10)" % (count, added, windows))
    log("%d junk peer connections%s: all counted, %d log lines, clients "
        "served throughout" % (count, " (a bad TLS record)" if prefix else
                               "", added))


class Holder:
    """Keeps up to `count` connections open to each port, from 127.0.0.9,
    sending nothing; one that the server closes is opened again (at most
    `count` a port every 50 ms), until stop(). Bounded: 60 s at most."""

    def __init__(self, ports, count=100):
        self.ports, self.count = ports, count
        self.opened = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def connect(self, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.9", 0))
        s.settimeout(1)
        s.connect((cl.HOST, port))
        s.setblocking(False)
        self.opened += 1
        return s

    def run(self):
        sel = selectors.DefaultSelector()
        live = {port: 0 for port in self.ports}
        deadline = time.monotonic() + 60
        while not self.done.is_set() and time.monotonic() < deadline:
            for port in self.ports:
                while live[port] < self.count:
                    try:
                        sel.register(self.connect(port),
                                     selectors.EVENT_READ, port)
                    except OSError:
                        break
                    live[port] += 1
            end = time.monotonic() + 0.05
            while time.monotonic() < end:
                for key, _ in sel.select(timeout=0.01):
                    try:
                        data = key.fileobj.recv(4096)
                    except OSError:
                        data = b""
                    if not data:  # closed by the server
                        sel.unregister(key.fileobj)
                        key.fileobj.close()
                        live[key.data] -= 1
        for key in list(sel.get_map().values()):
            key.fileobj.close()

    def stop(self):
        self.done.set()
        self.thread.join(10)


def held_connections(c):
    """A backup restarted while idle connections are held open to the
    other members' peer ports rejoins: the oldest connection that has not
    finished its handshake makes way (8 per host, 64 in all). Before, the
    65th connection was refused, and the held ones locked it out."""
    p = c.find_primary()
    v = c.backups(p)[0]
    others = [i for i in range(c.n) if i != v]
    evicted = {i: int(c.info(i, "stats")["peer_connections_evicted"])
               for i in others}
    holder = Holder([c.peer_ports[i] for i in others])
    try:
        time.sleep(1.0)  # every slot a held connection could take
        c.kill(v)
        c.restart(v, wait=False)
        c.wait_converged(timeout=30 * c.slow)
        grew = {i: int(c.info(i, "stats")["peer_connections_evicted"])
                - evicted[i] for i in others}
    finally:
        holder.stop()
    check(all(g > 0 for g in grew.values()),
          "the members closed no held connection to make room: %s" % grew)
    log("r%d rejoined while %d connections were opened and held without a "
        "handshake; connections closed to make room: %s"
        % (v, holder.opened, grew))


def unauthenticated(binary):
    c = cl.Cluster(binary, n=3, name="peer-modes-none")
    c.start()
    works(c, None)
    line = wait_log(c, 0, "peers are not authenticated", 5 * c.slow)
    check("loopback" in line, "the start line does not say loopback: %s"
          % line)
    args = c.args(0)
    peers = args.index("--peers") + 1
    ports = [a.rsplit(":", 1)[1] for a in args[peers].split(",")]
    args[peers] = ",".join(["127.0.0.1:" + ports[0]]
                           + ["192.0.2.%d:%s" % (k + 1, ports[k])
                              for k in range(1, 3)])
    args[args.index("--data-dir") + 1] = os.path.join(c.dir, "public")
    r = subprocess.run(args, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30 * c.slow)
    out = r.stdout.decode("utf-8", "replace")
    check(r.returncode != 0, "a server with public peer addresses and no "
          "authentication started:\n%s" % out)
    check("--cluster-secret-file" in out and "192.0.2.2" in out,
          "the refusal does not name the address and the fix:\n%s" % out)
    log(out.strip().splitlines()[-1])
    c.finish()


def secret(binary):
    c = cl.Cluster(binary, n=3, name="peer-modes-secret", peer_auth="secret")
    c.start()
    p = works(c, "secret")
    flood(c, c.backups(p)[1])
    held_connections(c)
    wrong = os.path.join(c.dir, "wrong.secret")
    cl.write_secret(wrong)
    impostor(c, p, lambda i: ["--cluster-secret-file", wrong],
             "did not prove")
    c.finish()


def tls(binary):
    c = cl.Cluster(binary, n=3, name="peer-modes-tls", peer_auth="tls")
    c.start()
    p = works(c, "tls")
    # A TLS handshake record of garbage: a bad TLS handshake.
    flood(c, c.backups(p)[1], prefix=b"\x16\x03\x01\x00\x40")
    other = cl.make_certs(os.path.join(c.dir, "other"), c.cluster_id, c.n,
                          ca_name="otherca")
    impostor(c, p, lambda i: [
        "--peer-tls-cert-file", other["r%d.crt" % i],
        "--peer-tls-key-file", other["r%d.key" % i],
        "--peer-tls-ca-cert-file", other["ca.crt"]], "TLS handshake")
    c.finish()


def body(binary):
    unauthenticated(binary)
    secret(binary)
    if not cl.openssl_available():
        return "none and secret (no openssl command: TLS skipped)"
    tls(binary)
    return "none (loopback only), secret and TLS; impostors refused"


if __name__ == "__main__":
    cl.run_test("peer_modes", body, budget_s=150)
