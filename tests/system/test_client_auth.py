#!/usr/bin/env python3
"""test_client_auth — passwords, ACL users and protected mode (issue 17,
item 3).

Cluster 1, every replica with --requirepass:
  - on every member: a command before AUTH gets -NOAUTH, AUTH with a wrong
    password -WRONGPASS (HELLO 3 AUTH too), the right one +OK; then SET
    and GET work (through the backups: forwarded);
  - ACL SETUSER through a backup makes user "writer" (+@read +@write,
    keys ~app:*) and "reader" (+@read, every key); ACL LIST and ACL USERS
    on every member show them (users are replicated state);
  - on every member: writer may SET app:* (forwarded from the backups) and
    is refused a key outside its pattern and INFO / ACL LIST (admin);
    reader may GET and is refused SET ('set' command);
  - a replica restarted keeps the users (the log and snapshots hold them);
  - ACL DELUSER writer: AUTH as writer then fails on every member.
Cluster 2, no password, bound to a non-loopback address of this machine
(skipped without one):
  - a client from that address gets Redis's -DENIED protected-mode text,
    a loopback client is served, and SET through a backup works (the
    forward links come from the non-loopback address and prove themselves);
  - after ACL SETUSER default >pw (from loopback) the outside client gets
    -NOAUTH instead, and AUTH lets it in.

usage: test_client_auth.py [path/to/cohort]
"""

import socket
import sys
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402

PASSWORD = "s3cret-pw"


def command(x, *args, timeout=20.0):
    """x.command(*args), again while it answers -TRYAGAIN (a view change
    under a loaded machine); other errors are raised."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return x.command(*args)
        except resp.RespError as e:
            if not str(e).startswith("TRYAGAIN") or \
                    time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def error_of(c, *args):
    """The error text c's command answers ("" if it succeeded)."""
    try:
        command(c, *args)
        return ""
    except resp.RespError as e:
        return str(e)


class AuthCluster(cl.Cluster):
    """A cluster whose helper connections AUTH first."""

    password = PASSWORD

    def client(self, i, timeout=5.0):
        c = resp.connect(self.client_ports[i], timeout=timeout)
        c.command("AUTH", self.password)
        return c


