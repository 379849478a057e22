#!/usr/bin/env python3
"""test_peer_injection — a stranger cannot write through the peer port.

Issue 17's probe: with one sniffed COMMIT heartbeat (view, commit op and
the checksum of the entry there), a stranger sent a PREPARE of its own SET
and a COMMIT, posing as the primary, and its value became committed on a
backup. Here the stranger stops nothing it could not: one backup is down
and the stranger listens on its peer address, so the primary dials it and
sends it what a backup gets (before authenticated peers: the COMMIT
heartbeats, in clear). With what it sniffed (or, if the handshake gave it
nothing, what INFO tells anyone), it dials the other backup as the primary
and sends PREPARE + COMMIT of SET injected forged, with entry checksums
that are right (XXH3 from libxxhash, which the server links).

With a cluster secret the stranger's proofs are wrong: the primary never
sends it a frame, the backup refuses its connection (counted in INFO
peer_connections_refused) and the key never exists anywhere.
COHORT_TEST_NO_PEER_AUTH=1 runs the same attack on an unauthenticated
cluster: there (and on builds before peer protocol 3) it succeeds and the
test fails.

usage: test_peer_injection.py [path/to/cohort]
"""

import ctypes
import os
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import stranger as pw  # noqa: E402
from cluster import check, log  # noqa: E402


def xxh3():
    try:
        lib = ctypes.CDLL("libxxhash.so.0")
    except OSError:
        return None
    fn = lib.XXH3_64bits
    fn.restype = ctypes.c_uint64
    fn.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    return lambda data: fn(data, len(data))


def entry(hash_fn, parent, op, view, epoch, body):
    """An encoded log entry (src/common/entry.h), sealed."""
    client_id = int.from_bytes(os.urandom(8), "little") | 1
    rest = struct.pack("<QQQQQQIIHHI", parent, op, client_id, 1,
                       int(time.time() * 1000), view, len(body), epoch, 1, 0,
                       0)
    checksum = hash_fn(rest + body) if hash_fn else 0
    return struct.pack("<Q", checksum) + rest + body, checksum


def set_body(key, value):
    """kv_command_encode() of SET key value (src/kv/command.c)."""
    out = struct.pack("<BBHI", 1, 1, 0, 2)
    for a in (key, value):
        out += struct.pack("<I", len(a)) + a
    return out


def read_frames(sock, deadline, skip):
    """Frames (payloads) a dialer sends us until deadline or close."""
    buf = b""
    frames = []
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            got = sock.recv(65536)
        except socket.timeout:
            break
        except OSError:
            break
        if not got:
            break
        buf += got
        if skip:
            if len(buf) < skip:
                continue
            buf, skip = buf[skip:], 0
        while len(buf) >= 8:
            size = struct.unpack_from("<I", buf)[0]
            if len(buf) < 8 + size:
                break
            frames.append(buf[8:8 + size])
            buf = buf[8 + size:]
        if any(f[:2] == bytes([pw.FRAME_PROTOCOL, pw.MSG_COMMIT])
               for f in frames):
            break
    return frames


def sniff_commit(c, posed, primary):
    """Listen on replica `posed`'s peer address; answer the primary's dial
    as `posed` would, and return the first COMMIT it sends (view, epoch,
    commit, checksum), or None."""
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((cl.HOST, c.peer_ports[posed]))
    ls.listen(8)
    deadline = time.monotonic() + 5 * c.slow
    dials = 0
    try:
        # The primary redials after each refusal; three dials that gave
        # nothing are enough to know the handshake gives a stranger nothing.
        while time.monotonic() < deadline and dials < 3:
            ls.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                s, _ = ls.accept()
            except socket.timeout:
                break
            dials += 1
            with s:
                found = sniff_one(s, posed, deadline)
            if found:
                return found
    finally:
        ls.close()
    return None


