"""resp — a tiny RESP2 client for the system tests (Python 3 stdlib only).

Requests go out as arrays of bulk strings; replies are parsed into Python
values:

    +OK          -> str "OK"
    -ERR msg     -> RespError("ERR msg")   (raised by command(), returned
                                            inside pipeline() results)
    :42          -> int 42
    $3 abc       -> bytes b"abc";  $-1 -> None
    *2 ...       -> list;          *-1 -> None

A few RESP3 types are understood as well (_ null, # boolean, , double,
% map, ~ set, | attribute, > push, = verbatim, ( big number, ! blob error)
so a test that says HELLO 3 still reads replies, but the tests speak RESP2.

Run `python3 resp.py --selftest` to check the parser on literal bytes.
"""

import socket
import sys
import time


class RespError(Exception):
    """An error reply. message is the text without the leading '-';
    code is its first word (ERR, TRYAGAIN, UNKNOWN, ...)."""

    def __init__(self, message):
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        super().__init__(message)
        self.message = message
        self.code = message.split(" ", 1)[0] if message else ""

    def __repr__(self):
        return "RespError(%r)" % self.message


class ProtocolError(Exception):
    """The server sent bytes that are not RESP."""


class ConnectionClosed(ConnectionError):
    """The server closed the connection (EOF) before a reply was complete."""


def _to_bytes(arg):
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, bytearray):
        return bytes(arg)
    if isinstance(arg, str):
        return arg.encode("utf-8")
    if isinstance(arg, (int, float)):
        return str(arg).encode("ascii")
    raise TypeError("cannot send %r as a RESP argument" % (arg,))


