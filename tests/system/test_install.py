#!/usr/bin/env python3
"""test_install — `make install` puts a tree in place that runs (issue 17,
item 7).

The build directory of the binary under test is installed with
`DESTDIR=<tmp> cmake --install <build>` (what `make install` runs after
configuring PREFIX), and the staged tree must hold:

  - <prefix>/bin/cohort, which answers --version;
  - the systemd unit template cohort@.service, whose ExecStart names that
    binary and <sysconfdir>/cohort/%i.conf, with the hardening
    (DynamicUser, ProtectSystem=strict, ReadWritePaths of the data
    directory, NoNewPrivileges, ...) and which `systemd-analyze verify`
    accepts without a word (when systemd-analyze is installed; the test
    says so when it is not);
  - the sample config, which with every commented option turned on and
    only the addresses and data directory changed starts a one-replica
    cluster from the installed binary that takes a SET, answers a GET,
    serves /metrics and stops on SIGTERM;
  - LICENSE and docs/OPERATIONS.md under the doc directory;
  - libcohort-client: libcohort-client.so and .a, cohort_client.h and
    cohort.h, and cohort-client.pc, with which the installed example
    (examples/counter.c, and examples/jobrunner.c, which is not run
    here) compiles and links against the staged tree
    (pkg-config with PKG_CONFIG_SYSROOT_DIR; skipped, and said so, without
    cc or pkg-config) and runs against the one-replica cluster above.

`make -n install PREFIX=... DESTDIR=...` must pass both on.

usage: test_install.py [path/to/cohort]
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HARDENING = ["DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes",
             "ReadWritePaths=-/var/lib/cohort/%i", "StateDirectory=cohort/%i",
             "ProtectHome=yes", "PrivateTmp=yes", "CapabilityBoundingSet=",
             "UMask=0077"]


def cache_value(build, name):
    with open(os.path.join(build, "CMakeCache.txt")) as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split("=", 1)[1].strip()
    raise cl.TestFailure("%s not in %s/CMakeCache.txt" % (name, build))


def install(build, dest):
    env = dict(os.environ, DESTDIR=dest)
    p = subprocess.run(["cmake", "--install", build], env=env, text=True,
                       capture_output=True, timeout=120)
    check(p.returncode == 0, "cmake --install: %s" % (p.stdout + p.stderr))
    return p.stdout


def find_one(root, name):
    hits = [os.path.join(d, name) for d, _, files in os.walk(root)
            if name in files]
    check(len(hits) == 1, "expected one %s in the staged tree, found %s"
          % (name, hits))
    return hits[0]


def check_unit(dest, unit_path, binary_path, sysconf):
    text = open(unit_path).read()
    m = re.search(r"^ExecStart=(\S+) server --config (\S+)$", text, re.M)
    check(m, "no ExecStart=<cohort> server --config <file> in the unit")
    check(m.group(1) == binary_path, "ExecStart names %s, the binary is "
          "installed as %s" % (m.group(1), binary_path))
    check(m.group(2) == os.path.join(sysconf, "cohort", "%i.conf"),
          "ExecStart's config is %s" % m.group(2))
    for line in HARDENING:
        check(re.search("^" + re.escape(line) + "$", text, re.M),
              "the unit lacks %s" % line)
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        log("systemd-analyze is not installed: the unit is not verified")
        return "unit not verified (no systemd-analyze)"
    # verify checks that ExecStart's binary exists: point it into DESTDIR.
    vdir = os.path.join(dest, "verify")
    os.makedirs(vdir)
    vunit = os.path.join(vdir, "cohort@.service")
    with open(vunit, "w") as f:
        f.write(text.replace("ExecStart=" + binary_path,
                             "ExecStart=" + dest + binary_path))
    p = subprocess.run([analyze, "verify", vunit], text=True,
                       capture_output=True, timeout=60)
    said = (p.stdout + p.stderr).strip()
    check(p.returncode == 0 and said == "",
          "systemd-analyze verify cohort@.service: rc %d: %s"
          % (p.returncode, said))
    log("systemd-analyze verify: clean")
    return "unit verified"


# Options of the sample that need files or clients of their own: they
# stay commented out (test_client_auth and test_client_tls cover them).
LEFT_COMMENTED = {"requirepass", "acl-file", "tls-port", "tls-cert-file",
                  "tls-key-file", "tls-ca-cert-file", "tls-auth-clients"}


def config_from_sample(sample, dest, ports):
    """The sample with every commented `# name = value` option turned on,
    and the addresses and data directory of a one-replica cluster."""
    client, peer, metrics = ports
    set_to = {"id": "0", "peers": "127.0.0.1:%d" % peer,
              "clients": "127.0.0.1:%d" % client,
              "data-dir": os.path.join(dest, "data", "0"),
              "bind": "127.0.0.1", "metrics-port": str(metrics),
              "heartbeat-ms": "10", "suspect-timeout-ms": "100",
              "view-change-timeout-ms": "200"}
    out, seen = [], set()
    for line in open(sample):
        m = re.match(r"^#?\s*([a-z][a-z-]*)\s*=\s*(\S+)", line)
        if not m or m.group(1) in LEFT_COMMENTED:
            out.append(line)
            continue
        name = m.group(1)
        seen.add(name)
        out.append("%s = %s\n" % (name, set_to.get(name, m.group(2))))
    for name in ("id", "peers", "clients", "data-dir", "metrics-port",
                 "bind", "cluster-id", "maxmemory", "timeout"):
        check(name in seen, "the sample config does not mention %s" % name)
    path = os.path.join(dest, "0.conf")
    with open(path, "w") as f:
        f.writelines(out)
    return path


def run_installed(binary, conf, ports, then=None):
    """Start the installed server, SET and GET through it, read /metrics,
    run then() (if given) while it serves, stop it with SIGTERM."""
    client, _, metrics = ports
    logf = open(conf + ".log", "wb")
    p = subprocess.Popen([binary, "server", "--config", conf],
                         stdout=logf, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, preexec_fn=cl._pdeathsig)
    try:
        deadline = time.monotonic() + 20 * cl.slowness(binary)
        reply = None
        while time.monotonic() < deadline:
            check(p.poll() is None, "the installed server exited %s: %s"
                  % (p.returncode, open(conf + ".log").read()[-2000:]))
            try:
                with resp.connect(client, timeout=2) as c:
                    reply = c.command("SET", "installed", "yes")
                    if reply == "OK":
                        break
            except (OSError, resp.RespError, resp.ProtocolError) as e:
                reply = e
            time.sleep(0.05)
        check(reply == "OK", "SET on the installed server: %r" % reply)
        with resp.connect(client, timeout=2) as c:
            check(c.command("GET", "installed") == b"yes", "GET installed")
        body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics,
                                      timeout=5).read().decode()
        check("cohort_build_info" in body, "no metrics from the installed "
              "server")
        if then is not None:
            then()
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(20 * cl.slowness(binary))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = None
        logf.close()
    check(rc == 0, "the installed server did not stop cleanly on SIGTERM "
          "(rc %r)" % rc)


def check_make_dry_run():
    p = subprocess.run(["make", "-n", "-C", SRC, "install",
                        "PREFIX=/opt/cohort-x", "DESTDIR=/tmp/stage-x"],
                       text=True, capture_output=True, timeout=60)
    out = p.stdout
    check(p.returncode == 0 and "CMAKE_INSTALL_PREFIX=/opt/cohort-x" in out
          and "DESTDIR=/tmp/stage-x cmake --install" in out,
          "make -n install does not pass PREFIX and DESTDIR on: %s"
          % (out + p.stderr)[-1500:])


def sanitizer_flags(binary):
    """The sanitizer the build under test used: the staged library carries
    its runtime, so the example must be built with it too."""
    with open(binary, "rb") as f:
        data = f.read(64 << 20)
    if b"__asan_init" in data:
        return ["-fsanitize=address,undefined"]
    if b"__tsan_init" in data:
        return ["-fsanitize=thread"]
    return []


def check_client_lib(dest, binary):
    """The library, headers and pkg-config file are staged, and the
    installed example builds with them. Returns the example's path (None
    when it could not be built here) and a note."""
    for name in ("libcohort-client.a", "cohort_client.h",
                 "cohort_client_uv.h", "cohort.h", "counter.c",
                 "jobrunner.c"):
        find_one(dest, name)
    so = [os.path.join(d, f) for d, _, files in os.walk(dest)
          for f in files if f.startswith("libcohort-client.so")]
    check(so, "no libcohort-client.so in the staged tree")
    pc = find_one(dest, "cohort-client.pc")
    cc, pkg = shutil.which("cc"), shutil.which("pkg-config")
    if cc is None or pkg is None:
        log("cc or pkg-config missing: the example is not compiled")
        return None, "example not compiled (no cc or pkg-config)"
    # The staged directory first; the system's for libssl (the library's
    # Requires.private).
    env = dict(os.environ, PKG_CONFIG_SYSROOT_DIR=dest,
               PKG_CONFIG_PATH=os.path.dirname(pc))
    flags = subprocess.run([pkg, "--cflags", "--libs", "cohort-client"],
                           env=env, text=True, capture_output=True,
                           timeout=30)
    check(flags.returncode == 0, "pkg-config cohort-client: %s"
          % flags.stderr)
    for name in ("jobrunner", "counter"):
        out = os.path.join(dest, name)
        p = subprocess.run([cc, "-std=c11", "-Wall", "-Werror"]
                           + sanitizer_flags(binary)
                           + [find_one(dest, name + ".c"), "-o", out]
                           + flags.stdout.split(), text=True,
                           capture_output=True, timeout=120)
        check(p.returncode == 0, "the installed example %s.c does not "
              "build with pkg-config's flags %s: %s"
              % (name, flags.stdout.strip(), p.stdout + p.stderr))
    return out, "the client examples build with pkg-config"


def run_example(example, dest, ports):
    """The example counts 50 increments against the installed replica."""
    libdir = os.path.dirname([os.path.join(d, f) for d, _, files
                              in os.walk(dest) for f in files
                              if f.startswith("libcohort-client.so")][0])
    p = subprocess.run([example, "50", "127.0.0.1:%d" % ports[0]],
                       env=dict(os.environ, LD_LIBRARY_PATH=libdir),
                       text=True, capture_output=True, timeout=120)
    check(p.returncode == 0 and "made 50 increments" in p.stdout
          and p.stdout.strip().endswith(" is 50"),
          "the installed example: rc %d: %s" % (p.returncode,
                                                p.stdout + p.stderr))


def body(binary):
    build = os.path.dirname(os.path.abspath(binary))
    prefix = cache_value(build, "CMAKE_INSTALL_PREFIX")
    dest = tempfile.mkdtemp(prefix="cohort-install-")
    try:
        install(build, dest)
        staged = dest + prefix
        installed = os.path.join(staged, "bin", "cohort")
        check(os.access(installed, os.X_OK), "no executable %s" % installed)
        v = subprocess.run([installed, "--version"], text=True,
                           capture_output=True, timeout=20)
        check(v.returncode == 0 and v.stdout.startswith("cohort "),
              "cohort --version: %r %r" % (v.stdout, v.stderr))
        unit = find_one(dest, "cohort@.service")
        sample = find_one(dest, "cohort.conf.example")
        sysconf = os.path.dirname(os.path.dirname(sample))[len(dest):]
        for doc in ("LICENSE", "OPERATIONS.md"):
            find_one(dest, doc)
        verified = check_unit(dest, unit, os.path.join(prefix, "bin",
                                                       "cohort"), sysconf)
        example, lib_note = check_client_lib(dest, binary)
        ports = cl.pick_ports(3)
        conf = config_from_sample(sample, dest, ports)
        run_installed(installed, conf, ports,
                      lambda: example and run_example(example, dest, ports))
        check_make_dry_run()
        return ("%s staged under DESTDIR runs (%s), sample config starts "
                "a replica, %s, %s" % (prefix, v.stdout.strip(), verified,
                                       lib_note))
    finally:
        shutil.rmtree(dest, ignore_errors=True)


if __name__ == "__main__":
    cl.run_test("install", body, budget_s=120)
