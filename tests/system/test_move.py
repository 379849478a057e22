#!/usr/bin/env python3
"""test_move — a member moves to a new machine (new peer and client
addresses, outside every replica's --peers) under load, with the CLI.

Three replicas; under a bounded write load, `cohort remove 2` takes replica
2 out, then `cohort add --peer NEW --client NEW` moves the id that is now
outside the membership (2) to the new addresses (COHORT.ADDRESS, a
committed write of the store's address table) and makes it a learner, then
a voter, once the replica the test starts there (id 2, an empty data
directory, the line the command printed) has caught up. The old replica 2
keeps running at the old addresses the whole time. Pass:

  - both commands exit 0; the add says which id moved, prints how to start
    the new replica, and ends with replica 2 a voter;
  - the primary's INFO shows replica 2 at the new addresses, and replicas
    0 and 1 recorded the move in <data-dir>/addresses;
  - the old process stays in an epoch the group left (or outside), its
    connections claiming to be replica 2 are refused (the members' own
    connections to replica 2 reach the new process), and it changes
    nothing;
  - replica 0, SIGKILLed and restarted with its ORIGINAL flags (which
    still name the old addresses), rejoins: with replica 1 then stopped,
    a write commits, so 0 and the moved 2 reach each other (0 read the
    new address from its file: the old process still listens at the old
    one);
  - no request fails except -TRYAGAIN and closed connections (retried),
    no -UNKNOWN; every acknowledged write reads back on the voters;
  - bad input changes nothing: COHORT.ADDRESS of a member, of an address
    another replica has, of a malformed address, of a peer address the
    transport would refuse (not loopback without authentication, port 0), with a stale EPOCH, on a
    backup; `cohort add --peer` alone at an unknown address.

usage: test_move.py [path/to/cohort]
"""

import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402
from workload import (Incrementer, Writers,  # noqa: E402
                      check_writes_and_counter, stop_and_check)


