#!/usr/bin/env python3
"""test_status_page — the status page on the metrics port, rendered in
headless Chromium (Debian's chromium and chromium-driver, driven over the
W3C WebDriver protocol with the Python standard library only).

A 3-replica cluster serves its metrics ports. Chromium opens a backup's
status page (http://127.0.0.1:<metrics port>/) while a client writes.
Pass: the page lists the three members with their roles (one primary, two
backups), draws the throughput line on its SVG chart with several points,
and shows a positive rate; then the primary is killed and the same page,
still polling, shows a new primary and the old one's link down; no
JavaScript error along the way. A screenshot is kept in the test
directory (COHORT_TEST_KEEP=1).

Skips (exit 77) with the reason only when chromium is missing
(scripts/deps.sh installs it with chromium-driver; COHORT_NO_BROWSER=1
leaves them out). Without chromedriver (or with COHORT_TEST_DUMP_DOM=1)
it renders the page once with chromium --dump-dom instead and checks the
members, roles and chart there.

usage: test_status_page.py [path/to/cohort]
"""

import base64
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "system"))

import cluster as cl  # noqa: E402
from cluster import check, log  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-dev-shm-usage",
                 "--window-size=1000,1200"]

# What the page shows, read in the page (document state, not pixels).
PAGE_STATE = """
var rows = Array.prototype.slice.call(
    document.querySelectorAll('#members tbody tr.member'));
var line = document.querySelector('#chart polyline.throughput');
return {
  members: rows.map(function (r) {
    return {id: Number(r.getAttribute('data-id')),
            role: r.getAttribute('data-role'),
            link: r.querySelector('td:nth-child(5)').textContent};
  }),
  points: line ? line.getAttribute('points').trim().split(' ').length : 0,
  samples: Number(document.getElementById('chart')
                    .getAttribute('data-samples') || 0),
  polls: Number(document.body.getAttribute('data-polls') || 0),
  summary: document.getElementById('summary').textContent,
  error: document.getElementById('error').textContent,
  errors: window.cohortErrors || []
};
"""


def skip(why):
    print("SKIP status_page: %s" % why)
    sys.exit(cl.SKIP_CODE)


class WebDriver:
    """A chromedriver process and one session, over plain HTTP+JSON."""

    def __init__(self, profile_dir):
        self.port = cl.pick_ports(1)[0]
        self.log = open(os.path.join(profile_dir, "chromedriver.log"), "wb")
        self.proc = subprocess.Popen(
            [CHROMEDRIVER, "--port=%d" % self.port],
            stdin=subprocess.DEVNULL, stdout=self.log,
            stderr=subprocess.STDOUT, preexec_fn=cl._pdeathsig)
        self.session = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.call("GET", "/status").get("ready"):
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        else:
            raise cl.TestFailure("chromedriver did not start")
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": CHROMIUM_ARGS + [
                    "--user-data-dir=" + os.path.join(profile_dir,
                                                      "profile")]}}}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def call(self, method, path, body=None, timeout=60):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            "http://127.0.0.1:%d%s" % (self.port, path), data=data,
            method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read() or b"{}").get("value")
        except urllib.error.HTTPError as e:
            raise cl.TestFailure("webdriver %s %s: %s" % (
                method, path, e.read()[:500]))

    def s(self, method, path, body=None):
        return self.call(method, "/session/%s%s" % (self.session, path), body)

    def open(self, url):
        self.s("POST", "/url", {"url": url})

    def script(self, source):
        return self.s("POST", "/execute/sync", {"script": source, "args": []})

    def screenshot(self, path):
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.s("GET", "/screenshot")))

    def close(self):
        try:
            if self.session:
                self.s("DELETE", "")
        except (OSError, cl.TestFailure):
            pass
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.log.close()


def writer(c, stop, counts):
    """SETs round-robin through the live replicas until stopped."""
    k = 0
    while not stop.is_set():
        for i in c.live():
            try:
                with c.client(i, timeout=2) as conn:
                    for _ in range(50):
                        conn.command("SET", "page%d" % k, "v")
                        k += 1
                        counts[0] += 1
                        if stop.is_set():
                            return
            except Exception:
                time.sleep(0.05)


def wait_page(wd, what, ok, timeout):
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = wd.script(PAGE_STATE)
        check(not state["errors"], "JavaScript errors: %s" % state["errors"])
        if ok(state):
            return state
        time.sleep(0.2)
    raise cl.TestFailure("the page did not show %s within %.0fs; it shows "
                         "%s" % (what, timeout, state))