def until(what, fn, timeout):
    """Call fn until it returns a true value (or raise after timeout)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except (OSError, resp.RespError) as e:
            last = e
        time.sleep(0.05)
    raise cl.TestFailure("%s: not within %.0fs (last: %r)"
                         % (what, timeout, last))


def check_password(c, members):
    for i in members:
        with resp.connect(c.client_ports[i]) as x:
            e = error_of(x, "GET", "k")
            check(e.startswith("NOAUTH"), "replica %d: GET before AUTH "
                  "answered %r, not -NOAUTH" % (i, e))
            e = error_of(x, "AUTH", "not-the-password")
            check(e.startswith("WRONGPASS"), "replica %d: a wrong password "
                  "answered %r, not -WRONGPASS" % (i, e))
            e = error_of(x, "HELLO", "3", "AUTH", "default", "nope")
            check(e.startswith("WRONGPASS"), "replica %d: HELLO AUTH with a "
                  "wrong password answered %r" % (i, e))
            check(command(x, "AUTH", PASSWORD) == "OK",
                  "replica %d: AUTH with the password failed" % i)
            check(command(x, "ACL", "WHOAMI") == b"default",
                  "replica %d: ACL WHOAMI is not default" % i)
            check(command(x, "SET", "pw:%d" % i, "v%d" % i) == "OK",
                  "replica %d: SET after AUTH failed" % i)
            check(command(x, "GET", "pw:%d" % i) == b"v%d" % i,
                  "replica %d: GET after AUTH failed" % i)


def login(c, i, user, password, timeout):
    """A connection to replica i as user (the member may apply a new user
    a moment after the write was acknowledged elsewhere)."""
    def attempt():
        x = resp.connect(c.client_ports[i])
        try:
            command(x, "AUTH", user, password)
            return x
        except resp.RespError:
            x.close()
            raise
    return until("AUTH %s on replica %d" % (user, i), attempt, timeout)


def check_users(c, primary, members):
    slow = c.slow
    backup = [i for i in members if i != primary][0]
    with c.client(backup) as x:
        check(command(x, "ACL", "SETUSER", "writer", "on", ">wpw", "~app:*",
                        "+@read", "+@write") == "OK",
              "ACL SETUSER writer through backup %d failed" % backup)
        check(command(x, "ACL", "SETUSER", "reader", "on", ">rpw", "allkeys",
                        "+@read") == "OK", "ACL SETUSER reader failed")
        e = error_of(x, "ACL", "SETUSER", "bad", "+nosuchcommand")
        check("Unknown command" in e, "a rule naming no command answered %r"
              % e)
    for i in members:
        with c.client(i) as x:
            users = until("replica %d lists the users" % i,
                          lambda: command(x, "ACL", "USERS") if b"writer" in
                          command(x, "ACL", "USERS") else None, 10 * slow)
            check(sorted(users) == [b"default", b"reader", b"writer"],
                  "replica %d: ACL USERS is %r" % (i, users))
            rules = [r for r in command(x, "ACL", "LIST")
                     if r.startswith(b"user writer ")]
            check(rules and b"~app:*" in rules[0] and b"+@write" in rules[0]
                  and b"wpw" not in rules[0],
                  "replica %d: ACL LIST shows writer as %r" % (i, rules))
    for i in members:
        with login(c, i, "writer", "wpw", 10 * slow) as x:
            check(command(x, "SET", "app:%d" % i, "w") == "OK",
                  "replica %d: writer's SET app:%d failed" % (i, i))
            check(command(x, "GET", "app:%d" % i) == b"w",
                  "replica %d: writer's GET failed" % i)
            e = error_of(x, "SET", "other:%d" % i, "w")
            check(e.startswith("NOPERM") and "key" in e,
                  "replica %d: writer's SET outside ~app:* answered %r"
                  % (i, e))
            e = error_of(x, "MSET", "app:x", "1", "other:x", "2")
            check(e.startswith("NOPERM"), "replica %d: MSET with one key "
                  "outside the pattern answered %r" % (i, e))
            e = error_of(x, "INFO")
            check(e.startswith("NOPERM") and "'info'" in e,
                  "replica %d: writer's INFO answered %r" % (i, e))
            e = error_of(x, "ACL", "SETUSER", "writer", "allkeys")
            check(e.startswith("NOPERM"), "replica %d: writer changed its "
                  "own rules: %r" % (i, e))
        with login(c, i, "reader", "rpw", 10 * slow) as x:
            check(command(x, "GET", "app:%d" % i) == b"w",
                  "replica %d: reader's GET failed" % i)
            e = error_of(x, "SET", "app:%d" % i, "r")
            check(e.startswith("NOPERM") and "'set'" in e,
                  "replica %d: reader's SET answered %r" % (i, e))
    with c.client(primary) as x:
        check(command(x, "MGET", "other:0", "other:1", "other:2")
              == [None, None, None], "a refused SET took effect")


def check_restart_keeps_users(c, primary):
    r = [i for i in c.live() if i != primary][-1]
    c.kill(r)
    c.restart(r)
    with login(c, r, "writer", "wpw", 20 * c.slow) as x:
        check(command(x, "GET", "app:0") == b"w",
              "writer's GET after replica %d restarted failed" % r)


def check_deluser(c, members):
    with c.client(members[0]) as x:
        check(command(x, "ACL", "DELUSER", "writer", "nosuch") == 1,
              "ACL DELUSER did not count one user removed")
        e = error_of(x, "ACL", "DELUSER", "default")
        check("cannot be removed" in e, "ACL DELUSER default answered %r" % e)
    for i in members:
        def refused():
            with resp.connect(c.client_ports[i]) as x:
                return error_of(x, "AUTH", "writer", "wpw").startswith(
                    "WRONGPASS")
        until("replica %d refuses the deleted user" % i, refused,
              10 * c.slow)


def run_password(binary):
    c = AuthCluster(binary, extra_args=["--requirepass", PASSWORD],
                    name="auth")
    c.start()
    primary, _ = c.wait_for_primary()
    c.wait_converged()
    members = list(range(c.n))
    check_password(c, members)
    log("password: NOAUTH, WRONGPASS and OK on each of %d members"
        % len(members))
    check_users(c, primary, members)
    log("ACL users: category and key pattern checks on every member")
    check_restart_keeps_users(c, primary)
    c.wait_for_primary()
    c.wait_converged()
    check_deluser(c, members)
    c.stop_all()
    c.cleanup()


def outside_address():
    """A non-loopback IPv4 address of this machine, or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # no packet is sent
        addr = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if addr.startswith("127.") else addr


