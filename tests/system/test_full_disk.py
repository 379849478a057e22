#!/usr/bin/env python3
"""test_full_disk — the primary's filesystem fills up, then space returns.

Each replica's data directory is a small tmpfs the test mounts (so it must
run as root; otherwise it is skipped with exit code 77). With a 1 MiB log
segment and a snapshot every 64 ops:

1. fill the primary's filesystem to the last byte;
2. small writes still fit in the preallocated log segment, but snapshots
   fail: INFO persistence says so (snapshot_status:failing and the error);
3. 32 KiB writes until the log needs a new segment, which cannot be
   created: the primary refuses further writes with a clear -ERR naming the
   disk, INFO persistence shows the stall (disk_status:stalled, since, the
   error), `cohort status` shows it; after a few more failed attempts of
   each (snapshot_failures, disk_write_failures) the log has said each
   once, not at every attempt;
4. free the space: the stall ends (disk_status:ok, snapshots work again),
   writes succeed, one line each says so;
5. every acknowledged write reads back, also from the primary's own log
   after a SIGKILL and restart; the stall and snapshot lines in its log stay
   a handful (before this was fixed, a failing snapshot was retried ~43
   times a second with two lines each, and the log stall said nothing).

Every mount is unmounted on every path (try/finally).

usage: test_full_disk.py [path/to/cohort]
"""

import errno
import os
import re
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
import resp  # noqa: E402
from cluster import check, log  # noqa: E402

FS_SIZE = "8m"
SEGMENT = 1 << 20
SNAPSHOT_EVERY = 64
BIG = 32 << 10
MARK = "=== test harness: disk of replica %d is full"
# The lines about the disk or snapshots that the primary may write from the
# moment its disk is full to the end: a stall and its end, snapshots
# failing and working again, plus slack for a snapshot already running.
DISK_LINES_MAX = 6


def can_mount():
    if os.geteuid() != 0:
        return "not root (mounting a small tmpfs needs root)"
    probe = os.path.join(os.environ.get("TMPDIR", "/tmp"),
                         "cohort-mount-probe-%d" % os.getpid())
    os.makedirs(probe, exist_ok=True)
    try:
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs",
                            probe], capture_output=True, text=True)
        if p.returncode != 0:
            return "mount -t tmpfs failed: %s" % p.stderr.strip()
        subprocess.run(["umount", probe], check=True)
        return None
    except OSError as e:
        return "cannot run mount: %s" % e
    finally:
        os.rmdir(probe)


def mount(path):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700"
                    % FS_SIZE, "tmpfs", path], check=True)


def umount(path):
    for _ in range(50):
        if subprocess.run(["umount", path], capture_output=True).returncode \
                == 0:
            return
        time.sleep(0.1)
    subprocess.run(["umount", "-l", path], capture_output=True)


