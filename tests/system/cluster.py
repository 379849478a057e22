"""cluster — start, fault and stop a real cohort cluster on loopback for the
system tests (Python 3 stdlib only).

Each replica is one `cohort server` process started directly (not through
`cohort up`) so the test knows every PID and can SIGKILL, SIGSTOP or restart
exactly one. Everything lives under one temporary directory (data dirs and
per-replica log files) that is removed at the end (set COHORT_TEST_KEEP=1
to keep it). Ports: a free block found by probing, or COHORT_TEST_PORT_BASE
(the first cluster's client ports base..base+n-1, peer ports
base+n..base+2n-1; later blocks above them).

Servers get PR_SET_PDEATHSIG(SIGKILL) so that none outlives the test if the
test process dies (ctest timeout, ^C). That signal fires when the *thread*
that forked dies, so start and restart replicas from the main thread only.

Also here: run_test(), the common main of every test script (summary line,
exit code, watchdog, log dump on failure), and TestFailure.
"""

import ctypes
import os
import random
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.dont_write_bytecode = True

import resp  # noqa: E402

HOST = "127.0.0.1"
# Port blocks are picked below the Linux ephemeral range (32768..60999) so
# that outgoing connections never hold a port a server wants.
PORT_MIN, PORT_MAX = 10000, 32000
SKIP_CODE = 77  # ctest SKIP_RETURN_CODE: the server is not built yet


class TestFailure(Exception):
    """A check failed: the message says what was expected and what happened."""


def check(cond, message):
    if not cond:
        raise TestFailure(message)


RETRYABLE = ("TRYAGAIN", "UNKNOWN")


def retry(c, fn, what, timeout):
    """Run fn() until it returns without a -TRYAGAIN, -UNKNOWN or a lost
    connection (a view change), for at most timeout seconds. (c, the
    cluster, is for the callers' symmetry.)"""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            return fn()
        except resp.RespError as e:
            if e.code not in RETRYABLE:
                raise
            last = e
        except OSError as e:
            last = e
        time.sleep(0.05)
    raise TestFailure("%s: no answer within %.0fs (last: %r)"
                      % (what, timeout, last))


def poll(what, deadline_s, fn, pause=0.05):
    """Call fn until it returns a true value (and return it); fail after
    deadline_s seconds."""
    end = time.monotonic() + deadline_s
    while True:
        v = fn()
        if v:
            return v
        check(time.monotonic() < end, "timed out waiting: %s" % what)
        time.sleep(pause)


def log(msg):
    print("[%7.2fs] %s" % (time.monotonic() - _T0, msg), flush=True)


_T0 = time.monotonic()


# ---- timing ----------------------------------------------------------------

def slowness(binary):
    """A factor for waits: 1 for a release build, more under the sanitizers
    (detected from the binary) or as COHORT_TEST_SLOW says."""
    env = os.environ.get("COHORT_TEST_SLOW")
    if env:
        return max(1.0, float(env))
    try:
        with open(binary, "rb") as f:
            data = f.read(64 << 20)
        if b"__asan_init" in data or b"AddressSanitizer" in data:
            return 4.0
        if b"__tsan_init" in data or b"ThreadSanitizer" in data:
            return 4.0
    except OSError:
        pass
    return 1.0


# ---- ports -----------------------------------------------------------------

def _port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


_next_port = None  # with COHORT_TEST_PORT_BASE: where the next block starts


def pick_ports(count, tries=200):
    """A block of count consecutive free ports on 127.0.0.1. With
    COHORT_TEST_PORT_BASE, the first block starts there and each later one
    (a second cluster, a refused start) at the next free ports above the
    last: one test never gets the same block twice."""
    global _next_port
    base = os.environ.get("COHORT_TEST_PORT_BASE")
    if base:
        b = int(base) if _next_port is None else _next_port
        for _ in range(tries):
            ports = list(range(b, b + count))
            if _next_port is None or all(_port_free(p) for p in ports):
                _next_port = b + count
                return ports
            b += count
        raise TestFailure("no block of %d free ports found above "
                          "COHORT_TEST_PORT_BASE=%s" % (count, base))
    rng = random.Random(os.getpid() ^ int(time.time() * 1000))
    for _ in range(tries):
        b = rng.randrange(PORT_MIN, PORT_MAX - count)
        ports = list(range(b, b + count))
        if all(_port_free(p) for p in ports):
            return ports
    raise TestFailure("no block of %d free ports found in %d..%d"
                      % (count, PORT_MIN, PORT_MAX))


