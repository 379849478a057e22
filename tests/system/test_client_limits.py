#!/usr/bin/env python3
"""test_client_limits — idle and slow sockets cannot take the group down
(issue 11, item 5).

Cluster 0, every replica under an open files limit of 400: max-clients is
lowered to fit (log line, INFO maxclients), and 400 idle connections to
the primary leave it the descriptors a snapshot needs.
Cluster 1, every replica with --max-clients 50 (the issue's reproduction):
  - 60 idle TCP connections to the primary: 10 get "-ERR max number of
    clients reached"; then SET and GET through each backup work: the
    backups' forward links, opened only now, are not clients (they used to
    be refused: "-UNKNOWN ... refused the forward link", reads -TRYAGAIN);
  - a client cannot pass for a forward link: COHORT.NOFORWARD without
    arguments, with a made-up token, or with an all-zero token, sent over
    the limit, is refused with the same error; under the limits (on a
    backup), a made-up token or a replica that is not another member is
    an error naming it, and the connection still forwards;
  - INFO clients: connected_forward_links counts both backups' links,
    connected_clients stays within maxclients; the admitted idle
    connections were never sent anything.
Cluster 2, every replica with --max-clients-per-ip 20 and --timeout 2 (x
the sanitizer factor):
  - 20 connections from 127.0.0.3 are admitted, the 21st gets "-ERR max
    number of clients reached for this address (max-clients-per-ip)", and
    127.0.0.4 is served meanwhile;
  - 300 slowloris connections (a SET cut short, then one more byte every
    0.2 s; from 15 addresses) are all closed; so is a connection idle
    after one PING;
  - a client that PINGs every 0.2 s is not;
  - a forward link idle as long is not (the SET through a backup that
    opened it still works, and INFO still counts the link);
  - CONFIG GET timeout answers the setting; INFO stats counts
    timedout_connections.

usage: test_client_limits.py [path/to/cohort]
"""

import socket
import sys
import threading
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402

ERR_MAX = b"-ERR max number of clients reached\r\n"
ERR_PER_ADDR = (b"-ERR max number of clients reached for this address "
                b"(max-clients-per-ip)\r\n")


def idle_socket(port, source):
    s = socket.create_connection((cl.HOST, port), timeout=5,
                                 source_address=(source, 0))
    return s


def read_refusal(s, wait):
    """What the server sends before it closes s, within wait seconds (b""
    if it stays open and silent)."""
    s.settimeout(0.2)
    got = b""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        got += chunk
    return got


def expect_refused(socks, err, wait, what):
    for s in socks:
        got = read_refusal(s, wait)
        check(got == err, "%s: want %r, got %r" % (what, err, got))


def through_backups(c, p, tag):
    for b in c.backups(p):
        deadline = time.monotonic() + 10 * c.slow
        while True:
            try:
                with c.client(b, timeout=5 * c.slow) as x:
                    r = x.command("SET", "%s:%d" % (tag, b), "v%d" % b)
                    check(r == "OK", "SET through backup r%d: %r" % (b, r))
                    got = x.command("GET", "%s:%d" % (tag, b))
                    check(got == b"v%d" % b, "GET through backup r%d: %r"
                          % (b, got))
                    break
            except resp.RespError as e:
                # A write whose fate is unknown or a refused link is the
                # bug; a view change in progress is not.
                check(e.code == "TRYAGAIN" and "refused" not in e.message
                      and time.monotonic() < deadline,
                      "through backup r%d with the primary full: -%s"
                      % (b, e.message))
                time.sleep(0.05)


def links_counted(c, p, tag, idle_s=0.0):
    """Both backups' forward links are counted on primary p (after idling
    idle_s seconds). A view change in between closes links for a reason of
    its own (on a loaded machine, with the tests' 100 ms failure detector):
    then the check starts again on the new primary, a bounded number of
    times. Returns the INFO clients section."""
    for attempt in range(5):
        view = c.info(p)["view"]
        through_backups(c, p, "%s%d" % (tag, attempt))
        deadline = time.monotonic() + idle_s
        while time.monotonic() < deadline:
            time.sleep(0.1)
        inf = c.info(p, "clients")
        rep = c.info(p)
        if rep.get("view") == view and rep.get("role") == "primary":
            check(int(inf["connected_forward_links"]) == 2,
                  "connected_forward_links on r%d after %.1fs: %r"
                  % (p, idle_s, inf))
            return inf
        log("the view changed (%s -> %s); checking the links again"
            % (view, rep.get("view")))
        p, _ = c.wait_for_primary()
    raise cl.TestFailure("the view kept changing; the links were not "
                         "checked")


