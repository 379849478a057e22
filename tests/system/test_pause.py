#!/usr/bin/env python3
"""test_pause — SIGSTOP the primary (a process pause, as a long GC or a
stalled VM), let the others take over, then SIGCONT it.

Under write load: SET zk=before (acknowledged), SIGSTOP the primary, write
zk=after through the other replicas until acknowledged (a new primary), a
client connects to the paused replica and queues a GET zk there, then
SIGCONT. Pass: the resumed old primary never answers the old value for a
linearizable GET (neither the GET queued while it was paused nor fresh ones
right after it resumes), every acknowledged write reads back, and the group
converges with the old primary as a backup.

Also: a write that a backup forwarded to the primary just as it froze is
answered once the backup sees the new view (OK, -TRYAGAIN or -UNKNOWN, and
-TRYAGAIN only if it did not take effect), not after the forward timeout;
and INFO replication tells the truth about the frozen replica: the new
primary reports it suspected, the other backup (which hears only from the
primary) reports health=unknown.

usage: test_pause.py [path/to/cohort]
"""

import sys
import threading
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402
from workload import Writers, verify_writes  # noqa: E402

# The server's FORWARD_REPLY_TIMEOUT_MS (src/server/internal.h), in seconds.
FORWARD_TIMEOUT_S = 10


def set_until_acked(c, targets, key, value, timeout):
    deadline = time.monotonic() + timeout
    last = None
    k = 0
    while time.monotonic() < deadline:
        i = targets[k % len(targets)]
        k += 1
        try:
            if c.command(i, "SET", key, value, timeout=1.0 * c.slow) == "OK":
                return i
        except (OSError, resp.RespError, resp.ProtocolError) as e:
            last = e
        time.sleep(0.01)
    raise cl.TestFailure("SET %s=%s not acknowledged by %s within %.0fs "
                         "(last: %r); roles %s" % (key, value, targets,
                                                   timeout, last, c.roles()))


class ReplyReader(threading.Thread):
    """Reads one reply on conn in the background and notes when it came."""

    def __init__(self, conn):
        super().__init__(daemon=True, name="inflight-reader")
        self.conn = conn
        self.reply = None
        self.at = None

    def run(self):
        try:
            self.reply = self.conn.read_reply()
        except (OSError, resp.ProtocolError) as e:
            self.reply = e
        self.at = time.monotonic()


def read_inflight(reader, t0, timeout):
    """The reply to the SET forwarded to the frozen primary, and when it
    came. OK, -TRYAGAIN and -UNKNOWN are all correct answers; the forward
    timeout is not: the view change must end the wait."""
    reader.join(timeout)
    check(not reader.is_alive(), "the write forwarded to the frozen primary "
          "got no answer in %.0fs" % timeout)
    r = reader.reply
    check(not isinstance(r, (OSError, resp.ProtocolError)),
          "the write forwarded to the frozen primary: %r" % (r,))
    took = reader.at - t0
    if isinstance(r, resp.RespError):
        check(r.code in ("TRYAGAIN", "UNKNOWN"),
              "the write forwarded to the frozen primary: -%s" % r.message)
        check("did not answer" not in r.message,
              "the write forwarded to the frozen primary waited for the "
              "forward timeout (%.1fs) instead of ending with the view "
              "change: -%s" % (took, r.message))
    else:
        check(r == "OK", "the write forwarded to the frozen primary: %r"
              % (r,))
    return r, took


def member(inf, j):
    """The fields of INFO replication's member<j> line, as a dict."""
    text = inf.get("member%d" % j, "")
    return dict(f.split("=", 1) for f in text.split(",") if "=" in f)


def health_problems(infos):
    """What INFO replication says about members that the replica cannot
    know: a backup hears only from the primary, so it must report the other
    backups as health=unknown (never suspected or ok)."""
    out = []
    for i, inf in infos.items():
        if inf.get("role") != "backup":
            continue
        for j in range(int(inf.get("members", "0"))):
            m = member(inf, j)
            if j != i and m.get("role") == "backup" and \
                    m.get("health") != "unknown":
                out.append("backup r%d reports backup r%d as %s"
                           % (i, j, inf.get("member%d" % j)))
    return out