def encode_command(*args):
    """One command as a RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        b = _to_bytes(a)
        parts.append(b"$%d\r\n" % len(b))
        parts.append(b)
        parts.append(b"\r\n")
    return b"".join(parts)


class _Incomplete(Exception):
    pass


# Nested aggregates deeper than this are refused (a bounded parser).
_MAX_DEPTH = 64


def parse_reply(buf, pos=0):
    """Parse one reply from buf[pos:]. Returns (value, new_pos), or None if
    the buffer does not yet hold a complete reply. Raises ProtocolError on
    bytes that are not RESP. Error replies are returned as RespError
    instances (not raised)."""
    try:
        return _parse(buf, pos, 0)
    except _Incomplete:
        return None


def _line(buf, pos):
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete()
    return bytes(buf[pos:end]), end + 2


def _int(text, what):
    try:
        if not text or text.strip() != text:
            raise ValueError()
        return int(text)
    except ValueError:
        raise ProtocolError("bad %s %r" % (what, text)) from None


def _parse(buf, pos, depth):
    if depth > _MAX_DEPTH:
        raise ProtocolError("reply nested deeper than %d" % _MAX_DEPTH)
    if pos >= len(buf):
        raise _Incomplete()
    t = buf[pos:pos + 1]
    line, pos = _line(buf, pos + 1)
    if t == b"+":
        return line.decode("utf-8", "replace"), pos
    if t == b"-":
        return RespError(line), pos
    if t == b":":
        return _int(line, "integer"), pos
    if t == b"(":
        return _int(line, "big number"), pos
    if t == b",":
        try:
            return float(line), pos
        except ValueError:
            raise ProtocolError("bad double %r" % line) from None
    if t == b"#":
        if line not in (b"t", b"f"):
            raise ProtocolError("bad boolean %r" % line)
        return line == b"t", pos
    if t == b"_":
        if line:
            raise ProtocolError("bad null %r" % line)
        return None, pos
    if t in (b"$", b"=", b"!"):
        n = _int(line, "bulk length")
        if n == -1 and t == b"$":
            return None, pos
        if n < 0:
            raise ProtocolError("bad bulk length %d" % n)
        if len(buf) < pos + n + 2:
            raise _Incomplete()
        data = bytes(buf[pos:pos + n])
        if buf[pos + n:pos + n + 2] != b"\r\n":
            raise ProtocolError("bulk string not followed by CRLF")
        pos += n + 2
        if t == b"=":
            data = data[4:]  # "txt:" / "mkd:"
        if t == b"!":
            return RespError(data), pos
        return data, pos
    if t in (b"*", b"~", b">", b"%", b"|"):
        n = _int(line, "aggregate length")
        if n == -1 and t == b"*":
            return None, pos
        if n < 0:
            raise ProtocolError("bad aggregate length %d" % n)
        count = n * 2 if t in (b"%", b"|") else n
        items = []
        for _ in range(count):
            v, pos = _parse(buf, pos, depth + 1)
            items.append(v)
        if t == b"%":
            return dict(zip(items[0::2], items[1::2])), pos
        if t == b"|":
            # An attribute precedes the real reply: skip it.
            return _parse(buf, pos, depth + 1)
        return items, pos
    raise ProtocolError("unknown reply type %r (line %r)" % (t, line[:60]))


class Client:
    """One connection. Every call is bounded by timeout (seconds); a timeout
    raises socket.timeout (an OSError), a closed connection raises
    ConnectionClosed, both subclasses of OSError/ConnectionError."""

    def __init__(self, host, port, timeout=5.0):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.buf = bytearray()
        self.pos = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def read_reply(self):
        """Read one reply (an error reply is returned as RespError)."""
        deadline = time.monotonic() + self.timeout
        while True:
            r = parse_reply(self.buf, self.pos)
            if r is not None:
                value, self.pos = r
                if self.pos > 65536 and self.pos * 2 > len(self.buf):
                    del self.buf[:self.pos]
                    self.pos = 0
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no complete reply from %s:%d in %.1fs"
                                     % (self.host, self.port, self.timeout))
            self.sock.settimeout(left)
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionClosed("%s:%d closed the connection"
                                       % (self.host, self.port))
            self.buf += chunk

    def command(self, *args):
        """Send one command and return its reply; an error reply raises
        RespError."""
        self.sock.sendall(encode_command(*args))
        reply = self.read_reply()
        if isinstance(reply, RespError):
            raise reply
        return reply

    def pipeline(self, commands):
        """Send every command (a list of argument tuples) in one write,
        then read as many replies. Errors are returned in place."""
        self.sock.sendall(b"".join(encode_command(*c) for c in commands))
        return [self.read_reply() for _ in commands]

    def closed_by_peer(self, wait=1.0):
        """True if the server closes the connection within wait seconds
        (reads and discards anything it sends first)."""
        deadline = time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 16)
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
            if not chunk:
                return True


def connect(port, host="127.0.0.1", timeout=5.0):
    return Client(host, port, timeout)


# ---- self test ------------------------------------------------------------

def _selftest():
    cases = [
        (b"+OK\r\n", "OK"),
        (b"+\r\n", ""),
        (b":0\r\n", 0),
        (b":-42\r\n", -42),
        (b"$3\r\nabc\r\n", b"abc"),
        (b"$0\r\n\r\n", b""),
        (b"$-1\r\n", None),
        (b"$4\r\na\r\nb\r\n", b"a\r\nb"),
        (b"*-1\r\n", None),
        (b"*0\r\n", []),
        (b"*3\r\n:1\r\n$1\r\nx\r\n$-1\r\n", [1, b"x", None]),
        (b"*2\r\n*1\r\n+a\r\n*0\r\n", [["a"], []]),
        (b"_\r\n", None),
        (b"#t\r\n", True),
        (b",1.5\r\n", 1.5),
        (b"%1\r\n+k\r\n:1\r\n", {"k": 1}),
        (b"=7\r\ntxt:abc\r\n", b"abc"),
    ]
    for data, want in cases:
        got, end = parse_reply(data)
        assert got == want, (data, got, want)
        assert end == len(data), (data, end)
        # Every strict prefix is incomplete, never an error or a value.
        for cut in range(len(data)):
            assert parse_reply(data[:cut]) is None, (data, cut)
    e, end = parse_reply(b"-ERR wrong number of arguments for 'get' command\r\n")
    assert isinstance(e, RespError) and e.code == "ERR", e
    assert e.message == "ERR wrong number of arguments for 'get' command"
    e, _ = parse_reply(b"-TRYAGAIN view change\r\n")
    assert e.code == "TRYAGAIN"
    # Two replies back to back.
    data = b"+OK\r\n:7\r\n"
    v, p = parse_reply(data)
    v2, p2 = parse_reply(data, p)
    assert (v, v2, p2) == ("OK", 7, len(data))
    for bad in (b"?x\r\n", b":abc\r\n", b"$-5\r\n", b"$1\r\nab\r\n",
                b"*-2\r\n", b": 1\r\n"):
        try:
            parse_reply(bad)
        except ProtocolError:
            continue
        raise AssertionError("accepted %r" % bad)
    deep = b"*1\r\n" * (_MAX_DEPTH + 2) + b":1\r\n"
    try:
        parse_reply(deep)
        raise AssertionError("accepted a reply nested too deep")
    except ProtocolError:
        pass
    assert encode_command("SET", b"k", 12) == \
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n"
    assert encode_command() == b"*0\r\n"
    print("resp selftest: %d reply cases passed" % (len(cases) + 5))


if __name__ == "__main__":
    if sys.argv[1:] == ["--selftest"]:
        _selftest()
    else:
        print("usage: python3 resp.py --selftest", file=sys.stderr)
        sys.exit(2)