def sniff_one(s, posed, deadline):
    s.settimeout(2 * 1.0)
    head = b""
    while len(head) < 8:
        got = s.recv(8 - len(head))
        if not got:
            return None
        head += got
    version = struct.unpack_from("<I", head, 4)[0]
    size = pw.HELLO_V2_SIZE if version == 2 else pw.HELLO_V3_SIZE
    rest = b""
    while len(rest) < size - 8:
        got = s.recv(size - 8 - len(rest))
        if not got:
            return None
        rest += got
    hello = head + rest
    cluster = struct.unpack_from("<Q", hello, 8)[0]
    if version == 2:
        s.sendall(pw.hello_v2(cluster, posed))
        skip = 0
    else:
        mode = struct.unpack_from("<I", hello, 24)[0]
        s.sendall(pw.hello_v3(cluster, posed, mode=mode) + b"\0" * 48)
        skip = pw.AUTH_SIZE
    log("sniffer: the primary dialed (protocol %d)" % version)
    for f in read_frames(s, deadline, skip):
        if f[:2] == bytes([pw.FRAME_PROTOCOL, pw.MSG_COMMIT]):
            epoch, view = struct.unpack_from("<IQ", f, 1 + 4)
            commit, = struct.unpack_from("<Q", f, 1 + 32)
            checksum, = struct.unpack_from("<Q", f, 1 + 48)
            return view, epoch, commit, checksum
    return None


def inject(c, victim, primary, sniffed):
    """Dial the victim as the primary; PREPARE + COMMIT of our SET.
    Returns whether the victim closed the connection."""
    if sniffed is None:
        inf = c.info(victim)
        sniffed = (int(inf["view"]), 0, int(inf["commit_op"]), 0)
        log("nothing sniffed; using INFO: view %d, commit %d"
            % (sniffed[0], sniffed[2]))
    else:
        log("sniffed COMMIT: view %d, commit %d, checksum %016x"
            % (sniffed[0], sniffed[2], sniffed[3]))
    view, epoch, commit, checksum = sniffed
    body = set_body(b"injected", b"forged")
    raw, sealed = entry(xxh3(), checksum, commit + 1, view, epoch, body)
    prepare = pw.message(pw.MSG_PREPARE, primary, view=view, op=commit + 1,
                         commit=commit, checksum=checksum, base_op=commit,
                         entries=raw, entry_count=1)
    commit_msg = pw.message(pw.MSG_COMMIT, primary, view=view,
                            op=commit + 1, commit=commit + 1,
                            checksum=sealed)
    with pw.Stranger(c.peer_ports[victim], primary) as s:
        s.connect()
        s.send(pw.protocol_frame(prepare) + pw.protocol_frame(commit_msg))
        return s.closed_by_peer(3 * c.slow)


def refused(c, i):
    return int(c.info(i, "stats").get("peer_connections_refused", "0"))


def body(binary):
    c = cl.Cluster(binary, n=3, name="peer-injection", peer_auth="secret")
    c.start()
    p, _ = c.wait_for_primary()
    check(c.command(p, "SET", "honest", "1") == "OK", "SET honest failed")
    c.wait_converged()
    victim, posed = c.backups(p)
    before = refused(c, victim)
    c.kill(posed)
    sniffed = sniff_commit(c, posed, p)
    closed = inject(c, victim, p, sniffed)
    got = cl.read_all(c, victim, ["injected"], readonly=True)["injected"]
    check(got is None,
          "the stranger's SET injected=%r reached replica %d's store "
          "(sniffed %r)" % (got, victim, sniffed))
    if c.peer_auth is not None:
        check(sniffed is None, "the primary sent frames to a stranger: %r"
              % (sniffed,))
        check(closed, "replica %d kept the stranger's connection open"
              % victim)
        deadline = time.monotonic() + 5 * c.slow
        while refused(c, victim) <= before and time.monotonic() < deadline:
            time.sleep(0.02)
        check(refused(c, victim) > before,
              "replica %d did not count the stranger's connection in "
              "peer_connections_refused" % victim)
    c.restart(posed)
    check(c.command(p, "SET", "after", "2") == "OK", "SET after failed")
    c.wait_converged()
    for i in range(c.n):
        vals = cl.read_all(c, i, ["injected", "honest", "after"],
                           readonly=True)
        check(vals == {"injected": None, "honest": b"1", "after": b"2"},
              "replica %d holds %r" % (i, vals))
    c.check_healthy()
    return "a stranger posing as the primary was refused at the link; " \
           "nothing injected (peers: %s)" % (c.peer_auth or "none")


if __name__ == "__main__":
    cl.run_test("peer_injection", body, budget_s=90)