# ---- processes -------------------------------------------------------------

# Resolved here, in the parent: the child (between fork and exec, possibly
# with other threads of ours frozen mid-call) only makes the call.
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None


def _pdeathsig():
    # Runs in the child between fork and exec.
    if _prctl is not None:
        _prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def server_available(binary):
    """(True, "") if `cohort server` is implemented, else (False, why)."""
    if not os.path.exists(binary):
        return False, "%s does not exist (run make build)" % binary
    try:
        p = subprocess.run([binary, "server", "--help"], capture_output=True,
                           timeout=20, text=True)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, "%s server --help: %s" % (binary, e)
    text = (p.stdout + p.stderr).strip()
    if "not implemented" in text:
        return False, text.splitlines()[0] if text else "not implemented"
    return True, ""


_clusters = []  # every Cluster not yet cleaned up, for the watchdog


def write_secret(path, secret=None):
    """A cluster secret file, mode 0600 (64 hex characters)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write((secret or os.urandom(32).hex()) + "\n")


def openssl_available():
    return shutil.which("openssl") is not None


def make_certs(d, cluster_id, n, ca_name="ca"):
    """A CA and, for each replica i, a key and certificate naming it
    (URI cohort://<cluster id>/replica/<i>), made with the openssl command
    in d. Returns {file name: path}. Raises TestFailure if openssl fails."""
    os.makedirs(d, mode=0o700, exist_ok=True)
    files = {}

    def run(*args):
        r = subprocess.run(["openssl"] + list(args), cwd=d,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        check(r.returncode == 0, "openssl %s failed:\n%s"
              % (args[0], r.stdout.decode("utf-8", "replace")))

    ca_key, ca_crt = ca_name + ".key", ca_name + ".crt"
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", ca_key, "-out", ca_crt, "-days", "2",
        "-subj", "/CN=cohort test CA")
    for i in range(n):
        name = "r%d" % i
        uri = "URI:cohort://%s/replica/%d" % (cluster_id, i)
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write("subjectAltName=%s\n" % uri)
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", name + ".key", "-out", name + ".csr",
            "-subj", "/CN=cohort replica %d" % i)
        run("x509", "-req", "-in", name + ".csr", "-CA", ca_crt,
            "-CAkey", ca_key, "-CAcreateserial", "-days", "2",
            "-extfile", name + ".ext", "-out", name + ".crt")
        files[name + ".key"] = os.path.join(d, name + ".key")
        files[name + ".crt"] = os.path.join(d, name + ".crt")
    files["ca.crt"] = os.path.join(d, ca_crt)
    files["ca.key"] = os.path.join(d, ca_key)
    return files


class Cluster:
    """N cohort server processes on loopback with their own temp dir."""

    def __init__(self, binary, n=3, heartbeat_ms=10, suspect_timeout_ms=100,
                 view_change_timeout_ms=200, extra_args=(), name="cluster",
                 metrics=False, peer_auth=None, nofile=None):
        """peer_auth: None (peers on loopback, unauthenticated), "secret"
        (a --cluster-secret-file made here) or "tls" (a CA and a
        certificate per replica made here with the openssl command).
        nofile: the replicas' open files limit (soft and hard), or None
        for the test's own."""
        self.binary = os.path.abspath(binary)
        self.n = n
        self.slow = slowness(binary)
        # Under a sanitizer every turn of the event loop is several times
        # slower, and on a loaded 2-core machine a 100 ms suspicion is
        # then a false one: the failure detector's times scale with the
        # waits, so that no test depends on the scheduler's luck.
        scale = self.slow
        self.timing = ["--heartbeat-ms", str(int(heartbeat_ms * scale)),
                       "--suspect-timeout-ms",
                       str(int(suspect_timeout_ms * scale)),
                       "--view-change-timeout-ms",
                       str(int(view_change_timeout_ms * scale))]
        self.extra_args = list(extra_args)
        self.nofile = nofile
        self.dir = tempfile.mkdtemp(prefix="cohort-%s-" % name)
        self.procs = [None] * n
        self.pids = [None] * n
        # Replicas the test killed or stopped on purpose.
        self.expected_down = set()
        self.paused = set()
        self.starts = [0] * n
        self.client_ports = []
        self.peer_ports = []
        # With metrics=True every replica serves --metrics-port (HTTP).
        self.metrics = metrics
        self.metrics_ports = []
        self._cleaned = False
        _clusters.append(self)
        # COHORT_TEST_NO_PEER_AUTH=1 runs an attack test's cluster without
        # peer authentication, to see the attack succeed (and the test fail)
        # on a build that predates it.
        if os.environ.get("COHORT_TEST_NO_PEER_AUTH"):
            peer_auth = None
        self.peer_auth = peer_auth
        # An explicit cluster id: TLS certificates must name it.
        self.cluster_id = "%016x" % int.from_bytes(os.urandom(8), "little")
        if peer_auth == "secret":
            self.secret_file = os.path.join(self.dir, "cluster.secret")
            write_secret(self.secret_file)
        elif peer_auth == "tls":
            self.certs = make_certs(os.path.join(self.dir, "certs"),
                                    self.cluster_id, n)
        elif peer_auth is not None:
            raise ValueError("peer_auth: None, 'secret' or 'tls'")

    # -- layout

    def data_dir(self, i):
        return os.path.join(self.dir, "r%d" % i)

    def log_path(self, i):
        return os.path.join(self.dir, "r%d.log" % i)

    def wal_dir(self, i):
        return os.path.join(self.data_dir(i), "wal")

    def args(self, i):
        peers = ",".join("%s:%d" % (HOST, p) for p in self.peer_ports)
        clients = ",".join("%s:%d" % (HOST, p) for p in self.client_ports)
        metrics = (["--metrics-port", str(self.metrics_ports[i])]
                   if self.metrics else [])
        return ([self.binary, "server", "--id", str(i), "--peers", peers,
                 "--clients", clients, "--data-dir", self.data_dir(i),
                 "--cluster-id", self.cluster_id]
                + self.auth_args(i) + self.timing + metrics + self.extra_args)

    def auth_args(self, i):
        """Replica i's peer authentication flags."""
        if self.peer_auth == "secret":
            return ["--cluster-secret-file", self.secret_file]
        if self.peer_auth == "tls":
            return ["--peer-tls-cert-file", self.certs["r%d.crt" % i],
                    "--peer-tls-key-file", self.certs["r%d.key" % i],
                    "--peer-tls-ca-cert-file", self.certs["ca.crt"]]
        return []

    # -- start and stop

    def start(self, timeout=None):
        """Start every replica and wait until each answers PING. A port
        taken between the probe and the bind makes it retry on new ports."""
        timeout = timeout or 15 * self.slow
        for attempt in range(3):
            ports = pick_ports((3 if self.metrics else 2) * self.n)
            self.client_ports = ports[:self.n]
            self.peer_ports = ports[self.n:2 * self.n]
            self.metrics_ports = ports[2 * self.n:]
            for i in range(self.n):
                self.start_replica(i)
            try:
                for i in range(self.n):
                    self.wait_ready(i, timeout)
                return
            except TestFailure:
                in_use = any("in use" in self.log_text(i)
                             for i in range(self.n))
                if not in_use or attempt == 2:
                    raise
                log("a port was taken; retrying on new ports")
                self.stop_all()
                for i in range(self.n):
                    shutil.rmtree(self.data_dir(i), ignore_errors=True)
                    if os.path.exists(self.log_path(i)):
                        os.unlink(self.log_path(i))
                    self.starts[i] = 0

    def start_replica(self, i):
        assert threading.current_thread() is threading.main_thread(), \
            "start replicas from the main thread (PDEATHSIG)"
        assert self.procs[i] is None or self.procs[i].poll() is not None
        os.makedirs(self.dir, exist_ok=True)
        self.starts[i] += 1
        with open(self.log_path(i), "ab") as f:
            f.write(b"=== test harness: start %d of replica %d: %s\n"
                    % (self.starts[i], i,
                       " ".join(self.args(i)).encode()))
            f.flush()
            self.procs[i] = subprocess.Popen(
                self.args(i), stdin=subprocess.DEVNULL, stdout=f,
                stderr=subprocess.STDOUT, preexec_fn=self._child_setup,
                close_fds=True)
        self.pids[i] = self.procs[i].pid
        self.expected_down.discard(i)
        self.paused.discard(i)

    def _child_setup(self):
        # Runs in the child between fork and exec.
        _pdeathsig()
        if self.nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE,
                               (self.nofile, self.nofile))

    def restart(self, i, timeout=None, wait=True):
        """Start replica i again on the same data dir (it must be down)."""
        check(not self.alive(i), "restart: replica %d is still running" % i)
        self.start_replica(i)
        if wait:
            self.wait_ready(i, timeout or 15 * self.slow)

    def wait_ready(self, i, timeout):
        """Wait until replica i answers PING (any reply; a recovering
        replica may answer -LOADING)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if not self.alive(i):
                raise TestFailure("replica %d exited (code %s) while "
                                  "starting:\n%s"
                                  % (i, self.procs[i].returncode,
                                     self.log_tail(i)))
            try:
                with self.client(i, timeout=1.0) as c:
                    c.send_raw(resp.encode_command("PING"))
                    last = c.read_reply()
                    return last
            except (OSError, resp.ProtocolError) as e:
                last = e
            time.sleep(0.02)
        raise TestFailure("replica %d did not answer PING on port %d in "
                          "%.0fs (last: %r):\n%s"
                          % (i, self.client_ports[i], timeout, last,
                             self.log_tail(i)))

    def alive(self, i):
        p = self.procs[i]
        return p is not None and p.poll() is None

    def live(self):
        return [i for i in range(self.n) if self.alive(i)]

    def signal(self, i, sig):
        p = self.procs[i]
        check(p is not None and p.poll() is None,
              "replica %d is not running (code %s)"
              % (i, p.returncode if p else None))
        os.kill(p.pid, sig)

    def kill(self, i):
        """SIGKILL replica i and reap it."""
        self.expected_down.add(i)
        if self.alive(i):
            os.kill(self.procs[i].pid, signal.SIGKILL)
        self.procs[i].wait(timeout=10)
        self.paused.discard(i)
        with open(self.log_path(i), "ab") as f:
            f.write(b"=== test harness: SIGKILL replica %d\n" % i)

    def kill_all(self):
        """SIGKILL every replica at (nearly) the same instant."""
        for i in range(self.n):
            self.expected_down.add(i)
            if self.alive(i):
                os.kill(self.procs[i].pid, signal.SIGKILL)
        for i in range(self.n):
            if self.procs[i] is not None:
                self.procs[i].wait(timeout=10)
            self.paused.discard(i)

    def pause(self, i):
        self.signal(i, signal.SIGSTOP)
        self.paused.add(i)

    def resume(self, i):
        self.signal(i, signal.SIGCONT)
        self.paused.discard(i)

    def stop_all(self, grace=None):
        """SIGTERM every live replica (SIGCONT first), SIGKILL any that has
        not exited after grace seconds. Returns {i: exit code} of those that
        were running."""
        grace = grace or 5 * self.slow
        codes = {}
        running = [i for i in range(self.n) if self.alive(i)]
        for i in running:
            self.expected_down.add(i)
            try:
                os.kill(self.procs[i].pid, signal.SIGCONT)
                os.kill(self.procs[i].pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        for i in running:
            try:
                codes[i] = self.procs[i].wait(
                    timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.kill(self.procs[i].pid, signal.SIGKILL)
                codes[i] = "killed after %.0fs (SIGTERM ignored)" % grace
                self.procs[i].wait(timeout=10)
        self.paused.clear()
        return codes

    def finish(self):
        """The end of a passing test: no replica crashed, every running
        replica stops cleanly on SIGTERM (exit 0, or killed by SIGTERM if it
        does not handle it), and no sanitizer report is in the logs."""
        self.check_healthy()
        codes = self.stop_all()
        bad = {i: code for i, code in codes.items()
               if code not in (0, -signal.SIGTERM)}
        check(not bad, "replica(s) did not stop cleanly on SIGTERM (exit "
              "codes %s):\n%s" % (bad, "\n".join(self.log_tail(i)
                                                 for i in bad)))
        self.check_healthy()
        self.cleanup()

    def cleanup(self, keep=False):
        if self._cleaned:
            return
        self._cleaned = True
        for i in range(self.n):
            p = self.procs[i]
            if p is not None and p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                    p.wait(timeout=10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
        if keep or os.environ.get("COHORT_TEST_KEEP"):
            print("kept the test directory %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        if self in _clusters:
            _clusters.remove(self)

    # -- health

    def crashed(self):
        """Replicas that exited without the test asking them to."""
        return [i for i in range(self.n)
                if self.procs[i] is not None and self.procs[i].poll() is not None
                and i not in self.expected_down]

    def sanitizer_reports(self):
        """(replica, line) of every sanitizer or assertion report in logs."""
        marks = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                 "WARNING: ThreadSanitizer", "runtime error:", "ASSERT", "assertion failed",
                 "Assertion", "SUMMARY: ")
        out = []
        for i in range(self.n):
            for line in self.log_text(i).splitlines():
                if any(m in line for m in marks):
                    out.append((i, line))
        return out

    # A test that rolls a data directory back sets this; in every other
    # test a divergence report (docs/PROTOCOL.md, "Divergence") is a false
    # alarm that stopped a replica, and fails it.
    divergence_expected = False

    def check_healthy(self):
        """Fail if a replica crashed, a log holds a sanitizer report, or
        (unless expected) a divergence report."""
        dead = self.crashed()
        check(not dead, "replica(s) %s crashed:\n%s" % (
            dead, "\n".join(self.log_tail(i) for i in dead)))
        reports = self.sanitizer_reports()
        check(not reports, "sanitizer/assertion reports in the logs:\n%s"
              % "\n".join("r%d: %s" % r for r in reports[:20]))
        if not self.divergence_expected:
            false = [(i, ln) for i in range(self.n)
                     for ln in self.log_text(i).splitlines()
                     if "older copy of its data directory" in ln]
            check(not false, "divergence reported with no data directory "
                  "rolled back:\n%s" % "\n".join("r%d: %s" % f
                                                  for f in false[:5]))

    # -- logs

    def log_text(self, i):
        try:
            with open(self.log_path(i), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, i, lines=30):
        text = self.log_text(i).splitlines()
        return "--- r%d.log (last %d lines) ---\n%s" % (
            i, min(lines, len(text)), "\n".join(text[-lines:]))

    def dump_logs(self, lines=40):
        for i in range(self.n):
            print(self.log_tail(i, lines))

    # -- talking to replicas

    def client(self, i, timeout=5.0):
        return resp.connect(self.client_ports[i], timeout=timeout)

    def command(self, i, *args, timeout=5.0):
        with self.client(i, timeout) as c:
            return c.command(*args)

    def info(self, i, section="replication", timeout=2.0):
        """INFO section as a dict of field -> str."""
        text = self.command(i, "INFO", section, timeout=timeout)
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        out = {}
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#") or ":" not in line:
                continue
            k, v = line.split(":", 1)
            out[k] = v
        return out

    def stat_growth(self, i, before, name):
        """How much INFO stats field name grew on replica i since before
        (an earlier self.info(i, "stats"))."""
        return int(self.info(i, "stats")[name]) - int(before[name])

    def infos(self, indices=None, section="replication"):
        """{i: info dict} for the replicas that answer."""
        out = {}
        for i in (self.live() if indices is None else indices):
            if i in self.paused or not self.alive(i):
                continue
            try:
                out[i] = self.info(i, section)
            except (OSError, resp.RespError, resp.ProtocolError):
                pass
        return out

    def find_primary(self):
        """The replica that reports role:primary in the highest view among
        those that answer, or None."""
        best = None
        for i, inf in self.infos().items():
            if inf.get("role") == "primary":
                v = int(inf.get("view", "0"))
                if best is None or v > best[1]:
                    best = (i, v)
        return None if best is None else best[0]

    def backups(self, primary):
        return [i for i in self.live() if i != primary]

    def wait_for_primary(self, timeout=None, probe=True):
        """Wait until a replica is primary (and, with probe, a SET through it
        is acknowledged). Returns (primary index, seconds waited)."""
        timeout = timeout or 20 * self.slow
        t0 = time.monotonic()
        deadline = t0 + timeout
        last = None
        while time.monotonic() < deadline:
            p = self.find_primary()
            if p is not None:
                if not probe:
                    return p, time.monotonic() - t0
                try:
                    r = self.command(p, "SET", "__probe__", str(t0),
                                     timeout=2.0)
                    if r == "OK":
                        return p, time.monotonic() - t0
                    last = r
                except (OSError, resp.RespError, resp.ProtocolError) as e:
                    last = e
            time.sleep(0.02)
        raise TestFailure("no primary within %.0fs (last: %r); roles: %s\n%s"
                          % (timeout, last, self.roles(),
                             "\n".join(self.log_tail(i, 15)
                                       for i in range(self.n))))

    def roles(self):
        return {i: "%s/v%s/op%s/applied%s" % (inf.get("role"), inf.get("view"),
                                             inf.get("op"),
                                             inf.get("applied_op"))
                for i, inf in self.infos().items()}

    def wait_converged(self, indices=None, timeout=None):
        """Wait until the given replicas (default: all live) are in a
        normal view (primary or backup), in the same view, with the same
        applied op. Returns the info dicts."""
        timeout = timeout or 30 * self.slow
        indices = self.live() if indices is None else list(indices)
        deadline = time.monotonic() + timeout
        infos = {}
        while time.monotonic() < deadline:
            infos = self.infos(indices)
            if len(infos) == len(indices):
                roles = [inf.get("role") for inf in infos.values()]
                views = {inf.get("view") for inf in infos.values()}
                applied = {inf.get("applied_op") for inf in infos.values()}
                if (roles.count("primary") == 1
                        and all(r in ("primary", "backup") for r in roles)
                        and len(views) == 1 and len(applied) == 1):
                    return infos
            time.sleep(0.05)
        raise TestFailure(
            "replicas %s did not converge in %.0fs: %s\n%s"
            % (indices, timeout,
               {i: (inf.get("role"), inf.get("view"), inf.get("op"),
                    inf.get("commit_op"), inf.get("applied_op"))
                for i, inf in infos.items()},
               "\n".join(self.log_tail(i, 15) for i in indices)))


# ---- reading back what was written -----------------------------------------

def mget_all(client, keys, batch=500):
    """{key: value or None} via MGET in batches."""
    out = {}
    keys = list(keys)
    for s in range(0, len(keys), batch):
        chunk = keys[s:s + batch]
        vals = client.command("MGET", *chunk)
        check(isinstance(vals, list) and len(vals) == len(chunk),
              "MGET of %d keys returned %r" % (len(chunk), vals))
        for k, v in zip(chunk, vals):
            out[k] = v
    return out


def membership_of(inf):
    """(epoch, voters in order, learners) from an INFO replication dict."""
    head, _, voters = inf.get("epoch", "0,voters=").partition(",voters=")
    _, _, learners = inf.get("learners", "0,ids=").partition(",ids=")
    ids = (lambda s: [int(x) for x in s.split("+") if x])
    return int(head), ids(voters), ids(learners)


def read_all(cluster, i, keys, readonly=False, timeout=10.0, tries=None):
    """MGET every key on replica i (after READONLY if asked: the replica's
    own store), retrying TRYAGAIN/connection errors for a bounded time."""
    deadline = time.monotonic() + (tries or 20 * cluster.slow)
    last = None
    while time.monotonic() < deadline:
        try:
            with cluster.client(i, timeout) as c:
                if readonly:
                    check(c.command("READONLY") == "OK", "READONLY failed")
                return mget_all(c, keys)
        except resp.RespError as e:
            if e.code not in ("TRYAGAIN", "UNKNOWN", "LOADING", "NOQUORUM"):
                raise TestFailure("MGET on replica %d: %s" % (i, e.message))
            last = e
        except (OSError, resp.ProtocolError) as e:
            last = e
        time.sleep(0.05)
    raise TestFailure("could not read back from replica %d: %r" % (i, last))


# ---- the common main of the test scripts -----------------------------------

# ---- the write-ahead log on disk (src/storage/wal.h, log format 3) ----------

WAL_SEGMENT_HEADER = 64
WAL_RECORD_HEADER = 24
WAL_RECORD_TRAILER = 16
WAL_ENTRY_HEADER = 72  # src/common/entry.h
WAL_RECORD_MAGIC = 0x52574F43  # "COWR"


def wal_segments(wal_dir):
    """The segment files of a wal directory, oldest first."""
    if not os.path.isdir(wal_dir):
        return []
    return sorted(os.path.join(wal_dir, n) for n in os.listdir(wal_dir)
                  if n.endswith(".log"))


def wal_records(wal_dir):
    """[(path, offset, op, payload size)] of every record, in op order."""
    out = []
    for path in wal_segments(wal_dir):
        with open(path, "rb") as f:
            data = f.read()
        off = WAL_SEGMENT_HEADER
        while off + WAL_RECORD_HEADER <= len(data):
            magic, _crc, size, _flags, op = struct.unpack_from(
                "<IIIIQ", data, off)
            if magic != WAL_RECORD_MAGIC or size == 0 or \
                    off + WAL_RECORD_HEADER + size > len(data):
                break
            out.append((path, off, op, size))
            off += ((WAL_RECORD_HEADER + size + 7) & ~7) + WAL_RECORD_TRAILER
    return out


def binary_from_argv():
    if len(sys.argv) > 1:
        return sys.argv[1]
    if os.environ.get("COHORT_BIN"):
        return os.environ["COHORT_BIN"]
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "..", "..", "build", "cohort")


def run_test(name, fn, budget_s=60, needs_server=True):
    """Run fn(binary) -> summary text; print one summary line; exit 0 on
    success, 1 on failure, 77 (skip) if the server is not built yet.
    A watchdog ends the test after budget_s (times the sanitizer factor)."""
    binary = binary_from_argv()
    if needs_server:
        ok, why = server_available(binary)
        if not ok:
            print("SKIP %s: cohort server not available: %s" % (name, why))
            sys.exit(SKIP_CODE)
    budget = budget_s * slowness(binary)
    t0 = time.monotonic()

    def watchdog():
        print("FAIL %s: did not finish within %.0fs (watchdog)"
              % (name, budget), flush=True)
        for c in list(_clusters):
            try:
                c.dump_logs(20)
                c.cleanup()
            except Exception:
                pass
        os._exit(1)

    def on_term(signum, frame):
        raise SystemExit("FAIL %s: stopped by signal %d" % (name, signum))

    signal.signal(signal.SIGTERM, on_term)
    timer = threading.Timer(budget, watchdog)
    timer.daemon = True
    timer.start()
    code = 1
    try:
        summary = fn(binary)
        for c in list(_clusters):
            c.finish()
        print("PASS %s: %s (%.1fs)" % (name, summary, time.monotonic() - t0),
              flush=True)
        code = 0
    except TestFailure as e:
        print("failure: %s" % e, flush=True)
        for c in list(_clusters):
            c.dump_logs(40)
        first = str(e).splitlines()[0] if str(e) else "check failed"
        print("FAIL %s: %s (%.1fs)" % (name, first, time.monotonic() - t0),
              flush=True)
    except Exception:
        traceback.print_exc()
        for c in list(_clusters):
            c.dump_logs(40)
        print("FAIL %s: unexpected %s: %s (%.1fs)"
              % (name, sys.exc_info()[0].__name__,
                 str(sys.exc_info()[1]).splitlines()[0]
                 if str(sys.exc_info()[1]) else "",
                 time.monotonic() - t0), flush=True)
    finally:
        timer.cancel()
        for c in list(_clusters):
            c.cleanup(keep=(code != 0 and bool(os.environ.get(
                "COHORT_TEST_KEEP_ON_FAIL"))))
    sys.stdout.flush()
    sys.exit(code)