class MovingCluster(cl.Cluster):
    """A cluster whose replica i can be given fixed arguments and its own
    data directory (the moved replica's new machine)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.fixed_args = {}
        self.dirs = {}
        self.logs = {}

    def data_dir(self, i):
        return self.dirs.get(i) or super().data_dir(i)

    def log_path(self, i):
        return self.logs.get(i) or super().log_path(i)

    def args(self, i):
        return self.fixed_args.get(i) or super().args(i)


def cli(c, *args, expect=0):
    out = subprocess.run([c.binary] + list(args), capture_output=True,
                         text=True, timeout=150 * c.slow)
    check(out.returncode == expect,
          "cohort %s: rc %d (want %d)\nstdout: %s\nstderr: %s"
          % (" ".join(args), out.returncode, expect, out.stdout, out.stderr))
    if expect != 0:
        check(out.stderr.count("\n") == 1 and out.stdout == "",
              "cohort %s: not one line: %r %r"
              % (" ".join(args), out.stdout, out.stderr))
        log("refused (%s): %s" % (" ".join(args), out.stderr.strip()))
    return out


def refused(c, i, *args):
    try:
        r = c.command(i, *args)
    except resp.RespError as e:
        check("\n" not in e.message, "multi-line error: %r" % e.message)
        log("refused %s: -%s" % (" ".join(args), e.message))
        return e.message
    raise cl.TestFailure("%s on r%d was accepted (%r)" % (args, i, r))


def primary_info(c):
    p, _ = c.wait_for_primary(probe=False)
    return p, c.info(p)


def main(binary):
    c = MovingCluster(binary, n=3, name="move",
                      extra_args=["--snapshot-interval-ops", "300"])
    c.start()
    p, inf = primary_info(c)
    at = "127.0.0.1:%d" % c.client_ports[p]
    orig_args = {i: c.args(i) for i in range(3)}
    old_client = c.client_ports[2]
    new_peer, new_client = cl.pick_ports(2)

    writers = Writers(c, threads=3).start()
    inc = Incrementer(c).start()
    check(writers.wait_acks(800, 60 * c.slow),
          "fewer than 800 writes acknowledged: %s" % writers.summary())
    t_begin = time.monotonic()

    if p == 2:
        # Keep the test's roles fixed: 2 is the one that moves.
        cli(c, "transfer", "--cluster", at, "0")
        p, inf = primary_info(c)
        at = "127.0.0.1:%d" % c.client_ports[p]
    out = cli(c, "remove", "--cluster", at, "2")
    log("remove: %s" % out.stdout.strip())
    p, inf = primary_info(c)
    epoch = cl.membership_of(inf)[0]
    backup = [i for i in (0, 1) if i != p][0]

    # Bad input changes nothing.
    peer_arg = "127.0.0.1:%d" % new_peer
    client_arg = "127.0.0.1:%d" % new_client
    m = refused(c, p, "COHORT.ADDRESS", str(backup), peer_arg, client_arg)
    check("is a member" in m, m)
    m = refused(c, p, "COHORT.ADDRESS", "2",
                "127.0.0.1:%d" % c.peer_ports[backup], client_arg)
    check("already has that address" in m, m)
    m = refused(c, p, "COHORT.ADDRESS", "2", "no port here", client_arg)
    check("host:port" in m, m)
    m = refused(c, p, "COHORT.ADDRESS", "2", "10.1.2.3:7101", client_arg)
    check("not a loopback address" in m, m)
    m = refused(c, p, "COHORT.ADDRESS", "2", "127.0.0.1:0", client_arg)
    check("port 0" in m, m)
    m = refused(c, p, "COHORT.ADDRESS", "2", peer_arg, client_arg,
                "EPOCH", str(epoch + 3))
    check("epoch %d" % epoch in m, m)
    m = refused(c, backup, "COHORT.ADDRESS", "2", peer_arg, client_arg)
    check("not the primary" in m, m)
    m = refused(c, p, "COHORT.ADDRESS", "9", peer_arg, client_arg)
    check("0..2" in m, m)
    cli(c, "add", "--cluster", at, "--peer", peer_arg, expect=2)
    _, inf = primary_info(c)
    check(cl.membership_of(inf)[0] == epoch, "a refusal changed the epoch")
    check(inf.get("member2", "").find("addr=127.0.0.1:%d" % old_client) >= 0,
          "a refusal moved replica 2: %s" % inf.get("member2"))

    # The move: the old replica 2 keeps running at the old addresses.
    old_proc, old_pid = c.procs[2], c.pids[2]
    add = subprocess.Popen([c.binary, "add", "--cluster", at, "--peer",
                            peer_arg, "--client", client_arg],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        c.procs[2] = None
        c.dirs[2] = os.path.join(c.dir, "r2-new")
        c.logs[2] = os.path.join(c.dir, "r2-new.log")
        c.peer_ports[2], c.client_ports[2] = new_peer, new_client
        c.start_replica(2)
        c.wait_ready(2, 15 * c.slow)
        stdout, stderr = add.communicate(timeout=150 * c.slow)
    finally:
        if add.poll() is None:
            add.kill()
            add.wait()
    log("add: %s" % stdout.strip().replace("\n", " | "))
    check(add.returncode == 0, "cohort add rc %d: %s %s"
          % (add.returncode, stdout, stderr))
    check("replica 2 moved to peer %s, client %s" % (peer_arg, client_arg)
          in stdout, "add did not say 2 moved: %s" % stdout)
    check("cohort server --id 2 " in stdout and peer_arg in stdout,
          "add did not print how to start it: %s" % stdout)
    check("is a voter" in stdout, "add did not end with a voter: %s" % stdout)
    p, inf = primary_info(c)
    check(sorted(cl.membership_of(inf)[1]) == [0, 1, 2],
          "voters after the move: %s" % (cl.membership_of(inf),))
    check("addr=%s" % client_arg in inf.get("member2", ""),
          "INFO does not show 2 at its new address: %s" % inf.get("member2"))
    for i in (0, 1):
        path = os.path.join(c.data_dir(i), "addresses")
        check(os.path.exists(path), "r%d has no %s" % (i, path))
        with open(path) as f:
            text = f.read()
        check("2 %s %s\n" % (peer_arg, client_arg) in text,
              "r%d's address file: %r" % (i, text))
    check(old_proc.poll() is None, "the old replica 2 exited")
    # The old process is fenced: nobody sends to its address any more, so
    # it stays in an epoch the group left (or learnt it was removed), and
    # its claims to be replica 2 are refused (the group's connections to
    # replica 2 reach the new process).
    p, inf = primary_info(c)
    group = (cl.membership_of(inf), p, int(inf["view"]))
    time.sleep(1.0)
    with resp.connect(old_client, timeout=2.0) as k:
        k.send_raw(resp.encode_command("INFO", "replication"))
        text = k.read_reply().decode()
    old = dict(ln.split(":", 1) for ln in text.splitlines() if ":" in ln)
    old_epoch = int(old.get("epoch", "0").split(",")[0])
    check(old.get("self_member") == "outside" or old_epoch < group[0][0],
          "the old replica 2 is in the group's epoch %d: %s"
          % (group[0][0], {k: old.get(k) for k in
                           ("role", "epoch", "self_member")}))
    p, inf = primary_info(c)
    check((cl.membership_of(inf), p, int(inf["view"])) == group,
          "the group changed while the old process ran: %s -> %s"
          % (group, (cl.membership_of(inf), p, inf.get("view"))))
    refusals = sum(int(c.info(i, "stats").get("peer_connections_refused",
                                               "0"))
                   for i in (0, 1))
    log("old replica 2: epoch %d, %s; its connections refused %d times"
        % (old_epoch, old.get("self_member"), refusals))
    check(refusals > 0, "no member refused the old process's connections "
          "claiming to be replica 2")
    time.sleep(0.3)
    t_end = time.monotonic()
    retried, gap = stop_and_check(
        writers, inc, t_begin, t_end,
        ("TRYAGAIN", "REMOVED", "ConnectionRefusedError",
         "ConnectionResetError", "ConnectionClosed"), "the move")
    log("retried %d, longest ack gap %.0f ms" % (retried, gap * 1000))
    check_writes_and_counter(c, writers, inc, [0, 1, 2])

    # Replica 0 restarts with its original flags (the old addresses): its
    # address file must send it to the new 2, since the old process still
    # answers at the old one. With 1 stopped, a write needs 0 and 2.
    c.fixed_args[0] = orig_args[0]
    c.kill(0)
    c.restart(0)
    # Before it has heard from anyone it already knows where 2 is (its
    # address file, or the snapshot it restored).
    inf0 = c.info(0)
    check("addr=%s" % client_arg in inf0.get("member2", ""),
          "r0 restarted with the old flags does not know 2's new address: %s"
          % inf0.get("member2"))
    c.wait_converged([0, 1, 2], timeout=30 * c.slow)
    c.kill(1)
    deadline = time.monotonic() + 30 * c.slow
    done = False
    while not done and time.monotonic() < deadline:
        for i in (0, 2):
            try:
                if c.command(i, "SET", "after-move", "yes") == "OK":
                    done = True
                    break
            except (OSError, resp.RespError, resp.ProtocolError):
                pass
        time.sleep(0.1)
    check(done, "no write committed with r1 down: r0 and the moved r2 do "
          "not reach each other:\n%s" % c.log_tail(0))
    os.kill(old_pid, 9)
    old_proc.wait(timeout=10)
    return ("replica 2 moved to %s/%s under load: %d writes acked, 0 failed "
            "(%d retried), longest ack gap %.0f ms; the old process stayed "
            "outside; a restart with the old flags found the new address"
            % (peer_arg, client_arg, writers.ack_count(), retried,
               1000 * gap))


if __name__ == "__main__":
    cl.run_test("move", main, budget_s=150)
