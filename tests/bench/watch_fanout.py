"""watch_fanout — event throughput with N watchers on one prefix (on one backup): a
writer pipelines M SETs under the prefix on the primary; measured: the
time from the first write until every watcher has received every event.
Indicative, not a test (never run by ctest).
usage: python3 tests/bench/watch_fanout.py build/cohort N M"""
import selectors, socket, sys, time, os
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "system"))
import cluster as cl, resp

binary, N, M = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = cl.Cluster(binary, n=3, name="wbench",
               extra_args=["--max-clients", "30000", "--max-clients-per-ip", "0"])
c.start()
try:
    p, _ = c.wait_for_primary()
    b = c.backups(p)[0]
    sel = selectors.DefaultSelector()
    socks = []
    cmd = resp.encode_command("COHORT.WATCH", "PREFIX", "b/")
    for i in range(N):
        s = socket.create_connection(("127.0.0.1", c.client_ports[b]))
        s.sendall(cmd)
        socks.append(s)
    # confirmations
    for s in socks:
        buf = b""
        while not buf.endswith(b":1\r\n"):
            buf += s.recv(4096)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, [0, b""])
    marker = b"$5\r\nwatch\r\n"
    value = "v" * 32
    w = c.client(p, timeout=60)
    t0 = time.monotonic()
    for j in range(0, M, 100):
        w.pipeline([("SET", "b/%d" % (x % 100), value) for x in range(j, min(M, j + 100))])
    t_written = time.monotonic() - t0
    done = 0
    while done < N:
        for key, _ in sel.select(timeout=60):
            st = key.data
            data = key.fileobj.recv(1 << 20)
            if not data:
                raise SystemExit("closed")
            chunk = st[1] + data
            st[0] += chunk.count(marker)
            st[1] = chunk[-(len(marker) - 1):]
            if st[0] >= M:
                sel.unregister(key.fileobj)
                done += 1
    t_all = time.monotonic() - t0
    print("watchers=%d events=%d writes_done=%.2fs all_delivered=%.2fs "
          "write_rate=%.0f/s deliveries=%.0f/s"
          % (N, M, t_written, t_all, M / t_written, N * M / t_all))
    for s in socks:
        s.close()
finally:
    c.finish()
