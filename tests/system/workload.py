"""workload — client load for the system tests, with a record of what the
cluster acknowledged.

Writers: several threads, each writing unique keys "<prefix><thread>:<seq>"
with a unique value, one after the other. A write is retried (the same key
and value, so a retry is harmless) on -TRYAGAIN, -UNKNOWN, other "not now"
errors, timeouts and connection errors, against the next replica, until it
is acknowledged (+OK) or the load stops. `acked` holds every acknowledged
write: each must be readable afterwards. `attempted` holds every write ever
sent: a key not acknowledged may hold its value or nothing, never anything
else.

Incrementer: one thread that sends `COHORT.REQ <id> <n> INCR <key>` for n =
1, 2, ... retrying request n (same id and number) until it is answered. With
exactly-once semantics the reply to request n is n, and the counter ends at
the last acknowledged n (or one more, if the last request was applied but
its reply was lost).
"""

import random
import threading
import time

import resp

# Errors that say "not now": retry (elsewhere). UNKNOWN: may have applied;
# our retries are idempotent (same key, same value; same request number).
# REMOVED: the member was removed from the group; another one answers.
RETRY_CODES = {"TRYAGAIN", "UNKNOWN", "NOQUORUM", "LOADING", "READONLY",
               "MOVED", "CLUSTERDOWN", "BUSY", "MASTERDOWN", "REMOVED"}


class _Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.errors = {}        # kind -> count
        self.samples = {}       # kind -> the first few messages
        self.texts = []         # every error message counted
        self.unexpected = []    # (what, detail), bounded

    def count(self, kind, message=None):
        with self.lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1
            if message is not None and len(self.texts) < 100000:
                self.texts.append(message)
            seen = self.samples.setdefault(kind, [])
            if message is not None and len(seen) < 3 and message not in seen:
                seen.append(message)

    def bad(self, what, detail):
        with self.lock:
            if len(self.unexpected) < 50:
                self.unexpected.append((what, detail))


class _Conn:
    """A connection that moves to the next replica after an error."""

    def __init__(self, cluster, start, timeout):
        self.cluster = cluster
        self.target = start % cluster.n
        self.timeout = timeout
        self.c = None

    def command(self, *args):
        if self.c is None:
            self.c = self.cluster.client(self.target, timeout=self.timeout)
        return self.c.command(*args)

    def rotate(self):
        if self.c is not None:
            self.c.close()
            self.c = None
        self.target = (self.target + 1) % self.cluster.n

    def close(self):
        if self.c is not None:
            self.c.close()
            self.c = None


class Writers:
    def __init__(self, cluster, threads=4, prefix="w", value_size=24,
                 op_timeout=None, max_writes_per_thread=1000000):
        self.cluster = cluster
        self.threads = threads
        self.prefix = prefix
        self.value_size = value_size
        self.op_timeout = op_timeout or 1.0 * cluster.slow
        self.max_writes = max_writes_per_thread
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.acked = {}       # key -> value
        self.attempted = {}   # key -> value
        self.acks = []        # (send time of the acked attempt, ack time)
        self.stats = _Stats()
        self._threads = []

    def start(self):
        for t in range(self.threads):
            th = threading.Thread(target=self._run, args=(t,), daemon=True,
                                  name="writer-%d" % t)
            th.start()
            self._threads.append(th)
        return self

    def stop(self, timeout=None):
        self.stop_event.set()
        timeout = timeout or 10 * self.cluster.slow
        deadline = time.monotonic() + timeout
        for th in self._threads:
            th.join(max(0.1, deadline - time.monotonic()))
        alive = [th.name for th in self._threads if th.is_alive()]
        if alive:
            raise RuntimeError("writer threads did not stop: %s" % alive)

    def ack_count(self):
        with self.lock:
            return len(self.acked)

    def wait_acks(self, count, timeout):
        """Wait until at least count writes are acknowledged in total."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ack_count() >= count:
                return True
            time.sleep(0.01)
        return False

    def first_ack_after(self, t):
        """The first ack time of an attempt sent at or after t, or None."""
        with self.lock:
            times = [a for s, a in self.acks if s >= t]
        return min(times) if times else None

    def longest_gap(self, since, until):
        """The longest time without any acknowledgement in [since, until]."""
        with self.lock:
            times = sorted(a for _, a in self.acks if since <= a <= until)
        points = [since] + times + [until]
        return max(b - a for a, b in zip(points, points[1:]))

    def _run(self, t):
        rng = random.Random(t * 7919 + int(time.time() * 1000))
        conn = _Conn(self.cluster, t, self.op_timeout)
        try:
            for seq in range(self.max_writes):
                if self.stop_event.is_set():
                    return
                key = "%s%d:%d" % (self.prefix, t, seq)
                pad = "%x" % rng.getrandbits(64)
                value = ("%d:%d:%s" % (t, seq, pad)).ljust(
                    self.value_size, "x")
                with self.lock:
                    self.attempted[key] = value
                while not self.stop_event.is_set():
                    sent = time.monotonic()
                    try:
                        r = conn.command("SET", key, value)
                    except resp.RespError as e:
                        self.stats.count(e.code or "error", str(e))
                        if e.code not in RETRY_CODES:
                            self.stats.bad("SET %s" % key, e.message)
                        conn.rotate()
                        time.sleep(0.005)
                        continue
                    except (OSError, resp.ProtocolError) as e:
                        self.stats.count(type(e).__name__)
                        conn.rotate()
                        time.sleep(0.01)
                        continue
                    if r != "OK":
                        self.stats.bad("SET %s" % key, repr(r))
                        conn.rotate()
                        continue
                    now = time.monotonic()
                    with self.lock:
                        self.acked[key] = value
                        self.acks.append((sent, now))
                    break
        finally:
            conn.close()

    def summary(self):
        return "%d acked of %d attempted, errors %s" % (
            len(self.acked), len(self.attempted),
            dict(sorted(self.stats.errors.items())) or "none")


class Incrementer:
    def __init__(self, cluster, key="ctr", op_timeout=None, start=1):
        self.cluster = cluster
        self.client_id = random.randrange(1, 1 << 62)
        self.key = "%s:%d" % (key, self.client_id)
        self.op_timeout = op_timeout or 1.0 * cluster.slow
        self.stop_event = threading.Event()
        self.last_acked = 0
        self.pending = None    # request number sent but not answered
        self.violations = []
        self.stats = _Stats()
        self.session_lost = None
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="incrementer")
        self._thread.start()
        return self

    def stop(self, timeout=None):
        self.stop_event.set()
        self._thread.join(timeout or 10 * self.cluster.slow)
        if self._thread.is_alive():
            raise RuntimeError("incrementer thread did not stop")

    def _run(self):
        conn = _Conn(self.cluster, random.randrange(self.cluster.n),
                     self.op_timeout)
        n = 1
        try:
            while not self.stop_event.is_set():
                self.pending = n
                try:
                    r = conn.command("COHORT.REQ", self.client_id, n,
                                     "INCR", self.key)
                except resp.RespError as e:
                    self.stats.count(e.code or "error", str(e))
                    if e.code in RETRY_CODES:
                        conn.rotate()
                        time.sleep(0.005)
                        continue
                    # Anything else ends this client: a session the table
                    # forgot is reported, not a violation by itself.
                    self.session_lost = e.message
                    return
                except (OSError, resp.ProtocolError) as e:
                    self.stats.count(type(e).__name__)
                    conn.rotate()
                    time.sleep(0.01)
                    continue
                if r != n:
                    self.violations.append(
                        "request %d of client %d: INCR replied %r, want %d "
                        "(applied twice, lost, or out of order)"
                        % (n, self.client_id, r, n))
                    return
                self.last_acked = n
                self.pending = None
                n += 1
        finally:
            conn.close()

    def check_final(self, value):
        """Check the counter's final value (bytes or None) read back."""
        v = 0 if value is None else int(value)
        allowed = {self.last_acked}
        if self.pending is not None:
            allowed.add(self.pending)
        if v not in allowed:
            return ("counter %s is %d after %d acknowledged increments "
                    "(pending: %s): exactly-once violated"
                    % (self.key, v, self.last_acked, self.pending))
        return None


