#!/usr/bin/env python3
"""test_client_coord — sessions and watches through libcohort-client
(issue 15 item 4) on a real 3-replica group, through
build/cohort-coord-test (linked against the shared library).

  1. session kept alive by the library: a session (TTL 3 s, times the
     sanitizer factor) opened by cohort_session_open() and kept alive by
     its thread, with an ephemeral key, while the primary is SIGKILLed
     (and restarted) 3 times. After each kill, and after the library has
     answered 3 more KEEPALIVEs past the last one, the session is live
     and its key present: 0 expiries. cohort_session_close() deletes the
     key at once.
  2. session lost: the client process is SIGSTOPped until the group has
     expired its session (its key is gone); after SIGCONT the library
     reports the session lost (callback and state), and does not
     resurrect it.
  3. watch with resume: a watch on a prefix through the library while
     cohort-client-test makes INCRs of a counter under it (exactly once,
     through the library) and the primary is SIGKILLed 3 times, then each
     backup is restarted, then twice the member the watcher is connected
     to is SIGSTOPped until the watcher has seen 20 INCRs made since (it
     must notice the silence and move: a cut link). The watcher's events for the counter are exactly
     1, 2, ..., N (every INCR once, in order: none lost, none twice),
     their revisions rise, and it resumed at least once.
  3a. group watch: COHORT_WATCH_GROUP through the library, on a backup
     first, while 6 members join and 3 leave (through the primary) and
     the watched backup is restarted twice: the views delivered are the
     group's (members and data in join order, the JOINs' view numbers),
     each once, in order, and the watch resumed.
  3b. `cohort cli watch --prefix --from R --count 3 cw/` prints the 3
     changes made after revision R, one line each, and exits 0.
  4. compacted: on a 1-replica group retaining 16 events, a watch FROM
     revision 1 after 100 writes ends with ENOTFOUND and the server's
     "is compacted" message (surfaced, not hidden).

  5. bounded staleness: with cohort_client_set_min_revision(R), a local
     read sent only to a backup that was SIGSTOPped while k changed at
     revision R (resumed once the read has started) answers the new value,
     never the old; a revision no member has reached fails at the
     deadline naming the member's revision (-TRYAGAIN from COHORT.APPLIED).

Every wait is a poll with a bounded deadline; nothing asserts a timing.

usage: test_client_coord.py [path/to/cohort]
"""

import os
import queue
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
from cluster import check, log  # noqa: E402

import test_client_lib as lib  # noqa: E402


def coord_tool(binary):
    path = os.path.join(os.path.dirname(os.path.abspath(binary)),
                        "cohort-coord-test")
    check(os.path.exists(path), "%s is not built (cmake target "
          "cohort-coord-test)" % path)
    return path