class OutsideCluster(cl.Cluster):
    """A cluster bound to a non-loopback address; helper connections come
    from loopback (protected mode lets them in)."""

    host = None

    def args(self, i):
        a = super().args(i)
        for k in ("--peers", "--clients"):
            at = a.index(k) + 1
            a[at] = a[at].replace(cl.HOST, self.host)
        return a

    def client(self, i, timeout=5.0):
        return outside_client(self.host, self.client_ports[i], timeout,
                              source=cl.HOST)

    def wait_ready(self, i, timeout):
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.client(i, 1.0) as x:
                    x.send_raw(resp.encode_command("PING"))
                    return x.read_reply()
            except OSError:
                if time.monotonic() > deadline or not self.alive(i):
                    raise cl.TestFailure("replica %d did not start:\n%s"
                                         % (i, self.log_tail(i)))
                time.sleep(0.05)


def outside_client(host, port, timeout=5.0, source=None):
    x = resp.Client.__new__(resp.Client)
    x.host, x.port, x.timeout = host, port, timeout
    x.sock = socket.create_connection(
        (host, port), timeout=timeout,
        source_address=(source or host, 0))
    x.buf, x.pos = bytearray(), 0
    return x


def first_reply(host, port):
    with outside_client(host, port) as x:
        x.send_raw(resp.encode_command("PING"))
        r = x.read_reply()
        return str(r) if isinstance(r, resp.RespError) else r


def run_protected(binary, host):
    OutsideCluster.host = host
    # Peers on a non-loopback address must authenticate (peer protocol 3).
    c = OutsideCluster(binary, name="protected", peer_auth="secret")
    c.start()
    c.wait_for_primary()
    primary = c.find_primary()
    c.wait_converged()
    for i in range(c.n):
        r = first_reply(host, c.client_ports[i])
        check(isinstance(r, str) and r.startswith("DENIED") and
              "protected mode" in r, "replica %d: a client from %s was "
              "answered %r, not -DENIED" % (i, host, r))
        with c.client(i) as x:
            check(command(x, "PING") == "PONG", "replica %d: a loopback "
                  "client was not served" % i)
            check(command(x, "SET", "pm:%d" % i, "v") == "OK",
                  "replica %d: SET from loopback failed (forward link from "
                  "%s refused?)" % (i, host))
    log("protected mode: -DENIED from %s on every member, loopback served"
        % host)
    with c.client(primary) as x:
        check(command(x, "ACL", "SETUSER", "default", ">pw") == "OK",
              "ACL SETUSER default >pw failed")
    for i in range(c.n):
        until("replica %d asks %s for a password" % (i, host),
              lambda: first_reply(host, c.client_ports[i]).startswith(
                  "NOAUTH"), 10 * c.slow)
        with outside_client(host, c.client_ports[i]) as x:
            check(command(x, "AUTH", "pw") == "OK", "AUTH from outside failed")
            check(command(x, "GET", "pm:%d" % i) == b"v",
                  "replica %d: GET from outside after AUTH failed" % i)
    c.stop_all()
    c.cleanup()


def run(binary):
    run_password(binary)
    host = outside_address()
    if host is None:
        log("no non-loopback address: protected mode not tested")
        return "password and ACL users on 3 members (protected mode skipped)"
    run_protected(binary, host)
    return ("password, ACL users (category, key pattern, forwarded, "
            "restart, DELUSER) and protected mode on 3 members")


if __name__ == "__main__":
    cl.run_test("client_auth", run, budget_s=150)
