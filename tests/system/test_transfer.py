#!/usr/bin/env python3
"""test_transfer — leadership transfer under write load.

A 3-replica group under a bounded write load (four writer threads through
every replica, retrying -TRYAGAIN against the next replica, and one
COHORT.REQ incrementer) hands the primary role to each backup in turn with
COHORT.TRANSFER, and once more with `cohort transfer`. Pass: each target
becomes the primary of the view the command named; no request fails (no
-UNKNOWN, no error other than -TRYAGAIN, which a retrying client retries:
counted and printed); every acknowledged write reads back and the counter
is exact. Refusals: a bad id, an id that is not a member, the primary
itself, and a transfer sent to a backup each get a one-line error and
change nothing. Printed, never asserted: the time from the command to the
first write acknowledged by the new primary, and the longest gap without
an acknowledgement.

usage: test_transfer.py [path/to/cohort]
"""

import subprocess
import sys
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402
from workload import (Incrementer, Writers,  # noqa: E402
                      check_writes_and_counter, stop_and_check)

ROUNDS = 4  # raw COHORT.TRANSFER rounds: each backup in turn, twice


def refused(c, i, *args):
    try:
        r = c.command(i, *args)
    except resp.RespError as e:
        return e.message
    raise cl.TestFailure("%s on r%d was accepted (%r)" % (args, i, r))


def wait_primary_is(c, target, view, timeout):
    deadline = time.monotonic() + timeout
    inf = {}
    while time.monotonic() < deadline:
        try:
            inf = c.info(target)
        except (OSError, resp.RespError, resp.ProtocolError):
            inf = {}
        if inf.get("role") == "primary" and int(inf.get("view", 0)) >= view:
            return int(inf["view"])
        time.sleep(0.005)
    raise cl.TestFailure("r%d did not become primary of view %d within "
                         "%.0fs: %s" % (target, view, timeout, c.roles()))


def hand_over(c, p, target):
    """COHORT.TRANSFER on p until target leads: returns (its view, when the
    accepted command was answered). A refusal for lag or silence says "try
    again", and so does a drain the primary abandoned (the target did not
    catch up within a view-change timeout: a loaded machine); both are
    retried and counted, never a failure within the budget."""
    deadline = time.monotonic() + 20 * c.slow
    retries = 0
    while time.monotonic() < deadline:
        try:
            view = c.command(p, "COHORT.TRANSFER", str(target))
        except resp.RespError as e:
            check("not caught up" in e.message
                  or "not responding" in e.message
                  or "already under way" in e.message,
                  "transfer refused: %s" % e.message)
            retries += 1
            time.sleep(0.02)
            continue
        t_cmd = time.monotonic()
        try:
            wait_primary_is(c, target, view, 3 * c.slow)
        except cl.TestFailure as e:
            if c.find_primary() != p:
                raise
            log("retrying: %s" % e)
            retries += 1
            continue
        if retries:
            log("transfer to r%d took %d retries" % (target, retries))
        return view, t_cmd
    raise cl.TestFailure("no transfer to r%d within %.0fs: %s"
                         % (target, 20 * c.slow, c.roles()))


def check_refusals(c, p):
    n = c.n
    backup = (p + 1) % n
    msgs = {
        "bad id": refused(c, p, "COHORT.TRANSFER", "two"),
        "not a member": refused(c, p, "COHORT.TRANSFER", str(n + 2)),
        "self": refused(c, p, "COHORT.TRANSFER", str(p)),
        "sent to a backup": refused(c, backup, "COHORT.TRANSFER", str(p)),
    }
    for what, m in msgs.items():
        log("refusal (%s): -%s" % (what, m))
        check("\n" not in m, "multi-line error for %s" % what)
    check("0..2" in msgs["not a member"], msgs["not a member"])
    check("already the primary" in msgs["self"], msgs["self"])
    check("not the primary" in msgs["sent to a backup"],
          msgs["sent to a backup"])
    # The CLI says the same in one line and exits 1.
    cluster = "127.0.0.1:%d" % c.client_ports[backup]
    out = subprocess.run([c.binary, "transfer", "--cluster", cluster,
                          str(n + 2)], capture_output=True, text=True,
                         timeout=30 * c.slow)
    check(out.returncode == 1 and "no replica" in out.stderr
          and out.stderr.count("\n") == 1,
          "cohort transfer of a non-member: rc %d, %r"
          % (out.returncode, out.stderr))
    log("cli refusal: %s" % out.stderr.strip())
    check(c.find_primary() == p, "a refused transfer changed the primary")


def main(binary):
    c = cl.Cluster(binary, n=3, name="transfer")
    c.start()
    p, _ = c.wait_for_primary()
    c.wait_converged()
    check_refusals(c, p)
    writers = Writers(c, threads=4).start()
    inc = Incrementer(c).start()
    check(writers.wait_acks(100, 20 * c.slow),
          "fewer than 100 writes acknowledged: %s" % writers.summary())
    t_begin = time.monotonic()
    to_first_ack = []
    for k in range(ROUNDS):
        time.sleep(0.3)
        p, _ = c.wait_for_primary(probe=False)
        target = (p + 1) % c.n  # every replica leads in turn
        view, got = hand_over(c, p, target)
        t_cmd = got
        first = None
        deadline = time.monotonic() + 10 * c.slow
        while first is None and time.monotonic() < deadline:
            first = writers.first_ack_after(t_cmd)
            time.sleep(0.002)
        check(first is not None, "no write acknowledged after transfer %d"
              % k)
        to_first_ack.append(first - t_cmd)
        log("transfer %d: r%d -> r%d, view %d; first ack by the new "
            "primary %.1f ms after the command"
            % (k, p, target, view, 1000 * (first - t_cmd)))
    # Once through the CLI, from any member.
    time.sleep(0.3)
    p, _ = c.wait_for_primary(probe=False)
    target = (p + 2) % c.n
    cluster = "127.0.0.1:%d" % c.client_ports[(p + 1) % c.n]
    for attempt in range(3):
        out = subprocess.run([c.binary, "transfer", "--cluster", cluster,
                              "--timeout", str(int(3 * c.slow)),
                              str(target)], capture_output=True, text=True,
                             timeout=30 * c.slow)
        if out.returncode == 0 or "did not take over" not in out.stderr:
            break
        log("retrying the cli: %s" % out.stderr.strip())
    check(out.returncode == 0, "cohort transfer %d: rc %d, %s"
          % (target, out.returncode, out.stderr.strip()))
    log("cli: %s" % out.stdout.strip())
    check(c.find_primary() == target, "cohort transfer did not move the "
          "primary to r%d: %s" % (target, c.roles()))
    time.sleep(0.5)
    t_end = time.monotonic()
    retried, gap = stop_and_check(writers, inc, t_begin, t_end,
                                  ("TRYAGAIN",), "transfers")
    check_writes_and_counter(c, writers, inc, c.live())
    c.check_healthy()
    ms = sorted(1000 * x for x in to_first_ack)
    return ("%d transfers under load, %d writes acked, 0 failed (%d "
            "-TRYAGAIN retried); command -> first ack by the new primary "
            "%s ms; longest ack gap %.1f ms; %s"
            % (ROUNDS + 1, writers.ack_count(), retried,
               "/".join("%.1f" % x for x in ms), 1000 * gap,
               out.stdout.strip()))


if __name__ == "__main__":
    cl.run_test("transfer", main, budget_s=90)