class Proc:
    """A cohort-coord-test process whose stdout lines are queued."""

    def __init__(self, args):
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self.all = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.proc.stdout:
            self.all.append(line.rstrip("\n"))
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, prefix, timeout):
        """The next line starting with prefix (others are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            check(left > 0, "no line '%s...' in %.0fs; got: %s; stderr: %s"
                  % (prefix, timeout, self.all[-5:], self.stderr()))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            check(line is not None, "exited (%s) before '%s...'; got: %s; "
                  "stderr: %s" % (self.proc.poll(), prefix, self.all[-5:],
                                  self.stderr()))
            if line.startswith(prefix):
                return line

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stderr(self):
        if self.proc.poll() is None:
            return "(running)"
        return self.proc.stderr.read()[-500:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def fields(line):
    return dict(f.split("=", 1) for f in line.split() if "=" in f)


def check_live(s, slow, what):
    r = fields(s_check(s, slow))
    check(r["state"] == "live" and r["key"] == "present",
          "%s: the session is %s and its key %s (want live, present); "
          "expiries must be 0" % (what, r["state"], r["key"]))
    return r


def s_check(s, slow):
    s.send("check")
    return s.expect("state=", 60 * slow)


def primary_value(c, key):
    p, _ = c.wait_for_primary()
    return c.command(p, "GET", key)


def session_through_kills(binary, c, kills):
    slow = c.slow
    ttl = int(3000 * slow)
    s = Proc([coord_tool(binary), "session", "--members", lib.members(c),
              "--ttl-ms", str(ttl), "--key", "eph"])
    try:
        sid = s.expect("ready", 60 * slow).split()[1]
        check(primary_value(c, "eph") == b"held", "the ephemeral key")
        for i in range(kills):
            lib.kill_primary_and_restart(c, slow)
            check_live(s, slow, "after kill %d" % (i + 1))
        # The keepalives go on after the last failover: 3 more answered.
        base = int(fields(s_check(s, slow))["keepalives"])
        cl.poll("3 more keepalives", 60 * slow,
                lambda: int(fields(s_check(s, slow))["keepalives"])
                >= base + 3)
        r = check_live(s, slow, "after %d kills" % kills)
        check(not any(x.startswith("lost") for x in s.all),
              "the library reported the session lost: %s" % s.all)
        check(primary_value(c, "eph") == b"held",
              "the ephemeral key is gone after the kills")
        s.send("close")
        closed = s.expect("closed", 60 * slow)
        check(closed == "closed rc=OK", "close: %s" % closed)
        cl.poll("the key deleted by CLOSE", 30 * slow,
                lambda: primary_value(c, "eph") is None)
        s.proc.wait(timeout=30 * slow)
        log("session %s: %d kills, 0 expiries, %s keepalives"
            % (sid, kills, r["keepalives"]))
        return int(r["keepalives"])
    finally:
        s.stop()


def session_lost(binary, c):
    slow = c.slow
    ttl = int(1000 * slow)
    s = Proc([coord_tool(binary), "session", "--members", lib.members(c),
              "--ttl-ms", str(ttl), "--key", "eph2"])
    try:
        s.expect("ready", 60 * slow)
        check_live(s, slow, "before the pause")
        os.kill(s.proc.pid, signal.SIGSTOP)
        try:
            cl.poll("the group expiring the paused client's session",
                    60 * slow, lambda: primary_value(c, "eph2") is None)
        finally:
            os.kill(s.proc.pid, signal.SIGCONT)
        s.expect("lost", 60 * slow)
        r = fields(s_check(s, slow))
        check(r["state"] == "lost" and r["key"] == "missing",
              "after expiry the library says %s" % r)
        s.send("close")
        s.expect("closed", 60 * slow)
        log("paused client: session lost, reported to the application")
    finally:
        s.stop()


def restart_member(c, i):
    c.kill(i)
    c.restart(i)
    c.wait_for_primary(timeout=30 * c.slow, probe=False)
    log("restarted r%d" % i)


def last_counter(w):
    for line in reversed(w.all):
        e = line.split()
        if len(e) == 5 and e[0] == "event" and e[3] == "w/n":
            return int(e[4])
    return 0


def watched_member(c, w):
    lines = [x for x in w.all if x.startswith("member ")]
    check(lines, "the watcher named no member")
    port = int(lines[-1].rsplit(":", 1)[1])
    return c.client_ports.index(port)


def pause_watched_member(c, inc, w):
    """SIGSTOP the member the watcher is connected to until the watcher
    has seen 20 INCRs made after the pause: it must notice the silence
    (its PINGs unanswered) and resume on another member. A stopped
    primary is replaced meanwhile, which the writer needs anyway."""
    i = watched_member(c, w)
    c.pause(i)
    try:
        # INCRs made after the pause: above what a linearizable read at the
        # primary (a new one if i was it) says now.
        now = cl.retry(c, lambda: c.command(
            c.wait_for_primary(timeout=30 * c.slow)[0], "GET", "w/n"),
            "GET w/n", 30 * c.slow)
        target = int(now) + 20
        cl.poll("the watcher past 20 INCRs made while r%d is stopped" % i,
                60 * c.slow, lambda: last_counter(w) >= target)
    finally:
        c.resume(i)
    log("stopped r%d (the watcher's) until it saw INCR %d on r%d"
        % (i, last_counter(w), watched_member(c, w)))


def watch_through_faults(binary, c, kills):
    slow = c.slow
    p, _ = c.wait_for_primary()
    c.command(p, "SET", "w/start", "1")
    w = Proc([coord_tool(binary), "watch", "--members", lib.members(c),
              "--key", "w/", "--prefix", "--until-key", "w/end",
              "--count", "100000000", "--timeout-ms",
              str(int(600000 * slow))])
    inc = None
    try:
        w.expect("ready", 60 * slow)
        stop = os.path.join(c.dir, "stop-watch")
        inc = lib.Incrementer(binary, c, "w/n", 120000 * slow, stop)
        for _ in range(kills):
            inc.wait_progress(100, 60 * slow)
            lib.kill_primary_and_restart(c, slow)
        for i in range(c.n):
            inc.wait_progress(100, 60 * slow)
            q, _ = c.wait_for_primary(probe=False)
            if i != q:
                restart_member(c, i)
        for _ in range(2):
            inc.wait_progress(100, 60 * slow)
            pause_watched_member(c, inc, w)
        inc.wait_progress(100, 60 * slow)
        res = inc.stop(60 * slow)
        inc = None
        check(res["ok"] > 0 and res["unknown"] == 0 and res["other"] == 0
              and res["notapplied"] == 0 and res["out_of_order"] == 0,
              "the writer through the library: %s" % res)
        cl.retry(c, lambda: c.command(c.wait_for_primary()[0], "SET",
                                      "w/end", "1"), "SET w/end", 30 * slow)
        done = fields(w.expect("done", 120 * slow))
        check(done["rc"] == "OK", "the watch ended: %s" % done)
        events = [x.split() for x in w.all if x.startswith("event ")]
        counter = [e for e in events if e[3] == "w/n"]
        values = [int(e[4]) for e in counter]
        revs = [int(e[1]) for e in events]
        check(revs == sorted(revs), "revisions out of order")
        want = list(range(1, res["ok"] + 1))
        if values != want:
            missing = sorted(set(want) - set(values))
            dup = len(values) - len(set(values))
            check(False, "the watcher saw %d counter events for %d INCRs: "
                  "%d missing (first %s), %d duplicates"
                  % (len(values), res["ok"], len(missing), missing[:5], dup))
        check(events[-1][3] == "w/end", "the last event: %s" % events[-1])
        check(int(done["resumes"]) >= 1, "the watch never resumed: %s" % done)
        log("watch: %d INCRs seen exactly once in order over %d kills and "
            "%d member restarts and 2 pauses of its member, %s resumes"
            % (res["ok"], kills, c.n - 1, done["resumes"]))
        check(int(done["resumes"]) >= 2, "the watch resumed %s times "
              "(want at least the 2 pauses)" % done["resumes"])
        return res["ok"], int(done["resumes"])
    finally:
        if inc is not None:
            inc.proc.kill()
        w.stop()


def cli_watch(binary, c):
    p, _ = c.wait_for_primary()
    rev = c.command(p, "COHORT.GET", "cw/none", "WITHREV")[3]
    for i in range(3):
        c.command(p, "SET", "cw/%d" % i, "v%d" % i)
    out = subprocess.run([binary, "cli", "--members", lib.members(c),
                          "watch", "--prefix", "--from", str(rev),
                          "--count", "3", "cw/"],
                         capture_output=True, text=True, timeout=60 * c.slow)
    lines = [x.split() for x in out.stdout.splitlines()]
    check(out.returncode == 0 and [x[1:] for x in lines] ==
          [["set", "cw/%d" % i, "v%d" % i] for i in range(3)]
          and all(int(x[0]) > rev for x in lines),
          "cohort cli watch: exit %d, %r %r" % (out.returncode, out.stdout,
                                               out.stderr))
    log("cohort cli watch: %s" % out.stdout.splitlines()[0])


def bounded_staleness(binary, c):
    slow = c.slow
    p, _ = c.wait_for_primary()
    b = c.backups(p)[0]
    cl.retry(c, lambda: c.command(p, "SET", "bs", "old"), "SET bs", 30 * slow)
    c.wait_converged()
    c.pause(b)
    try:
        c.command(p, "SET", "bs", "new")
        rev = c.command(p, "COHORT.GET", "bs", "WITHREV")[3]
        only_b = "%s:%d" % (cl.HOST, c.client_ports[b])
        proc = subprocess.Popen(
            [lib.tool(binary), "call", "--members", only_b, "--local",
             "--min-revision", str(rev), "--deadline-ms",
             str(int(60000 * slow)), "--", "GET", "bs"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Let the read reach the stopped backup's socket first, so that it
        # is the first thing b does when it runs again (behind). The check
        # below holds whatever the timing; this only makes it bite.
        time.sleep(0.3 * slow)
    finally:
        c.resume(b)
    out, err = proc.communicate(timeout=90 * slow)
    check(proc.returncode == 0 and "rc=OK" in out and "text=new" in out,
          "a read at revision %d from r%d, which was behind: %r %r"
          % (rev, b, out, err))
    r = lib.call(binary, only_b, ["GET", "bs"], int(1000 * slow),
                 extra=["--local", "--min-revision", str(rev + 1000000)])
    check(r["rc"] == "ENOTAPPLIED" and "not yet %d" % (rev + 1000000)
          in r["error"], "a read at a revision nobody has: %s" % r)
    log("bounded staleness: read at revision %d from a lagging backup "
        "answered the new value; beyond: %s" % (rev, r["error"]))


def compacted(binary):
    c = cl.Cluster(binary, n=1, name="client-coord-compact",
                   extra_args=["--pubsub-history-messages", "16"])
    c.start()
    c.wait_for_primary()
    for i in range(100):
        c.command(0, "SET", "c/%d" % i, "x")
    w = Proc([coord_tool(binary), "watch", "--members", lib.members(c),
              "--key", "c/", "--prefix", "--after", "1", "--count", "1000",
              "--timeout-ms", str(int(60000 * c.slow))])
    try:
        done = fields(w.expect("done", 90 * c.slow))
        line = [x for x in w.all if x.startswith("done")][0]
        check(done["rc"] == "ENOTFOUND" and "is compacted" in line
              and done["events"] == "0",
              "a watch FROM a compacted revision: %s" % line)
        log("compacted: %s" % line.split("error=", 1)[1])
    finally:
        w.stop()
    c.finish()


def group_watch(binary, c):
    """A group watch (COHORT_WATCH_GROUP) through the library, connected
    to a backup first; members join and leave through the primary while
    the watched backup is restarted twice (the watch resumes on another
    member FROM the last view it delivered). The views delivered are
    exactly the group's, each once, in order."""
    slow = c.slow
    p, _ = c.wait_for_primary()
    order = [i for i in range(c.n) if i != p] + [p]  # a backup first
    member_list = ",".join("%s:%d" % (cl.HOST, c.client_ports[i])
                           for i in order)
    w = Proc([coord_tool(binary), "watch", "--members", member_list,
              "--key", "gw", "--group", "--count", "9", "--timeout-ms",
              str(int(120000 * slow))])
    try:
        w.expect("ready", 60 * slow)
        session = c.command(p, "COHORT.SESSION", "OPEN", "600000")
        want = []
        members = []
        steps = [("JOIN", "m%d" % k) for k in range(6)] + \
            [("LEAVE", "m%d" % k) for k in (0, 2, 4)]
        for k, (op, m) in enumerate(steps):
            if k in (2, 5):  # restart the member the watch is on
                i = watched_member(c, w)
                if i != p:
                    restart_member(c, i)
            if op == "JOIN":
                view = c.command(p, "COHORT.GROUP", "JOIN", "gw", m,
                                 str(session), "d" + m)
                members.append(m)
            else:
                check(c.command(p, "COHORT.GROUP", "LEAVE", "gw", m) == 1,
                      "LEAVE %s" % m)
                members.remove(m)
                view = None
            want.append((view, ",".join("%s=d%s" % (x, x) for x in members)
                         or "-"))
        done = fields(w.expect("done", 120 * slow))
        check(done["rc"] == "OK", "the group watch ended: %s" % done)
        got = [x.split() for x in w.all if x.startswith("view ")]
        check(len(got) == len(want), "%d views delivered, want %d: %s"
              % (len(got), len(want), got))
        revs = [int(g[1]) for g in got]
        check(revs == sorted(set(revs)), "views not rising: %s" % revs)
        for g, (view, ms) in zip(got, want):
            check(g[2] == "gw" and g[3] == ms and
                  (view is None or int(g[1]) == view),
                  "view %s, want %s %s" % (g, view, ms))
        check(int(done["resumes"]) >= 1, "never resumed: %s" % done)
        c.command(p, "COHORT.SESSION", "CLOSE", str(session))
        log("group watch: %d views exactly once in order, %s resumes"
            % (len(got), done["resumes"]))
        return len(got), int(done["resumes"])
    finally:
        w.stop()


def body(binary):
    c = cl.Cluster(binary, n=3, name="client-coord")
    c.start()
    c.wait_for_primary()
    keepalives = session_through_kills(binary, c, kills=3)
    session_lost(binary, c)
    n, resumes = watch_through_faults(binary, c, kills=3)
    views, view_resumes = group_watch(binary, c)
    cli_watch(binary, c)
    bounded_staleness(binary, c)
    compacted(binary)
    return ("session: 3 primary kills, 0 expiries, %d keepalives; watch: %d "
            "changes exactly once in order over 3 kills, 2 member "
            "restarts and 2 pauses of its member (%d resumes); group watch: "
            "%d views exactly once in order (%d resumes); compacted "
            "surfaced; bounded-staleness reads"
            % (keepalives, n, resumes, views, view_resumes))


if __name__ == "__main__":
    cl.run_test("client_coord", body, budget_s=300)
