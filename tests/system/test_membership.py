#!/usr/bin/env python3
"""test_membership — grow 3 -> 5 and shrink 5 -> 3 under load, with the CLI.

Five replicas share one --peers list; `--voters 3` makes replicas 0..2 the
group and leaves 3 and 4 outside. Under a bounded write load (writers
through every replica, retrying -TRYAGAIN elsewhere, and one COHORT.REQ
incrementer), `cohort add` brings 3 and 4 in (each as a learner brought up
to date by state transfer, a snapshot then the log; then, once caught up,
as a voter), and `cohort remove` takes out the primary and then
one more original voter. Pass:

  - every command exits 0 and the epoch's voters are what it said;
  - the removed replicas say they are outside (INFO, their log), and one
    of them, SIGKILLed and restarted on its data, changes nothing: same
    epoch, same primary, same view, still outside;
  - no request fails except -TRYAGAIN and closed connections (retried,
    counted, printed; the incrementer retries the same COHORT.REQ, so
    exactly once is checked); no -UNKNOWN;
  - every acknowledged write reads back on each voter and the counter is
    exact;
  - the view upcall (cohort:views FROM 0) rises in (epoch, view) and ends
    with the final epoch, its primary and voters;
  - `cohort rejuvenate` restarts the 3 voters and leaves the outsiders be;
  - bad input gets a one-line error and changes nothing: an id outside
    --peers, adding a voter, removing a non-member, an empty voter list, a
    stale EPOCH, a change sent to a backup, an address not in --peers.

Printed, never asserted: each command's time and the longest ack gap.

usage: test_membership.py [path/to/cohort]
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


def cli(c, *args, expect=0):
    t0 = time.monotonic()
    out = subprocess.run([c.binary] + list(args), capture_output=True,
                         text=True, timeout=120 * c.slow)
    ms = 1000 * (time.monotonic() - t0)
    check(out.returncode == expect,
          "cohort %s: rc %d (want %d)\nstdout: %s\nstderr: %s"
          % (" ".join(args), out.returncode, expect, out.stdout, out.stderr))
    if expect != 0:
        check(out.stderr.count("\n") == 1 and out.stdout == "",
              "cohort %s: not one line: %r %r"
              % (" ".join(args), out.stdout, out.stderr))
        log("refused (%s): %s" % (" ".join(args[:1] + args[3:]),
                                  out.stderr.strip()))
    else:
        log("cohort %s (%.0f ms): %s" % (" ".join(args[:1] + args[3:]), ms,
                                         out.stdout.strip().replace(
                                             "\n", " | ")))
    return out


def primary_info(c):
    p, _ = c.wait_for_primary(probe=False)
    return p, c.info(p)


def refused(c, i, *args):
    try:
        r = c.command(i, *args)
    except resp.RespError as e:
        check("\n" not in e.message, "multi-line error: %r" % e.message)
        log("refused %s: -%s" % (" ".join(args), e.message))
        return e.message
    raise cl.TestFailure("%s on r%d was accepted (%r)" % (args, i, r))


def check_refusals(c, at):
    p, inf = primary_info(c)
    before = cl.membership_of(inf)
    backup = [i for i in before[1] if i != p][0]
    m = refused(c, p, "COHORT.RECONFIG", "VOTERS")
    check("at least one voter" in m, m)
    m = refused(c, p, "COHORT.RECONFIG", "VOTERS", "0", "9")
    check("0..4" in m, m)
    m = refused(c, p, "COHORT.RECONFIG", "VOTERS", "0", "1", "0")
    check("twice" in m, m)
    m = refused(c, p, "COHORT.RECONFIG", "EPOCH", str(before[0] + 7),
                "VOTERS", "0", "1", "2")
    check("epoch %d" % before[0] in m, m)
    m = refused(c, backup, "COHORT.RECONFIG", "VOTERS", "0", "1", "2")
    check("not the primary" in m, m)
    cli(c, "add", "--cluster", at, "9", expect=2)
    cli(c, "add", "--cluster", at, str(before[1][0]), expect=1)
    cli(c, "remove", "--cluster", at, "4", expect=1)
    cli(c, "add", "--cluster", at, "--client", "127.0.0.1:1", expect=2)
    cli(c, "remove", "--cluster", at, expect=2)
    _, inf = primary_info(c)
    check(cl.membership_of(inf) == before, "a refused change changed the epoch: "
          "%s -> %s" % (before, cl.membership_of(inf)))


def wait_outside(c, i, timeout):
    """Replica i says it is outside the membership."""
    deadline = time.monotonic() + timeout
    inf = {}
    while time.monotonic() < deadline:
        try:
            inf = c.info(i)
        except (OSError, resp.RespError, resp.ProtocolError):
            inf = {}
        if inf.get("self_member") == "outside":
            return inf
        time.sleep(0.02)
    raise cl.TestFailure("r%d does not say it is outside: %s"
                         % (i, {k: inf.get(k) for k in
                                ("role", "epoch", "self_member")}))


def view_stream(c, at_replica, want):
    """The application's view upcall: cohort:views FROM 0 on a member must
    rise in (epoch, view) and end at `want` = (epoch, view, primary, voters
    text). Returns the announcements."""
    seen = []
    with c.client(at_replica, timeout=10 * c.slow) as k:
        k.send_raw(resp.encode_command("COHORT.SUBSCRIBE", "cohort:views",
                                       "FROM", "0"))
        r = k.read_reply()
        check(r == [b"subscribe", b"cohort:views", 1],
              "subscribe cohort:views on r%d: %r" % (at_replica, r))
        deadline = time.monotonic() + 20 * c.slow
        while not seen or seen[-1][:2] < want[:2]:
            k.timeout = max(0.1, deadline - time.monotonic())
            check(time.monotonic() < deadline, "cohort:views stopped at %s, "
                  "want %s" % (seen[-1:], want))
            r = k.read_reply()
            check(isinstance(r, list) and r[0] == b"message",
                  "not a message: %r" % (r,))
            w = r[2].decode().split()
            check(len(w) == 12 and w[0] == "view" and w[6] == "epoch",
                  "announcement %r" % r[2])
            one = (int(w[7]), int(w[1]), int(w[3]), w[9])
            check(not seen or one[:2] > seen[-1][:2],
                  "views not rising: %s then %s" % (seen[-1:], one))
            seen.append(one)
    check(seen[-1] == want, "last announcement %s, want %s"
          % (seen[-1], want))
    return seen


def main(binary):
    c = cl.Cluster(binary, n=5, name="membership",
                   extra_args=["--voters", "3",
                               "--snapshot-interval-ops", "300"])
    c.start()
    p, _ = c.wait_for_primary()
    check(p in (0, 1, 2), "replica %d leads, outside the voters" % p)
    for i in (3, 4):
        wait_outside(c, i, 10 * c.slow)
    at = "127.0.0.1:%d" % c.client_ports[(p + 1) % 3]
    check_refusals(c, at)
    out = cli(c, "members", "--cluster", at)
    check("epoch 0," in out.stdout and out.stdout.count(" outside ") == 2,
          "cohort members: %s" % out.stdout)

    writers = Writers(c, threads=3).start()
    inc = Incrementer(c).start()
    # Enough ops that the log no longer starts at op 1: the new members
    # catch up by state transfer (a snapshot, then the log).
    check(writers.wait_acks(1500, 60 * c.slow),
          "fewer than 1500 writes acknowledged: %s" % writers.summary())
    t_begin = time.monotonic()

    # Grow: 3 -> 4 -> 5, each new one a learner first.
    out = cli(c, "add", "--cluster", at, "3")
    check("is a learner" in out.stdout and "is a voter" in out.stdout,
          out.stdout)
    out = cli(c, "add", "--cluster", at, "--client",
              "127.0.0.1:%d" % c.client_ports[4])
    _, inf = primary_info(c)
    epoch, voters, learners = cl.membership_of(inf)
    check(sorted(voters) == [0, 1, 2, 3, 4] and not learners,
          "after two adds: epoch %d voters %s learners %s"
          % (epoch, voters, learners))
    check(epoch == 4, "two adds took epochs 1..4, now %d" % epoch)
    for i in (3, 4):
        check("installed a snapshot" in c.log_text(i),
              "r%d caught up without a snapshot" % i)
    time.sleep(0.3)

    # Shrink: the primary leaves first, then one more original voter.
    p, _ = primary_info(c)
    out = cli(c, "remove", "--cluster", at, str(p))
    gone = [p]
    p2, inf = primary_info(c)
    check(p2 != p, "removed primary r%d still leads" % p)
    other = [i for i in (0, 1, 2) if i not in gone and i != p2][0]
    at = "127.0.0.1:%d" % c.client_ports[3]
    out = cli(c, "remove", "--cluster", at, str(other))
    gone.append(other)
    _, inf = primary_info(c)
    epoch, voters, learners = cl.membership_of(inf)
    check(len(voters) == 3 and not set(voters) & set(gone) and not learners,
          "after two removes: voters %s learners %s" % (voters, learners))
    for g in gone:
        wait_outside(c, g, 10 * c.slow)
        check("outside the membership" in c.log_text(g),
              "r%d's log does not say it left the membership" % g)
    time.sleep(0.3)

    # Every member's view upcall saw the epochs in order.
    p, inf = primary_info(c)
    # (on an original member: one that joined by snapshot holds the
    # channel's history only from its snapshot on)
    orig = [v for v in voters if v in (0, 1, 2)][0]
    seen = view_stream(c, orig, (epoch, int(inf["view"]), p,
                                       "+".join(map(str, voters))))
    epochs = sorted(set(e for e, _, _, _ in seen))
    log("cohort:views: %d announcements, epochs %s" % (len(seen), epochs))
    check(epochs[0] == 0 and epochs[-1] == epoch, "epochs seen: %s" % epochs)

    # A removed member that comes back changes nothing.
    p, inf = primary_info(c)
    before = (cl.membership_of(inf), p, int(inf["view"]))
    c.kill(gone[0])
    c.restart(gone[0])
    wait_outside(c, gone[0], 10 * c.slow)
    time.sleep(1.0)
    p, inf = primary_info(c)
    after = (cl.membership_of(inf), p, int(inf["view"]))
    check(after == before, "the returning removed r%d changed the group: "
          "%s -> %s" % (gone[0], before, after))
    check(c.info(gone[0]).get("self_member") == "outside",
          "r%d rejoined by itself" % gone[0])

    time.sleep(0.3)
    t_end = time.monotonic()
    # The removed replica, restarted, closes its connections: a raw client
    # reconnects and retries; -TRYAGAIN (certainly not applied) is retried,
    # and so is -REMOVED (a removed member's answer: use another).
    # No -UNKNOWN: a change wedges the log, so every write proposed before
    # it is answered, and the ones that arrive during it were never
    # proposed (the driver holds them for the next epoch's primary). Before
    # that fix about one run in ten saw -UNKNOWN when the primary removed
    # itself: the turn's batch, not yet proposed, was failed with the rest.
    retried, gap = stop_and_check(
        writers, inc, t_begin, t_end,
        ("TRYAGAIN", "REMOVED", "ConnectionRefusedError",
         "ConnectionResetError", "ConnectionClosed"), "membership changes")
    check_writes_and_counter(c, writers, inc, voters)

    # A rolling restart of the reconfigured group leaves the outsiders be
    # (under load in test_rejuvenate; a raw client may see -UNKNOWN there
    # when a restart cuts a forwarded write).
    out = cli(c, "rejuvenate", "--cluster", at)
    check("rejuvenated 3 replicas" in out.stdout, out.stdout)
    for g in gone:
        check(c.info(g).get("self_member") == "outside",
              "r%d rejoined in the rolling restart" % g)
    c.check_healthy()

    # Right after an epoch change (a learner added), a voter that died is
    # not yet suspected; removing another voter would leave voters of
    # which only one answers, and the group could commit nothing. The
    # check must count the dead one as down (its link, no ack in the new
    # view), not as healthy.
    cli(c, "add", "--cluster", at, "--learner", str(gone[0]))
    p, inf = primary_info(c)
    _, voters, _ = cl.membership_of(inf)
    others = [v for v in voters if v != p]
    c.kill(others[0])
    out = cli(c, "remove", "--cluster", at, str(others[1]), expect=1)
    check("of which only 1 answer" in out.stderr, out.stderr)
    c.restart(others[0])
    c.wait_converged(sorted(voters + [gone[0]]))
    return ("3 -> 5 -> 3 voters under load (epoch %d), %d writes acked, 0 "
            "failed (%d retried); a returning removed member changed "
            "nothing; a remove right after an epoch change counted a dead "
            "voter as down; longest ack gap %.1f ms"
            % (epoch, writers.ack_count(), retried, 1000 * gap))


if __name__ == "__main__":
    cl.run_test("membership", main, budget_s=120)
