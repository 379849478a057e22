"""stranger — a stranger on the peer port, for the attack tests.

Speaks just enough of the replica-to-replica wire to pose as a replica:
the peer handshake of either protocol (version 2 before authenticated peers:
a 40-byte handshake then frames; version 3: HELLO, AUTH, frames, see
src/runtime/peer_link.h), frames with a CRC-32C, and core message headers
(src/core/message.h) and snapshot chunks (src/driver/transfer.c). It never
knows a cluster secret or holds a certificate: it is the attacker of issue
17, who can reach the peer port and read what replicas send there (the
cluster id is in the first bytes every replica sends).
"""

import os
import socket
import ssl
import struct
import time

MAGIC = 0x50484F43  # "COHP"
MESSAGE_MAGIC = 0x32434F43  # "COC2": 64-bit views
HELLO_V2_SIZE = 40
HELLO_V3_SIZE = 48
AUTH_SIZE = 48

AUTH_NONE, AUTH_SECRET, AUTH_TLS = 0, 1, 2

FRAME_PROTOCOL, FRAME_SNAPSHOT = 1, 2

MSG_PREPARE, MSG_COMMIT = 1, 3
MSG_START_VIEW_CHANGE, MSG_DO_VIEW_CHANGE = 4, 5


def _crc_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


def hello_v3(cluster, rid, count=3, mode=AUTH_NONE, version=3, magic=MAGIC,
             nonce=None):
    return (struct.pack("<IIQIIII", magic, version, cluster, rid, count,
                        mode, 0) + (nonce or os.urandom(16)))


def hello_v2(cluster, rid, count=3):
    return struct.pack("<IIQII", MAGIC, 2, cluster, rid, count) + b"\0" * 16


def frame(payload, crc=None):
    return struct.pack("<II", len(payload),
                       crc32c(payload) if crc is None else crc) + payload


def message(mtype, sender, view=0, op=0, commit=0, last_normal_view=0,
            checksum=0, base_op=0, entries=b"", entry_count=0, flags=0):
    """A core message header (80 bytes, src/core/message.h) and its
    encoded entries."""
    return (struct.pack("<BBBBIQQQQQQQQII", mtype, sender, 0, flags, 0, view,
                        last_normal_view, op, commit, 0, checksum, base_op,
                        0, entry_count, MESSAGE_MAGIC) + entries)


def protocol_frame(msg):
    return frame(bytes([FRAME_PROTOCOL]) + msg)


def snapshot_frame(op, offset, file_size, data):
    return frame(bytes([FRAME_SNAPSHOT])
                 + struct.pack("<QQQ", op, offset, file_size) + data)


class Stranger:
    """One connection to a replica's peer port, posing as replica `rid`.

    connect() reads the replica's own handshake first (its version, cluster
    id and auth mode), then answers in the same protocol as best a stranger
    can: in version 3, a HELLO in the replica's mode and an AUTH whose proof
    is zeros (right only when peers are not authenticated)."""

    def __init__(self, port, rid, count=3, host="127.0.0.1", timeout=5.0):
        self.port, self.rid, self.count = port, rid, count
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.version = self.cluster = self.mode = None
        self.refused = False  # the replica refused our TLS handshake

    def _read(self, n, timeout):
        self.sock.settimeout(timeout)
        data = b""
        while len(data) < n:
            got = self.sock.recv(n - len(data))
            if not got:
                break
            data += got
        return data

    def connect(self, timeout=5.0):
        head = self._read(8, timeout)
        if len(head) < 8:
            raise OSError("the replica sent no handshake")
        magic, self.version = struct.unpack("<II", head)
        rest = self._read((HELLO_V2_SIZE if self.version == 2
                           else HELLO_V3_SIZE) - 8, timeout)
        self.cluster = struct.unpack_from("<Q", rest, 0)[0]
        if self.version == 2:
            self.send(hello_v2(self.cluster, self.rid, self.count))
            return
        self.mode = struct.unpack_from("<I", rest, 16)[0]
        self.send(hello_v3(self.cluster, self.rid, self.count, self.mode))
        if self.mode == AUTH_TLS:
            self._tls(timeout)
        self.send(b"\0" * AUTH_SIZE)

    def _tls(self, timeout):
        """TLS as the dialer would start it, but without a certificate
        (the stranger has none the CA signed): the replica must refuse."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock.settimeout(timeout)
        try:
            self.sock = ctx.wrap_socket(self.sock)
        except (ssl.SSLError, OSError):
            self.refused = True

    def send(self, data):
        if self.refused:
            return False
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def closed_by_peer(self, timeout):
        """Whether the replica closes the connection within timeout (what
        it sends before is read and dropped)."""
        if self.refused:
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                if not self.sock.recv(65536):
                    return True
            except socket.timeout:
                return False
            except ssl.SSLError:
                return True
            except OSError:
                return True
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
