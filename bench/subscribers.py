#!/usr/bin/env python3
"""subscribers — N pub/sub subscribers for the publish fan-out case.

Opens N connections spread round-robin over the members, SUBSCRIBEs each
to one channel, then reads and counts messages until SIGTERM (or
--seconds), and prints one line:

    subscribers n=100 channel=k0 messages=123456 secs=12.3 per_s=10037.1
      min_per_sub=1234 max_per_sub=1235

messages counts every message every subscriber received; per_s divides by
the time from the first message to the last. Standard library only; one
thread polls every socket.

usage: subscribers.py --members H:P,H:P,... [--n 100] [--channel k0]
                      [--seconds S] [--ready-file PATH]
"""

import argparse
import selectors
import signal
import socket
import sys
import time


MARK = b"*3\r\n$7\r\nmessage\r\n"


def count_new(tail, chunk):
    """Messages whose start is in chunk: occurrences of their header in
    tail + chunk, tail being the previous data's last len(MARK) - 1 bytes
    (too short to hold a whole header, so none is counted twice). The
    bench's values are letters, so the header never occurs inside one."""
    data = tail + chunk
    return data.count(MARK), data[-(len(MARK) - 1):]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", required=True)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--channel", default="k0")
    ap.add_argument("--seconds", type=float, default=3600)
    ap.add_argument("--ready-file")
    a = ap.parse_args()
    members = [(h, int(p)) for h, p in
               (m.rsplit(":", 1) for m in a.members.split(","))]
    sel = selectors.DefaultSelector()
    socks = []
    confirm = b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (
        len(a.channel), a.channel.encode())
    for i in range(a.n):
        s = socket.create_connection(members[i % len(members)], timeout=10)
        ch = a.channel.encode()
        s.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n" % (len(ch), ch))
        got = b""
        while not got.startswith(confirm):
            chunk = s.recv(4096)
            if not chunk:
                sys.exit("subscriber %d: closed before confirming" % i)
            got += chunk
        s.setblocking(False)
        rest = got[len(confirm):]
        n, tail = count_new(b"", rest)
        sel.register(s, selectors.EVENT_READ, [tail, n])
        socks.append(s)
    if a.ready_file:
        with open(a.ready_file, "w") as f:
            f.write("ready\n")
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    first = last = None
    deadline = time.monotonic() + a.seconds
    # After SIGTERM, drain until the members have sent everything (a second
    # without a message).
    while time.monotonic() < deadline:
        if stop[0] and (last is None or time.monotonic() - last > 1.0):
            break
        for key, _ in sel.select(timeout=0.2):
            try:
                chunk = key.fileobj.recv(1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                sys.exit("a subscriber was closed by the server")
            st = key.data
            n, st[0] = count_new(st[0], chunk)
            if n:
                st[1] += n
                last = time.monotonic()
                first = first or last
    counts = [key.data[1] for key in sel.get_map().values()]
    total = sum(counts)
    secs = (last - first) if first and last and last > first else 0.0
    print("subscribers n=%d channel=%s messages=%d secs=%.2f per_s=%.1f "
          "min_per_sub=%d max_per_sub=%d"
          % (a.n, a.channel, total, secs, total / secs if secs else 0.0,
             min(counts), max(counts)), flush=True)


if __name__ == "__main__":
    main()