def spoofs(c, p):
    """Over the limit, a client claiming to be a forward link."""
    claims = [("COHORT.NOFORWARD",),
              ("COHORT.NOFORWARD", str(c.backups(p)[0]), "ab" * 16),
              ("COHORT.NOFORWARD", str(c.backups(p)[0]), "00" * 16)]
    for claim in claims:
        s = idle_socket(c.client_ports[p], "127.0.0.2")
        s.sendall(resp.encode_command(*claim))
        got = read_refusal(s, 5 * c.slow)
        s.close()
        log("over the limit, %s -> %r" % (" ".join(claim[:2]), got))
        check(got == ERR_MAX, "a client claiming %r over the limit: want "
              "%r, got %r" % (claim, ERR_MAX, got))


def forged_tokens(c, p):
    """Under the limits, on a backup b: COHORT.NOFORWARD <replica> <token>
    with a token that replica did not send (the primary's index, a made-up
    token), or naming no other replica, is an error that says so, and the
    connection stays an ordinary client: its SET is forwarded to the
    primary and answered +OK. (Before, the backup answered +OK and marked
    the connection a forward link: the SET got -TRYAGAIN NOTPRIMARY.)
    COHORT.NOFORWARD alone keeps its meaning: +OK, then -TRYAGAIN."""
    b = c.backups(p)[0]
    claims = [((str(p), "ab" * 16), "the peer token does not match what "
               "replica %d sent this replica" % p),
              ((str(p), "zz"), "the peer token does not match"),
              ((str(b), "ab" * 16), "another replica of this group"),
              (("9", "ab" * 16), "another replica of this group"),
              (("x", "ab" * 16), "another replica of this group")]
    for n, (args, want) in enumerate(claims):
        with c.client(b, timeout=5 * c.slow) as x:
            got = x.pipeline([("COHORT.NOFORWARD",) + args,
                              ("SET", "forged:%d" % n, "v")])
            log("on backup r%d, COHORT.NOFORWARD %s -> %r"
                % (b, " ".join(args), got))
            check(isinstance(got[0], resp.RespError)
                  and got[0].code == "ERR" and want in got[0].message,
                  "COHORT.NOFORWARD %s on r%d: want -ERR ...%s..., got %r"
                  % (" ".join(args), b, want, got[0]))
            check(got[1] == "OK", "SET after a refused COHORT.NOFORWARD "
                  "on r%d was not forwarded: %r" % (b, got[1]))
    with c.client(b, timeout=5 * c.slow) as x:
        got = x.pipeline([("COHORT.NOFORWARD",), ("SET", "forged:alone", "v")])
        check(got[0] == "OK" and isinstance(got[1], resp.RespError)
              and got[1].code == "TRYAGAIN",
              "COHORT.NOFORWARD alone, then SET, on r%d: %r" % (b, got))


def limits(binary):
    """The issue's reproduction, with --max-clients 50."""
    c = cl.Cluster(binary, n=3, name="limits",
                   extra_args=["--max-clients", "50"])
    c.start()
    p, _ = c.wait_for_primary()
    port = c.client_ports[p]
    time.sleep(0.1 * c.slow)  # the harness's own connections close
    admitted = [idle_socket(port, "127.0.0.1") for _ in range(50)]
    extra = [idle_socket(port, "127.0.0.1") for _ in range(10)]
    log("60 idle connections to the primary r%d" % p)
    expect_refused(extra, ERR_MAX, 10 * c.slow, "a 51st connection")
    through_backups(c, p, "full")
    log("SET/GET through both backups work with the primary full")
    spoofs(c, p)
    forged_tokens(c, p)
    for s in admitted[:10]:
        s.close()
    time.sleep(0.1 * c.slow)
    inf = links_counted(c, p, "counted")
    log("primary INFO clients: %s" % inf)
    check(int(inf["connected_clients"]) <= 50, "connected_clients: %r" % inf)
    # The admitted ones were never refused.
    for s in admitted[10:]:
        s.setblocking(False)
        try:
            data = s.recv(100)
            raise cl.TestFailure("an admitted idle connection got %r"
                                 % data)
        except BlockingIOError:
            pass
        s.close()


