#!/usr/bin/env python3
"""test_removed — a live replica removed from the group says so, and
serves again once added back.

Three voters; `cohort remove` takes out a live backup B, which keeps
running. Pass:

  - B's INFO replication says role:removed (not recovering) with
    self_member:outside, and `cohort status` of B shows the same;
  - B logs `replica B was removed from the group in epoch E; stop it, or
    add it back with cohort add B` once (and once more after a restart,
    which finds it removed from its metadata alone);
  - every store command at B (a read, a write, a READONLY read, a
    COHORT.REQ write, a SUBSCRIBE, a command queued in MULTI) gets a
    one-line -REMOVED error naming the epoch and the fix, not -TRYAGAIN;
    a subscriber B had before the removal is cut off with that error;
    PING and INFO still answer;
  - `cohort members`, asked at B, follows it to the primary and lists B
    as outside; the other two commit meanwhile;
  - `cohort add B` brings it back as a learner, then a voter: its INFO
    says backup, and it serves a write and a READONLY read of a key
    written while it was out;
  - meanwhile, without a majority (the primary stopped), `cohort add B`
    asked at B says B was removed and names the current member to ask,
    and `cohort remove` fails within one bounded wait.

usage: test_removed.py [path/to/cohort]
"""

import subprocess
import sys
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402


def cli(c, *args):
    out = subprocess.run([c.binary] + list(args), capture_output=True,
                         text=True, timeout=120 * c.slow)
    check(out.returncode == 0, "cohort %s: rc %d\nstdout: %s\nstderr: %s"
          % (" ".join(args), out.returncode, out.stdout, out.stderr))
    log("cohort %s: %s" % (" ".join(args[:1] + args[3:]),
                           out.stdout.strip().replace("\n", " | ")[:300]))
    return out.stdout


def wait_role(c, i, roles, timeout):
    """Replica i's INFO role is one of roles; returns its INFO."""
    deadline = time.monotonic() + timeout
    inf = {}
    while time.monotonic() < deadline:
        try:
            inf = c.info(i)
        except (OSError, resp.RespError, resp.ProtocolError):
            inf = {}
        if inf.get("role") in roles:
            return inf
        time.sleep(0.02)
    raise cl.TestFailure("r%d's role is not %s: %s" % (
        i, "/".join(roles), {k: inf.get(k) for k in
                             ("role", "epoch", "self_member")}))


def removal_lines(c, i, epoch):
    want = ("replica %d was removed from the group in epoch %d; stop it, or "
            "add it back with cohort add %d" % (i, epoch, i))
    return [ln for ln in c.log_text(i).splitlines() if want in ln]


def refused_removed(c, i, epoch, *args, readonly=False):
    """args at replica i get the one-line -REMOVED error."""
    with c.client(i) as k:
        if readonly:
            check(k.command("READONLY") == "OK", "READONLY at r%d" % i)
        try:
            r = k.command(*args)
        except resp.RespError as e:
            check_removed_error(e.message, i, epoch, " ".join(args))
            return
    raise cl.TestFailure("%s at the removed r%d answered %r"
                         % (" ".join(args), i, r))


def check_removed_error(message, i, epoch, what):
    check(message.startswith("REMOVED ") and "\n" not in message,
          "%s at the removed r%d: -%s" % (what, i, message))
    for words in ("removed from the group (epoch %d)" % epoch,
                  "use another member", "cohort add %d" % i):
        check(words in message, "%s at r%d: %r lacks %r"
              % (what, i, message, words))