def wait_health(c, i, j, want, timeout):
    """Wait until replica i's INFO says member j has health `want`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = c.info(i)
            if member(last, j).get("health") == want:
                return last
        except (OSError, resp.RespError, resp.ProtocolError) as e:
            last = e
        time.sleep(0.05)
    raise cl.TestFailure("r%d's INFO never said health=%s for r%d within "
                         "%.0fs; last: %r" % (i, want, j, timeout, last))


def short(r):
    if isinstance(r, resp.RespError):
        return "-" + r.code
    return str(r)


def main(binary):
    c = cl.Cluster(binary, n=3, name="pause")
    c.start()
    p, _ = c.wait_for_primary()
    others = [i for i in range(c.n) if i != p]
    w = Writers(c, threads=3).start()
    check(w.wait_acks(100, 20 * c.slow), "no progress: %s" % w.summary())
    set_until_acked(c, [p], "zk", "before", 10 * c.slow)

    # A connection to the primary made before the pause, used after it.
    early = c.client(p, timeout=10 * c.slow)
    early.command("PING")
    # A connection to a backup whose write will be in flight to the primary
    # (forwarded) when it freezes. It must be answered once the backup sees
    # the new view, not when the forward times out (FORWARD_REPLY_TIMEOUT_MS,
    # 10 s): whatever it gets, the text must not be that timeout.
    fwd = c.client(others[0], timeout=(FORWARD_TIMEOUT_S + 20) * c.slow)
    check(fwd.command("SET", "inflight:warm", "1") == "OK",
          "SET through the backup r%d" % others[0])
    c.pause(p)
    t0 = time.monotonic()
    log("SIGSTOP primary r%d" % p)
    fwd.send_raw(resp.encode_command("SET", "inflight", "v1"))
    reader = ReplyReader(fwd)
    reader.start()
    via = set_until_acked(c, others, "zk", "after", 30 * c.slow)
    t_after = time.monotonic() - t0
    np, _ = c.wait_for_primary(probe=False)
    log("zk=after acknowledged through r%d %.2fs into the pause; primary "
        "now r%d" % (via, t_after, np))
    check(np != p, "the paused replica is still the primary")
    inflight, t_inflight = read_inflight(reader, t0,
                                         (FORWARD_TIMEOUT_S + 20) * c.slow)
    # INFO while r(p) is frozen: the new primary suspects it; the other
    # backup does not hear from backups and must say it does not know.
    wait_health(c, np, p, "suspected", 5 * c.slow)
    third = [i for i in range(c.n) if i not in (p, np)][0]
    inf = wait_health(c, third, p, "unknown", 5 * c.slow)
    check(member(inf, np).get("health") == "ok",
          "backup r%d on its primary r%d: %s" % (third, np,
                                                 inf.get("member%d" % np)))
    fwd.close()
    log("SET inflight forwarded by r%d to the frozen primary -> %r after "
        "%.2fs" % (others[0], inflight, t_inflight))

    # Queue a linearizable read on the paused replica, then resume it.
    early.send_raw(resp.encode_command("GET", "zk"))
    time.sleep(0.2)
    c.resume(p)
    log("SIGCONT r%d after %.2fs" % (p, time.monotonic() - t0))
    stale = []
    try:
        r = early.read_reply()
        log("GET zk queued while paused -> %r" % (r,))
        if r == b"before":
            stale.append("the GET queued while r%d was paused" % p)
    except (OSError, resp.ProtocolError) as e:
        log("GET zk queued while paused -> %r (allowed)" % e)
    early.close()
    reads = 0
    deadline = time.monotonic() + 2.0 * c.slow
    while time.monotonic() < deadline:
        try:
            r = c.command(p, "GET", "zk", timeout=2.0 * c.slow)
            reads += 1
            if r == b"before":
                stale.append("a GET on r%d %.3fs after it resumed"
                             % (p, time.monotonic() - t0))
            else:
                check(r == b"after", "GET zk on r%d: %r" % (p, r))
        except resp.RespError as e:
            check(e.code in ("TRYAGAIN", "UNKNOWN", "NOQUORUM", "LOADING"),
                  "GET zk on the resumed r%d: -%s" % (p, e.message))
        except OSError:
            pass
        time.sleep(0.01)
    check(not stale, "stale reads (zk=before after zk=after was "
          "acknowledged): %s" % "; ".join(stale[:5]))

    time.sleep(0.5)
    w.stop()
    check(not w.stats.unexpected, "unexpected replies: %s"
          % w.stats.unexpected[:5])
    infos = c.wait_converged()
    check(infos[p].get("role") == "backup" or
          int(infos[p].get("view", 0)) > 0,
          "r%d after the pause: %s" % (p, infos[p]))
    for i in range(c.n):
        if i != np:
            wait_health(c, np, i, "ok", 5 * c.slow)
    bad = health_problems(c.infos())
    check(not bad, "INFO replication: %s" % "; ".join(bad))
    problems = []
    for i in range(c.n):
        problems += verify_writes(c, w, i)
        problems += verify_writes(c, w, i, readonly=True)
        got = cl.read_all(c, i, ["inflight"])["inflight"]
        if inflight == "OK" and got != b"v1":
            problems.append("r%d: SET inflight was acknowledged, GET "
                            "returns %r" % (i, got))
        if isinstance(inflight, resp.RespError) and \
                inflight.code == "TRYAGAIN" and got is not None:
            problems.append("r%d: SET inflight got -TRYAGAIN (certainly not "
                            "applied) but GET returns %r" % (i, got))
    check(not problems, "after the pause:\n  " + "\n  ".join(problems[:30]))
    return ("primary r%d paused; zk=after acked %.2fs into the pause; a "
            "write forwarded to it answered after %.2fs (%s); %d reads on "
            "the resumed replica, none stale; %d writes acked, 0 lost"
            % (p, t_after, t_inflight, short(inflight), reads,
               w.ack_count()))


if __name__ == "__main__":
    cl.run_test("pause", main, budget_s=60)