def per_address(c, p):
    """--max-clients-per-ip 20: the 21st from one address is refused, and
    another address is not affected."""
    port = c.client_ports[p]
    mine = [idle_socket(port, "127.0.0.3") for _ in range(20)]
    extra = [idle_socket(port, "127.0.0.3") for _ in range(2)]
    expect_refused(extra, ERR_PER_ADDR, 10 * c.slow,
                   "a 21st connection from 127.0.0.3")
    s = socket.create_connection((cl.HOST, port), timeout=5,
                                 source_address=("127.0.0.4", 0))
    s.sendall(resp.encode_command("PING"))
    s.settimeout(5 * c.slow)
    check(s.recv(100) == b"+PONG\r\n", "127.0.0.4 with 127.0.0.3 full")
    s.close()
    for s in mine:
        s.close()
    log("per address: 20 from 127.0.0.3 admitted, the 21st refused, "
        "127.0.0.4 served")


def slowloris(socks, stop):
    """One more byte of a command cut short, every 0.2 s, on each socket
    the server has not closed."""
    prefix = b"*3\r\n$3\r\nSET\r\n$4\r\nslow\r\n$1000\r\n"
    for s in socks:
        try:
            s.sendall(prefix)
        except OSError:
            pass
    while not stop.is_set():
        for s in socks:
            try:
                s.send(b"x")
            except OSError:
                pass
        time.sleep(0.2)


def all_closed(socks, deadline):
    open_ = list(socks)
    while open_ and time.monotonic() < deadline:
        still = []
        for s in open_:
            s.setblocking(False)
            try:
                data = s.recv(4096)
                if data:
                    still.append(s)  # should not happen; keep watching
            except BlockingIOError:
                still.append(s)
            except OSError:
                pass
        open_ = still
        time.sleep(0.1)
    return len(open_)