def check_refusals(c, b, epoch):
    refused_removed(c, b, epoch, "GET", "k")
    refused_removed(c, b, epoch, "SET", "k", "v")
    refused_removed(c, b, epoch, "DBSIZE")
    refused_removed(c, b, epoch, "GET", "k", readonly=True)
    refused_removed(c, b, epoch, "COHORT.REQ", "77", "1", "INCR", "n")
    refused_removed(c, b, epoch, "SUBSCRIBE", "ch")
    with c.client(b) as k:
        check(k.command("MULTI") == "OK", "MULTI at r%d" % b)
        try:
            k.command("SET", "k", "v")
            raise cl.TestFailure("SET in MULTI at the removed r%d queued" % b)
        except resp.RespError as e:
            check_removed_error(e.message, b, epoch, "SET in MULTI")
        try:
            k.command("EXEC")
            raise cl.TestFailure("EXEC at the removed r%d ran" % b)
        except resp.RespError as e:
            check(e.code in ("EXECABORT", "REMOVED"), "EXEC: -%s" % e.message)
    check(c.command(b, "PING") == "PONG", "PING at the removed r%d" % b)


def cli_fails(c, *args):
    """cohort args fails with one line on stderr; that line and how long
    it took."""
    t0 = time.monotonic()
    out = subprocess.run([c.binary] + list(args), capture_output=True,
                         text=True, timeout=120 * c.slow)
    took = time.monotonic() - t0
    lines = out.stderr.strip().splitlines()
    log("cohort %s -> exit %d in %.1f s: %s" % (" ".join(args),
                                               out.returncode, took,
                                               out.stderr.strip()))
    check(out.returncode == 1 and out.stdout == "" and len(lines) == 1,
          "cohort %s: exit %d, stdout %r, stderr %r"
          % (" ".join(args), out.returncode, out.stdout, out.stderr))
    return lines[0], took


def without_majority(c, b, p, epoch):
    """With the primary p stopped, the other voter o is a lone backup: no
    majority. `cohort add B` asked at the removed B fails in one line that
    says B was removed and names o, the current member it still reaches,
    to ask instead (before: "a majority of members must be up: start the
    stopped ones", as if B were one of them); `cohort remove` asked at o
    fails within one bounded wait."""
    o = [i for i in range(3) if i not in (p, b)][0]
    c.kill(p)
    cl.poll("r%d's master_link_status down" % o, 30 * c.slow,
            lambda: c.info(o).get("master_link_status") == "down")
    addr_b = "127.0.0.1:%d" % c.client_ports[b]
    line, took = cli_fails(c, "add", "--cluster", addr_b, str(b))
    head = ("cohort add: no primary reachable: replica %d (%s) is removed "
            "from the group (epoch %d)" % (b, addr_b, epoch))
    fix = ("ask a current member instead: cohort members --cluster "
           "127.0.0.1:%d" % c.client_ports[o])
    check(line.startswith(head) and line.endswith(fix),
          "cohort add asked at the removed r%d without a majority: want "
          "%r...%r, got %r" % (b, head, fix, line))
    check("majority" not in line, "asked at the removed r%d: %r" % (b, line))
    check(took < 40 * c.slow, "cohort add at r%d took %.0f s" % (b, took))
    line, took = cli_fails(c, "remove", "--cluster",
                           "127.0.0.1:%d" % c.client_ports[o],
                           "--timeout", "3", str(p))
    check(line.startswith("cohort remove: no primary reachable: replica %d "
                          % o) and "a majority of members must be up" in line,
          "cohort remove without a majority: %r" % line)
    check(took < 40 * c.slow, "cohort remove without a majority took "
          "%.0f s" % took)
    c.restart(p)
    c.wait_for_primary()