def fill(path):
    """Write path/filler until the filesystem is full; returns its size."""
    fd = os.open(os.path.join(path, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
    size = 0
    try:
        for chunk in (1 << 20, 64 << 10, 4 << 10, 512, 1):
            block = b"\xab" * chunk
            while True:
                try:
                    n = os.write(fd, block)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
                size += n
                if n < chunk:
                    break
    finally:
        os.close(fd)
    return size


def disk_lines(c, i):
    """Lines of replica i's log after the mark about the disk or snapshots."""
    text = c.log_text(i)
    at = text.rfind(MARK % i)
    check(at >= 0, "no mark in replica %d's log" % i)
    return [ln for ln in text[at:].splitlines()[1:]
            if not ln.startswith("===")
            and re.search(r"snapshot|disk|space|writing the log", ln, re.I)]


def wait_info(c, i, what, pred, timeout):
    deadline = time.monotonic() + timeout
    inf = {}
    while time.monotonic() < deadline:
        try:
            inf = c.info(i, "persistence")
            if pred(inf):
                return inf
        except (OSError, resp.RespError, resp.ProtocolError):
            pass
        time.sleep(0.05)
    raise cl.TestFailure("replica %d: %s not seen in INFO persistence within "
                         "%.0fs: %s\n%s" % (i, what, timeout, inf,
                                            c.log_tail(i, 20)))


def write_small(c, p, acked, prefix, count):
    with c.client(p, timeout=5 * c.slow) as conn:
        for k in range(count):
            key = "%s%d" % (prefix, k)
            check(conn.command("SET", key, key) == "OK", "SET %s" % key)
            acked[key] = key.encode()


def write_until_refused(c, p, acked):
    """32 KiB writes until the primary refuses one for its disk."""
    with c.client(p, timeout=5 * c.slow) as conn:
        for k in range(4 * SEGMENT // BIG):
            key = "big%d" % k
            value = (key.encode() * (BIG // len(key) + 1))[:BIG]
            try:
                r = conn.command("SET", key, value)
            except resp.RespError as e:
                check(e.code == "ERR" and "disk" in e.message,
                      "write %d: expected a clear disk error, got -%s"
                      % (k, e.message))
                return k, e.message
            check(r == "OK", "SET %s returned %r" % (key, r))
            acked[key] = value
    raise cl.TestFailure("%d writes of %d bytes with a full disk and no "
                         "error" % (4 * SEGMENT // BIG, BIG))


def status_text(c, i):
    p = subprocess.run([c.binary, "status", "%s:%d" % (cl.HOST,
                                                       c.client_ports[i])],
                       capture_output=True, text=True, timeout=20)
    check(p.returncode == 0, "cohort status failed: %s" % p.stderr)
    return p.stdout


def stall_phase(c, p, acked, mnt):
    filled = fill(mnt)
    with open(c.log_path(p), "a") as f:
        f.write((MARK % p) + " (%d bytes of filler)\n" % filled)
    log("filled r%d's filesystem (%d bytes of filler)" % (p, filled))

    write_small(c, p, acked, "snap", 3 * SNAPSHOT_EVERY)
    inf = wait_info(c, p, "snapshot_status:failing",
                    lambda d: d.get("snapshot_status") == "failing",
                    20 * c.slow)
    check("No space left" in inf.get("snapshot_last_error", ""),
          "snapshot_last_error does not name the cause: %s" % inf)
    log("snapshots failing: %s" % inf.get("snapshot_last_error"))

    k, message = write_until_refused(c, p, acked)
    log("write %d of %d KiB refused: -%s" % (k, BIG >> 10, message))
    inf = wait_info(c, p, "disk_status:stalled",
                    lambda d: d.get("disk_status") == "stalled", 10 * c.slow)
    check(int(inf.get("disk_stalled_since", "0")) > 0,
          "disk_stalled_since missing: %s" % inf)
    check("No space left" in inf.get("disk_last_error", ""),
          "disk_last_error does not name the cause: %s" % inf)
    # Let both retry a few times (backing off) before counting lines.
    inf = wait_info(c, p, "several failed attempts",
                    lambda d: int(d.get("disk_write_failures", "0")) >= 4
                    and int(d.get("snapshot_failures", "0")) >= 2,
                    30 * c.slow)
    log("retried: %s log writes, %s snapshots"
        % (inf["disk_write_failures"], inf["snapshot_failures"]))
    text = status_text(c, p)
    check("disk_status:stalled" in text,
          "cohort status does not show the stall:\n%s" % text)
    log("INFO: disk_status:stalled since %s: %s"
        % (inf["disk_stalled_since"], inf["disk_last_error"]))
    lines = disk_lines(c, p)
    check(len(lines) <= DISK_LINES_MAX,
          "%d disk/snapshot lines while stalled (at most %d):\n%s"
          % (len(lines), DISK_LINES_MAX, "\n".join(lines[:20])))
    check(any("No space left" in ln and " WARN " in ln for ln in lines),
          "no WARN line names the full disk:\n%s" % "\n".join(lines))


def recovery_phase(c, p, acked, mnt):
    os.unlink(os.path.join(mnt, "filler"))
    log("freed r%d's filesystem" % p)
    wait_info(c, p, "disk_status:ok",
              lambda d: d.get("disk_status") == "ok", 20 * c.slow)
    wait_info(c, p, "snapshot_status:ok",
              lambda d: d.get("snapshot_status") == "ok"
              and d.get("snapshot_failures") == "0", 40 * c.slow)
    write_small(c, p, acked, "after", 20)
    lines = disk_lines(c, p)
    for ln in lines:
        log("r%d: %s" % (p, ln))
    check(len(lines) <= DISK_LINES_MAX,
          "%d disk/snapshot lines (at most %d):\n%s"
          % (len(lines), DISK_LINES_MAX, "\n".join(lines[:20])))
    check(any(" INFO " in ln and "again" in ln for ln in lines),
          "no line says the disk works again:\n%s" % "\n".join(lines))
    return len(lines)


def check_acked(c, p, acked, readonly):
    got = cl.read_all(c, p, sorted(acked), readonly=readonly)
    lost = [k for k, v in acked.items() if got.get(k) != v]
    check(not lost, "ACKNOWLEDGED WRITES LOST on r%d: %d of %d, e.g. %s"
          % (p, len(lost), len(acked), lost[:5]))


def body(binary):
    why = can_mount()
    if why:
        print("SKIP full_disk: %s" % why)
        sys.exit(cl.SKIP_CODE)
    c = cl.Cluster(binary, n=3, name="full-disk",
                   extra_args=["--wal-segment-size", str(SEGMENT),
                               "--max-value-size", "512kb",
                               "--snapshot-interval-ops",
                               str(SNAPSHOT_EVERY)])
    mounts = []
    try:
        for i in range(c.n):
            mount(c.data_dir(i))
            mounts.append(c.data_dir(i))
        c.start()
        p, _ = c.wait_for_primary()
        acked = {}
        write_small(c, p, acked, "pre", 20)
        stall_phase(c, p, acked, c.data_dir(p))
        count = recovery_phase(c, p, acked, c.data_dir(p))
        check_acked(c, p, acked, readonly=False)
        c.kill(p)
        c.restart(p)
        c.wait_converged()
        check_acked(c, p, acked, readonly=True)
        log("%d acknowledged writes read back, also from r%d's own log "
            "after a restart" % (len(acked), p))
        c.finish()
        return ("full disk: one line, INFO and status show the stall, clear "
                "-ERR, recovery, %d acknowledged writes kept, %d disk lines"
                % (len(acked), count))
    finally:
        c.cleanup()
        for m in mounts:
            umount(m)
        # cleanup() ran while the tmpfs were mounted: their mount points
        # are left, empty, once unmounted.
        if mounts and not os.environ.get("COHORT_TEST_KEEP"):
            shutil.rmtree(c.dir, ignore_errors=True)


if __name__ == "__main__":
    cl.run_test("full_disk", body, budget_s=150)
