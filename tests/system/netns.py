"""netns — a cohort group in network namespaces of its own, so that a test
can cut a member off the network (a real partition: packets vanish, as
when a cable is pulled or a switch port dies) instead of only killing or
freezing its process.

Layout, all made by the test and removed at the end (`ip netns del`):

    hub namespace   a bridge with 10.231.0.100/24; the test process itself
                    moves here (setns on its main thread before it starts
                    any other thread or process), so its clients and the
                    tools it starts reach the members as remote clients do
    r<i> namespace  one per member: eth0 (a veth whose other end is on the
                    hub's bridge) with 10.231.0.<i+1>/24, and lo; the member
                    runs here (`ip netns exec`) and binds its client and
                    peer ports to that address

Partitions are iptables DROP rules on eth0 inside a member's namespace
(INPUT and OUTPUT), so the member's own loopback keeps working: a client
started inside the namespace (`in_ns()`) still reaches the cut-off member,
which is how a test shows that an isolated primary acknowledges nothing.

Needs root, iproute2 and iptables (scripts/deps.sh installs both);
`available()` says why not, and the test skips.

The names carry the test's pid, so parallel tests do not collide; the
root namespace gets nothing but the namespaces' names in /run/netns while
the test runs (the veths are made there and moved out at once).
"""

import ctypes
import os
import shutil
import subprocess

import cluster as cl
from cluster import check, log

SUBNET = "10.231.0"
CLONE_NEWNET = 0x40000000


def available():
    """(True, "") or (False, why) for a skip line."""
    if os.geteuid() != 0:
        return False, "needs root for network namespaces"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return False, "no %s command (scripts/deps.sh installs it)" % tool
    return True, ""


def _run(*args):
    p = subprocess.run(list(args), capture_output=True, text=True,
                       timeout=30)
    check(p.returncode == 0, "%s: rc %d: %s"
          % (" ".join(args), p.returncode, p.stderr.strip()))
    return p.stdout


class Namespaces:
    """The hub and n member namespaces (see the module comment)."""

    def __init__(self, n):
        self.n = n
        tag = "coh%d" % os.getpid()
        self.hub = tag + "h"
        self.members = ["%sr%d" % (tag, i) for i in range(n)]
        self.made = []
        self.cut = set()

    def address(self, i):
        return "%s.%d" % (SUBNET, i + 1)

    def create(self):
        _run("ip", "netns", "add", self.hub)
        self.made.append(self.hub)
        _run("ip", "-n", self.hub, "link", "set", "lo", "up")
        _run("ip", "-n", self.hub, "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", self.hub, "addr", "add", SUBNET + ".100/24", "dev",
             "br0")
        _run("ip", "-n", self.hub, "link", "set", "br0", "up")
        for i, ns in enumerate(self.members):
            _run("ip", "netns", "add", ns)
            self.made.append(ns)
            # Made in the root namespace under names unique to this test,
            # then each end moved out at once.
            a, b = "%sa%d" % (ns[:8], i), "%sb%d" % (ns[:8], i)
            _run("ip", "link", "add", a, "type", "veth", "peer", "name", b)
            _run("ip", "link", "set", a, "netns", ns)
            _run("ip", "link", "set", b, "netns", self.hub)
            _run("ip", "-n", ns, "link", "set", a, "name", "eth0")
            _run("ip", "-n", ns, "addr", "add", self.address(i) + "/24",
                 "dev", "eth0")
            _run("ip", "-n", ns, "link", "set", "eth0", "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
            _run("ip", "-n", self.hub, "link", "set", b, "master", "br0")
            _run("ip", "-n", self.hub, "link", "set", b, "up")

    def enter_hub(self):
        """Move this process (its calling thread, and every thread and
        process it starts later) into the hub namespace."""
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open("/run/netns/" + self.hub, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                check(False, "setns into %s: %s" % (self.hub,
                                                    os.strerror(err)))
        finally:
            os.close(fd)

    def in_ns(self, i, argv):
        """argv run inside member i's namespace."""
        return ["ip", "netns", "exec", self.members[i]] + list(argv)

    def isolate(self, i):
        """Drop every packet to and from member i's eth0."""
        ns = self.members[i]
        _run("ip", "netns", "exec", ns, "iptables", "-w", "-A", "INPUT",
             "-i", "eth0", "-j", "DROP")
        _run("ip", "netns", "exec", ns, "iptables", "-w", "-A", "OUTPUT",
             "-o", "eth0", "-j", "DROP")
        self.cut.add(i)

    def heal(self, i):
        _run("ip", "netns", "exec", self.members[i], "iptables", "-w", "-F")
        self.cut.discard(i)

    def destroy(self):
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True,
                           timeout=30)
        self.made = []


class NetnsCluster(cl.Cluster):
    """cl.Cluster whose members run in Namespaces ns, each on its own
    address; the test process must be in the hub (ns.enter_hub())."""

    def __init__(self, binary, ns, **kw):
        self.ns = ns
        super().__init__(binary, n=ns.n, **kw)

    def args(self, i):
        peers = ",".join("%s:%d" % (self.ns.address(j), p)
                         for j, p in enumerate(self.peer_ports))
        clients = ",".join("%s:%d" % (self.ns.address(j), p)
                           for j, p in enumerate(self.client_ports))
        return self.ns.in_ns(i, [
            self.binary, "server", "--id", str(i), "--peers", peers,
            "--clients", clients, "--data-dir", self.data_dir(i),
            "--cluster-id", self.cluster_id] + self.auth_args(i)
            + self.timing + self.extra_args)

    def live(self):
        """Running members the test can reach (not cut off)."""
        return [i for i in super().live() if i not in self.ns.cut]

    def client(self, i, timeout=5.0):
        return cl.resp.connect(self.client_ports[i],
                               host=self.ns.address(i), timeout=timeout)

    def member_list(self):
        return ",".join("%s:%d" % (self.ns.address(i), p)
                        for i, p in enumerate(self.client_ports))


def run_in_namespaces(n, fn):
    """Make the namespaces, enter the hub, run fn(ns); remove them after,
    whatever happens."""
    ns = Namespaces(n)
    try:
        ns.create()
        ns.enter_hub()
        log("namespaces %s and %s made; this test now runs in the hub"
            % (ns.hub, ", ".join(ns.members)))
        return fn(ns)
    finally:
        for c in list(cl._clusters):
            try:
                c.cleanup()
            except Exception:
                pass
        ns.destroy()