def verify_writes(cluster, writers, replica, readonly=False, label=None):
    """Read back every attempted key on replica (linearizable, or its own
    store with readonly) and return a list of problems: acknowledged writes
    missing or changed, and keys holding a value never written."""
    import cluster as cl  # late: cluster imports resp only
    with writers.lock:
        acked = dict(writers.acked)
        attempted = dict(writers.attempted)
    got = cl.read_all(cluster, replica, sorted(attempted), readonly=readonly)
    label = label or "replica %d%s" % (replica, " READONLY" if readonly else "")
    problems = []
    lost = [k for k, v in acked.items() if got.get(k) != v.encode()]
    for k in lost[:10]:
        problems.append("%s: acknowledged %s=%s reads back %r"
                        % (label, k, acked[k], got.get(k)))
    if len(lost) > 10:
        problems.append("%s: ... %d acknowledged writes lost in all"
                        % (label, len(lost)))
    wrong = [k for k, v in attempted.items()
             if k not in acked and got.get(k) not in (None, v.encode())]
    for k in wrong[:10]:
        problems.append("%s: %s holds %r, which was never written"
                        % (label, k, got.get(k)))
    return problems


def stop_and_check(writers, inc, t_begin, t_end, retried_codes, what):
    """Stop the writers and the incrementer; fail the test on an unexpected
    reply, a lost session, an exactly-once violation or an error outside
    retried_codes. Returns (retried count, the longest ack gap in s)."""
    from cluster import check, log  # late: cluster imports resp only
    writers.stop()
    inc.stop()
    gap = writers.longest_gap(t_begin, t_end)
    errors = dict(writers.stats.errors)
    for k, v in inc.stats.errors.items():
        errors[k] = errors.get(k, 0) + v
    retried = sum(errors.pop(k, 0) for k in retried_codes)
    log("load: %s; incrementer at %d; errors other than %s: %s"
        % (writers.summary(), inc.last_acked, "/".join(retried_codes),
           errors or "none"))
    for stats in (writers.stats, inc.stats):
        for kind, texts in sorted(stats.samples.items()):
            for text in texts:
                log("  %s: %s" % (kind, text))
    check(not writers.stats.unexpected, "unexpected replies: %s"
          % writers.stats.unexpected[:5])
    check(inc.session_lost is None, "incrementer: %s" % inc.session_lost)
    check(not inc.violations, "; ".join(inc.violations))
    check(sum(errors.values()) == 0, "%d requests failed during %s: %s"
          % (sum(errors.values()), what, errors))
    return retried, gap


def check_writes_and_counter(cluster, writers, inc, replicas):
    """Every acknowledged write reads back on each of replicas, and the
    incrementer's counter (read at the primary) is exact."""
    import cluster as cl  # late: cluster imports resp only
    problems = []
    for i in replicas:
        problems += verify_writes(cluster, writers, i)
    cl.check(not problems, "lost or wrong writes:\n  " +
             "\n  ".join(problems[:30]))
    got = cl.read_all(cluster, cluster.find_primary(), [inc.key])[inc.key]
    err = inc.check_final(got)
    cl.check(err is None, err or "")