def timeouts(binary):
    c0 = cl.slowness(binary)
    timeout = max(2, int(2 * c0))
    c = cl.Cluster(binary, n=3, name="timeout",
                   extra_args=["--timeout", str(timeout),
                               "--max-clients-per-ip", "20"])
    c.start()
    p, _ = c.wait_for_primary()
    per_address(c, p)
    with c.client(p) as x:
        cfg = x.command("CONFIG", "GET", "timeout")
        check(cfg == [b"timeout", str(timeout).encode()],
              "CONFIG GET timeout: %r" % (cfg,))
    through_backups(c, p, "link")  # opens both forward links
    port = c.client_ports[p]
    # From 15 addresses, 20 each: within the per-address limit.
    loris = [idle_socket(port, "127.0.0.%d" % (10 + k // 20))
             for k in range(300)]
    idle = resp.connect(port, timeout=5)
    check(idle.command("PING") == "PONG", "PING")
    active = resp.connect(port, timeout=5)
    stop = threading.Event()
    pinged = [0]

    def pinger():
        while not stop.is_set():
            try:
                if active.command("PING") == "PONG":
                    pinged[0] += 1
            except OSError:
                return
            time.sleep(0.2)

    threads = [threading.Thread(target=slowloris, args=(loris, stop)),
               threading.Thread(target=pinger)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    try:
        left = all_closed(loris + [idle.sock],
                          t0 + 20 * timeout * c.slow)
        check(left == 0, "%d of 300 slowloris connections and one idle "
              "client still open long after --timeout %d" % (left, timeout))
        took = time.monotonic() - t0
        log("300 slowloris connections and an idle client closed within "
            "%.1fs (--timeout %d)" % (took, timeout))
        # The active client has outlived several timeouts.
        while time.monotonic() - t0 < 2.5 * timeout:
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join()
    check(active.command("PING") == "PONG", "the active client was closed "
          "(it PINGed %d times)" % pinged[0])
    active.close()
    st = c.info(p, "stats")
    check(int(st["timedout_connections"]) >= 301,
          "timedout_connections: %r" % st.get("timedout_connections"))
    # Links idle past the timeout stay.
    links_counted(c, p, "idle", idle_s=2.5 * timeout)
    for s in loris:
        s.close()
    return c


def big_pipeline(binary):
    """Pipelined replies past output-buffer-max (64 MiB) to a client that
    reads them: 100 GETs of 1 MiB values, through the primary and a
    backup, all answered in order on the same connection (the connection
    used to be closed without a word at 64). The replies are built a few
    MiB per loop turn (read_pace.c; building 63 MiB in one turn held the
    loop long enough for a view change): INFO counts the turns that ran
    out of room, and a SET pipelined between the GETs is seen by the GETs
    after it and by none before, however many turns they waited."""
    c = cl.Cluster(binary, n=3, name="bigpipe")
    c.start()
    p, _ = c.wait_for_primary()
    values = [bytes([0x61 + i]) * (1 << 20) for i in range(4)]
    for i, v in enumerate(values):
        # Retried through the current primary on TRYAGAIN/UNKNOWN (a view
        # change on a busy machine); the same value again is harmless.
        got = cl.retry(c, lambda: c.command(c.find_primary() or p, "SET",
                                            "big%d" % i, v, timeout=30),
                       "SET big%d" % i, 60 * c.slow)
        check(got == "OK", "SET big%d: %r" % (i, got))
    p = c.find_primary() or p
    b = next(i for i in range(c.n) if i != p)
    for round_, via in enumerate((p, b)):
        # A view change under load (the harness's 100 ms suspicion on a
        # busy machine) answers the SET, or a read, TRYAGAIN or UNKNOWN:
        # then what the GETs after it see is not determined, so the round
        # is run again with a new value (up to 3 times).
        for attempt in range(3):
            new = bytes([0x41 + 2 * round_ + attempt]) * (1 << 20)
            p = c.find_primary() or p
            primary_path = via == p
            old = cl.retry(c, lambda: c.command(p, "GET", "big0"), "GET",
                           20 * c.slow)
            cmds = [("GET", "big%d" % (i % 4)) for i in range(50)]
            cmds.append(("SET", "big0", new))
            cmds += [("GET", "big%d" % (i % 4)) for i in range(50)]
            want = [old if i % 4 == 0 else values[i % 4] for i in range(50)]
            want.append("OK")
            want += [new if i % 4 == 0 else values[i % 4]
                     for i in range(50)]
            before = c.info(via, "stats")
            with c.client(via, timeout=60.0 * c.slow) as cl_:
                replies = cl_.pipeline(cmds)
                check(cl_.command("PING") == "PONG", "the connection went on")
            disturbed = [r for r in replies if isinstance(r, resp.RespError)
                         and r.code in cl.RETRYABLE]
            if disturbed and attempt < 2:
                log("r%d: a view change during the pipeline (%s); again"
                    % (via, disturbed[0].message[:60]))
                continue
            bad = [i for i, r in enumerate(replies) if r != want[i]]
            check(not bad, "r%d: %d of 101 pipelined commands answered "
                  "wrong (first %d, %s: %r)"
                  % (via, len(bad), bad[0] if bad else -1,
                     cmds[bad[0]][:2] if bad else "",
                     str(replies[bad[0]])[:80] if bad else ""))
            break
        inf = c.info(via, "stats")
        check(inf.get("client_output_buffer_limit_disconnections") == "0",
              "r%d closed a client: %s" % (via, inf))
        turns = (int(inf["read_pace_turns"]) -
                 int(before["read_pace_turns"]))
        held = int(inf["reads_paced"]) - int(before["reads_paced"])
        check(turns > 0, "r%d built 100 MiB of replies without running out "
              "of a turn's room (read_pace_turns %d)" % (via, turns))
        if primary_path:
            check(held > 0, "r%d held no read for a later turn" % via)
        log("r%d: 100 pipelined GETs of 1 MiB and a SET answered in order; "
            "%d turns ran out of room, %d reads held" % (via, turns, held))
    # READONLY reads are served as they are parsed, with no confirmation
    # to hold back: 8 connections that each send 12 GETs of 1 MiB before
    # reading any reply used to have up to 96 MiB built in one turn. Now
    # a connection dispatches nothing more once the turn's budget is used
    # up (read_pace_admit()), and goes on in a later turn.
    before = c.info(b, "stats")
    conns = [c.client(b, timeout=60.0 * c.slow) for _ in range(8)]
    try:
        keys = ["big%d" % (i % 4) for i in range(12)]
        for x in conns:
            x.send_raw(resp.encode_command("READONLY") + b"".join(
                resp.encode_command("GET", k) for k in keys))
        wants = [c.command(p, "GET", k) for k in ("big0", "big1", "big2",
                                                  "big3")]
        for n, x in enumerate(conns):
            check(x.read_reply() == "OK", "READONLY on connection %d" % n)
            for i, k in enumerate(keys):
                got = x.read_reply()
                check(got == wants[i % 4], "connection %d, GET %s #%d: %r"
                      % (n, k, i, str(got)[:40]))
    finally:
        for x in conns:
            x.close()
    waits = c.stat_growth(b, before, "read_pace_conn_waits")
    check(waits > 0, "r%d served 96 MiB of READONLY reads on 8 connections "
          "without making one wait for a later turn" % b)
    log("r%d: 8 connections x 12 READONLY GETs of 1 MiB answered; %d "
        "times a connection waited for a later turn" % (b, waits))
    c.cleanup()


def parse_info(text):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return dict(line.split(":", 1) for line in text.splitlines()
                if ":" in line and not line.startswith("#"))


def fd_limit(binary):
    """An open files limit (400) below --max-clients (10000) plus what the
    replica needs for itself: max-clients is lowered to fit, with a log line
    naming the limit and the fix, and 400 idle clients then leave the
    replica the descriptors its snapshots need (they used to take them all:
    "snapshots are failing: ... pipe: Too many open files")."""
    c = cl.Cluster(binary, n=3, name="nofile", nofile=400,
                   extra_args=["--snapshot-interval-ops", "64"])
    c.start()
    p, _ = c.wait_for_primary()
    check("max-clients lowered from 10000 to" in c.log_text(p),
          "r%d did not say it lowered max-clients: %s" % (p, c.log_tail(p)))
    inf = c.info(p, "clients")
    check(0 < int(inf["maxclients"]) < 400, "maxclients: %r" % inf)
    with c.client(p, timeout=10.0 * c.slow) as w:
        idle = [idle_socket(c.client_ports[p], "127.0.0.1")
                for _ in range(400)]
        time.sleep(0.5 * c.slow)
        for i in range(200):
            check(w.command("SET", "fd%d" % i, "v" * 100) == "OK",
                  "SET fd%d" % i)

        def snapshot():
            inf = parse_info(w.command("INFO", "persistence"))
            check(inf["snapshot_failures"] == "0",
                  "r%d: snapshots failed with 400 clients open: %s"
                  % (p, inf["snapshot_last_error"]))
            return int(inf["last_snapshot_op"]) > 0
        cl.poll("a snapshot on r%d" % p, 20 * c.slow, snapshot, pause=0.2)
        for s in idle:
            s.close()
    log("r%d: max-clients fit to the open files limit; snapshots work "
        "with 400 clients open" % p)
    c.cleanup()


def main(binary):
    fd_limit(binary)
    limits(binary)
    timeouts(binary)
    big_pipeline(binary)
    return "max-clients fit to the open files limit, forward links pass a full primary, spoofs refused, " \
        "per-address limit, slowloris and idle clients timed out, 100 MiB " \
        "of pipelined replies to a reading client"


if __name__ == "__main__":
    cl.run_test("client_limits", main, budget_s=180)
