#!/usr/bin/env python3
"""test_redis_py — what a Python application does with redis-py (Debian's
python3-redis), unchanged, against cohort, through a failover (issue 13):

  1. pipeline(transaction=True): MULTI ... EXEC through a backup (which
     forwards it), the replies as redis-py returns them;
  2. the optimistic-lock recipe (redis-py's documented WATCH loop,
     pipe.watch / pipe.multi / pipe.execute): 4 threads increment one
     counter 25 times each through different members; conflicts raise
     WatchError and are retried; the counter ends at exactly 100;
  3. pubsub(): a subscriber on a backup receives a message published
     through another member;
  4. the primary is SIGKILLed; redis-py clients on the survivors (on
     ConnectionError or TRYAGAIN they retry, as an application would)
     run the same transaction, WATCH loop and pub/sub again: the
     counter ends at exactly 200, the subscriber gets the message.

usage: test_redis_py.py [path/to/cohort]
"""

import os
import sys
import threading
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
from cluster import check, log  # noqa: E402

try:
    import redis
except ImportError:
    # Debian's python3-redis lives in the system Python.
    if (os.path.exists("/usr/bin/python3") and
            not os.environ.get("COHORT_REDIS_PY_REEXEC")):
        os.environ["COHORT_REDIS_PY_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    redis = None

RETRYABLE = None  # set once redis is imported


def client(c, i):
    return redis.Redis(host="127.0.0.1", port=c.client_ports[i],
                       socket_timeout=10 * c.slow)


def patiently(c, what, fn):
    """fn() until it does not fail with a connection error or -TRYAGAIN
    (a view change): what an application does around a failover."""
    deadline = time.monotonic() + 30 * c.slow
    while True:
        try:
            return fn()
        except RETRYABLE as e:
            if isinstance(e, redis.ResponseError) and \
                    not str(e).startswith("TRYAGAIN"):
                raise
            check(time.monotonic() < deadline, "%s: still failing: %s"
                  % (what, e))
            time.sleep(0.05)


def transaction(c, i, tag):
    r = client(c, i)

    def run():
        pipe = r.pipeline(transaction=True)
        pipe.set("tx:%s:a" % tag, "1")
        pipe.incr("tx:%s:n" % tag)
        pipe.get("tx:%s:a" % tag)
        return pipe.execute()
    got = patiently(c, "pipeline(transaction=True) on r%d" % i, run)
    check(got[0] is True and got[1] >= 1 and got[2] == b"1",
          "pipeline(transaction=True) on r%d: %r" % (i, got))


def watch_loop(c, members, key, per_thread):
    """redis-py's optimistic increment, from len(members) threads."""
    conflicts = [0]
    errors = []

    def worker(i):
        r = client(c, i)
        try:
            for _ in range(per_thread):
                while True:
                    def attempt():
                        with r.pipeline() as pipe:
                            try:
                                pipe.watch(key)
                                v = int(pipe.get(key) or 0)
                                pipe.multi()
                                pipe.set(key, v + 1)
                                pipe.execute()
                                return True
                            except redis.WatchError:
                                conflicts[0] += 1
                                return False
                    if patiently(c, "WATCH loop on r%d" % i, attempt):
                        break
        except Exception as e:  # reported below
            errors.append("r%d: %r" % (i, e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in members]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120 * c.slow)
    check(not errors, "WATCH loop: %s" % errors)
    return conflicts[0]


def pubsub(c, sub_i, pub_i, channel):
    ps = client(c, sub_i).pubsub()
    ps.subscribe(channel)
    deadline = time.monotonic() + 10 * c.slow
    m = None
    while time.monotonic() < deadline and m is None:
        m = ps.get_message(timeout=1.0)
    check(m is not None and m["type"] == "subscribe", "subscribe: %r" % m)
    patiently(c, "publish through r%d" % pub_i,
              lambda: client(c, pub_i).publish(channel, "hello"))
    deadline = time.monotonic() + 10 * c.slow
    m = None
    while time.monotonic() < deadline and m is None:
        m = ps.get_message(timeout=1.0)
    check(m is not None and m["type"] == "message" and
          m["data"] == b"hello", "message on r%d: %r" % (sub_i, m))
    ps.close()


def counter(c, key):
    p, _ = c.wait_for_primary()
    return int(client(c, p).get(key))


def scenario(binary):
    global RETRYABLE
    if redis is None:
        check(os.environ.get("CI") != "true", "redis-py (python3-redis) is "
              "missing on CI: scripts/deps.sh installs it")
        print("SKIP redis_py: no python3 with the redis module "
              "(apt-get install python3-redis)")
        sys.exit(cl.SKIP_CODE)
    RETRYABLE = (redis.ConnectionError, redis.TimeoutError,
                 redis.ResponseError)
    c = cl.Cluster(binary, n=3, name="redis-py")
    c.start()
    p, _ = c.wait_for_primary()
    b = c.backups(p)
    transaction(c, b[0], "before")
    before = watch_loop(c, [p, b[0], b[1], b[0]], "ctr", 25)
    check(counter(c, "ctr") == 100, "counter %d after 100 WATCH increments"
          % counter(c, "ctr"))
    pubsub(c, b[1], p, "news")
    log("before the failover: transaction through r%d, 100 WATCH "
        "increments from 4 threads (%d conflicts retried), pub/sub"
        % (b[0], before))
    c.kill(p)
    q, waited = c.wait_for_primary()
    log("killed the primary r%d; r%d took over after %.2fs" % (p, q, waited))
    live = c.live()
    other = [i for i in live if i != q][0]
    transaction(c, other, "after")
    after = watch_loop(c, [q, other, other, q], "ctr", 25)
    value = counter(c, "ctr")
    check(value == 200, "counter %d after 200 WATCH increments" % value)
    pubsub(c, other, q, "news2")
    c.restart(p)
    c.wait_converged()
    return ("redis-py pipeline(transaction=True), WATCH loop (200 "
            "increments, %d conflicts retried, counter exact) and pubsub "
            "through backups, before and after a primary kill"
            % (before + after))


if __name__ == "__main__":
    cl.run_test("redis_py", scenario, budget_s=240)
