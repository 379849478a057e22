#!/usr/bin/env python3
"""test_forward_gate — a connection's later write waits behind an earlier one
still on the link to a deposed primary (forward.c's gate, issue 12).

Each backup's connection appends "1," to its key through the primary, which
is then frozen (SIGSTOP) before it answers. Once one backup knows the new
primary, the same connection appends "2,". The gate holds that second write
until the first is answered (-UNKNOWN when the link to the frozen primary
gives up, after a short grace), then sends it to the new primary. Pass: the
second write is acknowledged, the first gets an allowed answer (OK,
-UNKNOWN, -TRYAGAIN), and the key holds "0,2," or "0,1,2,", never "2,"
before "1,". INFO's forward_gated shows whether the second write was held
(printed, not asserted: it depends on sending it within the grace).

usage: test_forward_gate.py [path/to/cohort]
"""

import sys
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402


def main(binary):
    c = cl.Cluster(binary, n=3, name="forward_gate")
    c.start()
    p, _ = c.wait_for_primary()
    c.wait_converged()
    conns = {}
    for b in range(c.n):
        if b != p:
            conns[b] = c.client(b, timeout=30 * c.slow)
            check(conns[b].command("APPEND", "g%d" % b, "0,") == 2,
                  "APPEND through backup r%d" % b)
    c.pause(p)
    log("SIGSTOP primary r%d" % p)
    for b, conn in conns.items():
        conn.send_raw(resp.encode_command("APPEND", "g%d" % b, "1,"))
    deadline = time.monotonic() + 20 * c.slow
    b = None
    while b is None:
        check(time.monotonic() < deadline, "no backup learned a new primary: "
              "%s" % c.roles())
        for j in conns:
            try:
                inf = c.info(j)
            except (OSError, resp.RespError, resp.ProtocolError):
                continue
            if (inf.get("role") == "backup"
                    and inf.get("primary_index") not in (None, str(p))):
                b = j
                break
        time.sleep(0.002)
    log("backup r%d knows the new primary r%s" % (b, inf["primary_index"]))
    conn = conns[b]
    conn.send_raw(resp.encode_command("APPEND", "g%d" % b, "2,"))
    first = conn.read_reply()
    second = conn.read_reply()
    gated = c.info(b, "stats").get("forward_gated")
    log("first APPEND -> %r; second -> %r; forward_gated %s"
        % (first, second, gated))
    if isinstance(first, resp.RespError):
        check(first.code in ("UNKNOWN", "TRYAGAIN"), "first: %r" % first)
    else:
        check(first == 4, "first: %r" % (first,))
    check(second in (4, 6), "second: %r" % (second,))
    c.resume(p)
    np, _ = c.wait_for_primary(probe=False)
    value = cl.read_all(c, np, ["g%d" % b])["g%d" % b]
    check(value in (b"0,2,", b"0,1,2,"), "g%d holds %r: the writes of one "
          "connection applied out of order" % (b, value))
    check(second == len(value), "second APPEND answered %r, value %r"
          % (second, value))
    for conn in conns.values():
        conn.close()
    c.check_healthy()
    return ("first write %s, second held (forward_gated %s) and applied "
            "after it: %r" % (short(first), gated, value))


def short(r):
    return ("-" + r.code) if isinstance(r, resp.RespError) else repr(r)


if __name__ == "__main__":
    cl.run_test("forward_gate", main, budget_s=60)
