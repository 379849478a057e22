#!/usr/bin/env python3
"""test_jobrunner — examples/jobrunner.c (a group, a fenced lock per job and
a watch) on a real 3-replica group, with its workers paused and killed.

Jobs are submitted in batches (some before the workers start, so a worker
finds them by listing; the rest while they run, so it hears of them by its
watch). Three workers w0, w1, w2 run them while:
  1. the primary is SIGKILLed once (and restarted); the workers' watches
     were on it, so each must resume on another member FROM the last
     revision it saw (jobs submitted later reach them only that way);
  2. w0 is SIGSTOPped right after it prints "took jobs/n token T" (so it
     holds the lock, mid-work), kept stopped until the group's view no
     longer lists it (its session expired, taking its lock), then
     SIGCONTed: its fenced write must be refused, and it must say so
     ("refused jobs/n token T"). If the stop landed after its write (it
     then prints "recorded"), the test tries again on its next job;
  3. w1 is SIGKILLed right after it took a job: the lock goes with its
     session, and another worker must do that job;
  4. the member w2 watches is SIGSTOPped and more jobs are submitted: w2
     must notice the silence (it PINGs its watch) and watch elsewhere.
Then every job must be done, and the history of the jobs (a watch FROM 0
on a member never killed, read to a sentinel key) must hold exactly one
"todo" and exactly one "done" write per job, each done value with the
right result, none with a token a worker was refused with, each by a
worker that reports it (or by w1, killed before it could), the paused
worker's job done with a larger token; and a surviving worker must have
shown a view with w1 and, after the kill, one without it.

When the test waits for a line it submits more jobs now and then, so
that the worker it waits for gets one: progress never rests on timing.

usage: test_jobrunner.py [path/to/cohort]
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402

GROUP = "jobrunners"
TOOK = re.compile(r"^(w\d): took (jobs/\d+) token (\d+)$")
DONE = re.compile(r"^done by (w\d) token (\d+) result (\d+)$")


class Worker:
    """One `jobrunner work` process with its output lines collected."""

    def __init__(self, program, name, members, ttl_ms, work_ms, slow):
        self.name = name
        self.every = 2.0 * slow
        self.lines = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(
            [program, "-t", str(ttl_ms), "-w", str(work_ms), "work", name]
            + members, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            preexec_fn=cl._pdeathsig)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            with self.cond:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self.cond.notify_all()

    def find(self, pattern, start):
        """(index, match) of the first line from start matching, or None."""
        with self.cond:
            for i in range(start, len(self.lines)):
                m = re.search(pattern, self.lines[i])
                if m:
                    return i, m
        return None

    def wait(self, pattern, start, nudge, deadline, what):
        """The first line from start matching pattern; calls nudge() (more
        jobs) whenever a while (2 s, scaled) passes without one."""
        next_nudge = time.monotonic() + self.every
        while True:
            with self.cond:
                n = len(self.lines)
            hit = self.find(pattern, start)
            if hit:
                return hit
            with self.cond:
                if len(self.lines) == n:
                    self.cond.wait(timeout=0.5)
            now = time.monotonic()
            check(now < deadline,
                  "%s: no line matching %r; its last lines:\n%s"
                  % (what, pattern, "\n".join(self.lines[-20:])))
            if now > next_nudge:
                nudge()
                next_nudge = time.monotonic() + self.every

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(timeout=10)


def store(c, *args):
    """A command through whichever live member answers, retried across a
    failover (TRYAGAIN, UNKNOWN, a closed connection)."""
    deadline = time.monotonic() + 30 * c.slow
    last = None
    while time.monotonic() < deadline:
        for i in c.live():
            try:
                return c.command(i, *args)
            except resp.RespError as e:
                if not str(e).startswith(("TRYAGAIN", "UNKNOWN")):
                    raise
                last = e
            except (OSError, resp.ProtocolError) as e:
                last = e
        time.sleep(0.1)
    raise cl.TestFailure("%s never answered: %r" % (args, last))


def members_of(c):
    view = store(c, "COHORT.GROUP", "VIEW", GROUP)
    return [m.decode() for m in view[1][0::2]]


def history(c, i, n):
    """Every event under jobs/ since revision 0, read from member i up to a
    sentinel written last: (kind, key, value) in revision order."""
    store(c, "SET", "jobs/~end", "x")
    k = c.client(i, timeout=10 * c.slow)
    k.send_raw(resp.encode_command("COHORT.WATCH", "PREFIX", "jobs/",
                                   "FROM", "0"))
    r = k.read_reply()
    check(isinstance(r, list) and r[0] == b"watching",
          "COHORT.WATCH PREFIX jobs/ FROM 0 on r%d: %r" % (i, r))
    events = []
    while True:
        r = k.read_reply()
        check(isinstance(r, list) and len(r) == 5 and r[0] == b"watch",
              "history: not an event: %r" % (r,))
        if r[3] == b"jobs/~end":
            break
        events.append((r[2], r[3].decode(),
                       None if r[4] is None else r[4].decode()))
    k.close()
    return events


def scenario(binary):
    program = os.path.join(os.path.dirname(os.path.abspath(binary)),
                           "client-example-jobrunner")
    check(os.path.exists(program), "%s is not built (make build)" % program)
    c = cl.Cluster(binary, n=3, name="jobrunner")
    c.start()
    first, _ = c.wait_for_primary()
    # The primary first: every worker watches on it, so its death makes
    # each watch resume on another member.
    members = ["127.0.0.1:%d" % c.client_ports[(first + k) % c.n]
               for k in range(c.n)]
    slow = c.slow
    ttl_ms, work_ms = int(1500 * slow), int(200 * slow)
    deadline = time.monotonic() + 120 * slow
    total = [0]

    def submit(count):
        total[0] = count
        r = subprocess.run([program, "submit", str(count)] + members,
                           capture_output=True, text=True, timeout=90 * slow)
        check(r.returncode == 0, "submit %d: rc %d: %s%s"
              % (count, r.returncode, r.stdout, r.stderr))

    def nudge():
        submit(total[0] + 3)

    submit(10)
    workers = [Worker(program, "w%d" % i, members, ttl_ms, work_ms, slow)
               for i in range(3)]
    w0, w1, w2 = workers
    try:
        submit(20)
        # 1. The primary dies once while the workers run.
        w2.wait(r"recorded", 0, nudge, deadline, "w2 works")
        p, _ = c.wait_for_primary(probe=False)  # first, unless it moved
        c.kill(p)
        q, waited = c.wait_for_primary(timeout=30 * slow)
        c.restart(p)
        log("killed primary r%d; r%d took over after %.2fs" % (p, q, waited))
        # 2. w0 paused mid-job past its TTL, then resumed: refused.
        start, stale = len(w0.lines), None
        for attempt in range(8):
            i, m = w0.wait(TOOK.pattern, start, nudge, deadline, "w0 takes")
            w0.proc.send_signal(signal.SIGSTOP)
            job, token = m.group(2), m.group(3)
            cl.poll("w0's session expires", 30 * slow,
                    lambda: "w0" not in members_of(c), pause=0.1)
            w0.proc.send_signal(signal.SIGCONT)
            j, m = w0.wait(r"^w0: (refused|recorded) %s token %s"
                           % (job, token), i, nudge, deadline, "w0 resumes")
            if m.group(1) == "refused":
                stale = (job, int(token))
                break
            # A worker prints "took" only for a job still todo under its
            # lock: if one did, w0 wrote after losing its lock.
            for w in (w1, w2):
                hit = w.find(r"^%s: took %s token" % (w.name, job), 0)
                check(hit is None, "w0 recorded %s with token %s after its "
                      "session expired, and %s took it too: %s"
                      % (job, token, w.name, hit and hit[1].group(0)))
            log("the stop landed after w0's write; again")
            start = j + 1
        check(stale is not None, "w0 was never stopped before its write")
        log("w0 paused past its TTL holding %s token %d: refused" % stale)
        # 3. w1 killed holding a lock.
        _, m = w1.wait(TOOK.pattern, len(w1.lines), nudge, deadline,
                       "w1 takes")
        w1.proc.kill()
        killed_at = len(w2.lines)
        w1.proc.wait(timeout=10)
        log("killed w1 holding %s token %s" % (m.group(2), m.group(3)))
        # 4. The member w2 watches is frozen: w2 must leave it (it PINGs)
        # to hear of the next jobs.
        watching = r"^w2: watching jobs/\* on 127\.0\.0\.1:(\d+) "
        w2.wait(watching, 0, lambda: None, deadline, "w2 watches")
        frozen_at = len(w2.lines)
        port = [re.match(watching, line) for line in w2.lines[:frozen_at]
                if re.match(watching, line)][-1].group(1)
        frozen = c.client_ports.index(int(port))
        c.pause(frozen)
        submit(total[0] + 3)
        w2.wait(r"^w2: watch connection lost \(the member is silent\)",
                frozen_at, lambda: None, deadline, "w2 leaves a frozen member")
        log("froze r%d, which w2 watched: w2 moved on" % frozen)
        # Every job gets done.
        n = total[0]
        keys = ["jobs/%04d" % j for j in range(n)]

        def all_done():
            vals = store(c, "MGET", *keys)
            return all(v is not None and v.startswith(b"done ")
                       for v in vals)
        cl.poll("all %d jobs done" % n, 60 * slow, all_done, pause=0.2)
        c.resume(frozen)
        # Each live worker prints what it wrote (a line may still be on
        # its way), and w2 shows the view without w1.
        for v in store(c, "MGET", *keys):
            m = DONE.match(v.decode())
            who = m.group(1) if m else "w1"
            if who != "w1":
                workers[int(who[1])].wait(r"^%s: recorded jobs/\d+ token %s$"
                                          % (who, m.group(2)), 0,
                                          lambda: None, deadline,
                                          "%s reports its write" % who)
        w2.wait(r"^w2: view \d+:( w[02])*$", killed_at, lambda: None,
                deadline, "w2 shows w1 gone")
        for w in (w0, w2) if p == first else ():
            i, _ = w.wait(r"watch connection lost", 0, lambda: None,
                          deadline, "%s's watch sees r%d die" % (w.name, p))
            w.wait(r"watching jobs/\* on .* from revision [1-9]", i,
                   lambda: None, deadline, "%s's watch resumes" % w.name)
            log("%s's watch resumed after r%d died" % (w.name, p))
    finally:
        for w in workers:
            w.stop()
    survivor = [i for i in range(c.n) if i != p][0]
    events = history(c, survivor, n)
    lines = [line for w in workers for line in w.lines]
    bad = [line for line in lines
           if "Sanitizer" in line or "runtime error" in line]
    check(not bad, "a worker's sanitizer report: %s" % bad[:5])
    refused = set()
    for line in lines:
        m = re.match(r"^(w\d): refused (jobs/\d+) token (\d+)", line)
        if m:
            refused.add((m.group(1), m.group(2), int(m.group(3))))
    recorded = set()
    for line in lines:
        m = re.match(r"^(w\d): recorded (jobs/\d+) token (\d+)$", line)
        if m:
            recorded.add((m.group(1), m.group(2), int(m.group(3))))
    todo = {}
    done = {}
    for kind, key, value in events:
        check(key in keys, "a write of %s (not a job)" % key)
        check(kind == b"set", "%s %s" % (kind, key))
        if value.startswith("todo "):
            check(key not in todo, "%s submitted twice" % key)
            todo[key] = value
            continue
        m = DONE.match(value)
        check(m, "%s = %r" % (key, value))
        check(key not in done, "%s has two results: %r then %r"
              % (key, done.get(key), value))
        check(key in todo, "%s done before it was submitted" % key)
        who, token, result = m.group(1), int(m.group(2)), int(m.group(3))
        jn = int(key[5:])
        check(result == jn * jn, "%s result %d" % (key, result))
        check((who, key, token) not in refused,
              "%s: the result of %s token %d was written although it "
              "reported it refused" % (key, who, token))
        check(who == "w1" or (who, key, token) in recorded,
              "%s: written by %s token %d, which does not report it"
              % (key, who, token))
        done[key] = (who, token)
    check(len(todo) == n and len(done) == n,
          "%d jobs, %d submitted, %d done" % (n, len(todo), len(done)))
    job, token = stale
    check(done[job][1] > token and done[job] != ("w0", token),
          "%s: done by %s, not by a later token than w0's %d"
          % (job, done[job], token))
    views = [line for line in w2.lines if line.startswith("w2: view ")]
    check(any(" w1" in v for v in views),
          "w2 never showed w1 in the group: %s" % views)
    by = {}
    for who, _ in done.values():
        by[who] = by.get(who, 0) + 1
    return ("%d jobs, each done once (%s); %d refused stale writes; "
            "w0 paused and refused on %s token %d"
            % (n, ", ".join("%s %d" % kv for kv in sorted(by.items())),
               len(refused), job, token))


if __name__ == "__main__":
    cl.run_test("jobrunner", scenario, budget_s=180)
