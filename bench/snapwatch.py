#!/usr/bin/env python3
"""snapwatch.py — count the snapshots cohort members take during a run.

    snapwatch.py [--interval S] PORT...

Polls `INFO persistence` on each cohort member's client port (127.0.0.1)
every S seconds (default 0.1) until SIGTERM or SIGINT, then prints

    snapshots count=N ports=P,P,P

where N is the number of distinct `last_snapshot_op` values each member
moved through while watched, summed over the members (the value present at
the start does not count). Snapshots that start and finish between two polls
of one member are missed, so N is a lower bound at very high rates.
etcd and ZooKeeper snapshots are counted from their metrics and logs by
bench/run.sh. Python 3 standard library only.
"""
import argparse
import signal
import socket
import sys
import time


def last_snapshot_op(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            s.sendall(b"*2\r\n$4\r\nINFO\r\n$11\r\npersistence\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                head = data.find(b"\r\n")
                if data.startswith(b"$") and head > 0:
                    n = int(data[1:head])
                    if n < 0 or len(data) >= head + 2 + n + 2:
                        break
                elif data.startswith(b"-") and head > 0:
                    return None
        for line in data.decode("ascii", "replace").splitlines():
            if line.startswith("last_snapshot_op:"):
                return int(line.split(":", 1)[1])
    except (OSError, ValueError):
        pass
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("ports", nargs="+", type=int)
    a = ap.parse_args()
    stop = False

    def on_signal(signum, frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    seen = {p: set() for p in a.ports}
    while True:
        for p in a.ports:
            op = last_snapshot_op(p)
            if op is not None:
                seen[p].add(op)
        if stop:
            break
        end = time.monotonic() + a.interval
        while not stop and time.monotonic() < end:
            time.sleep(0.02)
    count = sum(max(0, len(s) - 1) for s in seen.values())
    print(f"snapshots count={count} ports={','.join(map(str, a.ports))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