def main(binary):
    c = cl.Cluster(binary, n=3, name="removed")
    c.start()
    p, _ = c.wait_for_primary()
    b = (p + 1) % 3
    at = "127.0.0.1:%d" % c.client_ports[p]
    check(c.command(p, "SET", "before", "1") == "OK", "SET before")
    c.wait_converged()

    # A subscriber on B before the removal.
    sub = c.client(b, timeout=10 * c.slow)
    sub.send_raw(resp.encode_command("SUBSCRIBE", "news"))
    check(sub.read_reply() == [b"subscribe", b"news", 1],
          "SUBSCRIBE at r%d" % b)

    out = cli(c, "remove", "--cluster", at, str(b))
    check("out of the group" in out, out)
    inf = wait_role(c, b, ("removed",), 10 * c.slow)
    epoch = cl.membership_of(inf)[0]
    check(epoch >= 1 and b not in cl.membership_of(inf)[1],
          "r%d's INFO epoch: %s" % (b, inf.get("epoch")))
    check(inf.get("self_member") == "outside", "self_member: %s"
          % inf.get("self_member"))
    status = cli(c, "status", "127.0.0.1:%d" % c.client_ports[b])
    check("role:removed" in status, "cohort status of r%d: %s" % (b, status))

    # The subscriber is cut off with the error, and the connection closes.
    r = sub.read_reply()
    check(isinstance(r, resp.RespError), "r%d's subscriber got %r" % (b, r))
    check_removed_error(r.message, b, epoch, "the subscriber")
    check(sub.closed_by_peer(5 * c.slow), "r%d kept its subscriber" % b)
    sub.close()

    check_refusals(c, b, epoch)
    # Members, asked at B, follow it to the primary.
    out = cli(c, "members", "--cluster", "127.0.0.1:%d" % c.client_ports[b])
    line = [ln for ln in out.splitlines() if ln.startswith("%d " % b)]
    check(line and " outside " in line[0], "cohort members: %s" % out)
    # The two others commit; B takes no part.
    p, _ = c.wait_for_primary()
    for k in range(20):
        check(c.command(p, "SET", "while%d" % k, str(k)) == "OK", "SET")
    time.sleep(0.3)
    check(len(removal_lines(c, b, epoch)) == 1, "r%d logged its removal "
          "%d times:\n%s" % (b, len(removal_lines(c, b, epoch)),
                             "\n".join(c.log_tail(b, 8))))

    # Restarted, it knows it was removed from its own metadata.
    c.kill(b)
    c.restart(b)
    inf = wait_role(c, b, ("removed",), 10 * c.slow)
    check(cl.membership_of(inf)[0] == epoch, "r%d restarted in epoch %s"
          % (b, inf.get("epoch")))
    refused_removed(c, b, epoch, "GET", "k")
    deadline = time.monotonic() + 5 * c.slow
    while len(removal_lines(c, b, epoch)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    check(len(removal_lines(c, b, epoch)) == 2, "r%d logged its removal %d "
          "times over two starts" % (b, len(removal_lines(c, b, epoch))))

    without_majority(c, b, p, epoch)

    # Added back: a learner, caught up, then a voter; it serves again.
    out = cli(c, "add", "--cluster", at, str(b))
    check("is a learner" in out and "is a voter" in out, out)
    inf = wait_role(c, b, ("backup", "primary"), 20 * c.slow)
    check(inf.get("self_member") == "voter", "r%d after add: %s"
          % (b, inf.get("self_member")))
    c.wait_converged()
    check(cl.retry(c, lambda: c.command(b, "SET", "after", "2"),
                   "SET through r%d" % b, 10 * c.slow) == "OK",
          "SET through r%d" % b)
    want = {"before": b"1", "while19": b"19", "after": b"2"}
    vals = cl.read_all(c, b, list(want))
    check(vals == want, "reads at r%d: %s" % (b, vals))
    # Its own store (READONLY) has them too, once it applied the last.
    cl.poll("READONLY reads at r%d" % b, 10 * c.slow,
            lambda: cl.read_all(c, b, list(want), readonly=True) == want)
    check(len(removal_lines(c, b, epoch)) == 2, "r%d logged a removal "
          "after it was added back" % b)
    c.check_healthy()
    return ("r%d removed in epoch %d: role:removed, -REMOVED, logged once "
            "per start; added back, it serves" % (b, epoch))


if __name__ == "__main__":
    cl.run_test("removed", main, budget_s=90)