def roles_ok(state, n):
    roles = sorted(m["role"] for m in state["members"])
    return len(state["members"]) == n and roles == ["backup"] * (n - 1) + [
        "primary"]


def dump_dom(c, url):
    """The page's DOM after its scripts ran for 5 s of virtual time (chromium
    --dump-dom: the fallback when chromedriver is missing)."""
    p = subprocess.run(
        [CHROMIUM] + CHROMIUM_ARGS + [
            "--user-data-dir=" + os.path.join(c.dir, "profile-dump"),
            "--virtual-time-budget=5000", "--dump-dom", url],
        stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=60 * c.slow)
    check(p.returncode == 0, "chromium --dump-dom exited %d: %s"
          % (p.returncode, p.stderr[-500:]))
    return p.stdout


def main_dump_dom(c, p, b):
    """Without chromedriver: one rendering by chromium --dump-dom must show
    the three members with their roles and a chart line of several
    points, drawn by the page's own polls."""
    html = dump_dom(c, "http://127.0.0.1:%d/" % c.metrics_ports[b])
    rows = re.findall(r'<tr class="member" data-id="(\d+)" '
                      r'data-role="(\w+)"', html)
    roles = sorted(r for _, r in rows)
    check(roles == ["backup", "backup", "primary"],
          "the rendered page lists members %s" % rows)
    check([int(i) for i, r in rows if r == "primary"] == [p],
          "the page's primary is not r%d: %s" % (p, rows))
    line = re.search(r'<polyline points="([^"]*)"[^>]*throughput', html)
    points = len(line.group(1).split()) if line else 0
    check(points >= 3, "the chart's throughput line has %d points" % points)
    return ("chromium --dump-dom (no chromedriver): 3 members with roles, "
            "a chart of %d points" % points)


def main(binary):
    if not os.path.exists(CHROMIUM):
        skip("%s is not installed (Debian's chromium; scripts/deps.sh "
             "installs it with chromium-driver unless COHORT_NO_BROWSER=1)"
             % CHROMIUM)
    c = cl.Cluster(binary, n=3, name="page", metrics=True)
    c.start()
    p, _ = c.wait_for_primary()
    c.wait_converged()
    b = [i for i in range(c.n) if i != p][0]
    stop, counts = threading.Event(), [0]
    t = threading.Thread(target=writer, args=(c, stop, counts), daemon=True)
    t.start()
    if not os.path.exists(CHROMEDRIVER) or os.environ.get(
            "COHORT_TEST_DUMP_DOM"):
        log("no chromedriver (or COHORT_TEST_DUMP_DOM): rendering with "
            "chromium --dump-dom")
        try:
            return main_dump_dom(c, p, b)
        finally:
            stop.set()
            t.join(timeout=10)
    wd = WebDriver(c.dir)
    try:
        url = "http://127.0.0.1:%d/" % c.metrics_ports[b]
        wd.open(url)
        slow = c.slow
        st = wait_page(wd, "three members with one primary and a chart",
                       lambda s: roles_ok(s, 3) and s["points"] >= 3,
                       30 * slow)
        primary = [m["id"] for m in st["members"] if m["role"] == "primary"]
        check(primary == [p], "the page says primary %s, INFO says r%d"
              % (primary, p))
        st = wait_page(wd, "a positive committed ops/s",
                       lambda s: " 0 committed ops/s" not in s["summary"]
                       and "committed ops/s" in s["summary"], 30 * slow)
        log("page of r%d: members %s, %d chart points; %s"
            % (b, [(m["id"], m["role"]) for m in st["members"]],
               st["points"], st["summary"]))
        wd.screenshot(os.path.join(c.dir, "status_page.png"))
        c.kill(p)
        st = wait_page(
            wd, "a new primary and r%d's link down" % p,
            lambda s: roles_ok(s, 3) and
            [m["id"] for m in s["members"] if m["role"] == "primary"] != [p]
            and [m["link"] for m in s["members"] if m["id"] == p] == ["down"],
            30 * slow)
        log("after SIGKILL of r%d the page shows %s"
            % (p, [(m["id"], m["role"], m["link"]) for m in st["members"]]))
        wd.screenshot(os.path.join(c.dir, "status_page_after_kill.png"))
    finally:
        stop.set()
        t.join(timeout=10)
        wd.close()
    return ("the page showed 3 members with roles and drew its chart (%d "
            "points); it followed the failover; %d writes meanwhile"
            % (st["points"], counts[0]))


if __name__ == "__main__":
    cl.run_test("status_page", main, budget_s=120)
