#!/usr/bin/env python3
"""test_log_lines — every log line has a timestamp, a level and the replica
id, and a view change says why.

Start a group, SIGKILL the primary, wait for a new one, restart the old
primary. Pass:
- every line each replica wrote (not the harness's "===" lines) reads
  `<ISO-8601 UTC with ms> <INFO|WARN|ERROR> r<id> <message>`, with the
  replica's own id, and timestamps never go backwards in a file;
- a survivor's view-change line names the suspicion: which replica
  suspected the killed primary, after how many ms of silence;
- the new view's line on each survivor says why it changed;
- the restarted replica's line says it rejoined by recovery;
- each replica's first start (an empty data directory) says so, with the
  way back for a lost disk; its restart (with data) does not.

usage: test_log_lines.py [path/to/cohort]
"""

import re
import sys

sys.dont_write_bytecode = True

import cluster as cl  # noqa: E402
from cluster import check, log  # noqa: E402

LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) "
                  r"(INFO|WARN|ERROR) r(\d+) \S")


def lines_of(c, i):
    return [ln for ln in c.log_text(i).splitlines()
            if ln and not ln.startswith("===")]


def check_format(c, i):
    last = ""
    lines = lines_of(c, i)
    check(lines, "replica %d wrote no log lines" % i)
    for ln in lines:
        m = LINE.match(ln)
        check(m, "replica %d: a log line without timestamp, level and "
              "replica id: %r" % (i, ln))
        check(int(m.group(3)) == i,
              "replica %d's line names replica %s: %r" % (i, m.group(3), ln))
        check(m.group(1) >= last, "replica %d: time went backwards: %r"
              % (i, ln))
        last = m.group(1)
    return len(lines)


def view_lines(c, i, since=0):
    return [ln for ln in lines_of(c, i)[since:] if " view " in ln]


def body(binary):
    c = cl.Cluster(binary, n=3, name="loglines")
    c.start()
    p, _ = c.wait_for_primary()
    empty = "starts on an empty data directory"
    for i in range(c.n):
        said = [ln for ln in lines_of(c, i) if empty in ln]
        check(len(said) == 1 and "already holds data" in said[0],
              "replica %d's first start did not say once that its data "
              "directory is empty, and what it does about it: %r"
              % (i, said))
    old_view = int(c.info(p)["view"])
    survivors = [i for i in range(c.n) if i != p]
    marks = {i: len(lines_of(c, i)) for i in survivors}
    c.kill(p)
    log("SIGKILL primary r%d of view %d" % (p, old_view))
    np, _ = c.wait_for_primary()
    c.wait_converged(survivors)
    new_view = int(c.info(np)["view"])
    log("new primary r%d in view %d" % (np, new_view))

    suspicion = re.compile(r"replica (\d+) suspected replica %d\b.*after "
                           r"(\d+) ms" % p)
    named = []
    for i in survivors:
        lines = view_lines(c, i, marks[i])
        for ln in lines:
            log("r%d: %s" % (i, ln))
        check(lines, "replica %d logged no view change" % i)
        for ln in lines:
            check("why:" in ln, "replica %d: a view line without its cause: "
                  "%s" % (i, ln))
        named += [(i, m.group(1), m.group(2)) for m in
                  (suspicion.search(ln) for ln in lines) if m]
        normal = [ln for ln in lines if "view %d: primary is replica %d"
                  % (new_view, np) in ln]
        check(normal, "replica %d did not log the start of view %d"
              % (i, new_view))
    check(named, "no survivor's view-change line names the suspicion of "
          "replica %d (the killed primary)" % p)
    for i, by, ms in named:
        check(int(by) in survivors, "r%d: replica %s suspected replica %d? "
              "it is not a survivor" % (i, by, p))

    mark = len(lines_of(c, p))
    c.restart(p)
    c.wait_converged()
    rejoined = [ln for ln in view_lines(c, p, mark) if "recover" in ln]
    for ln in rejoined:
        log("r%d: %s" % (p, ln))
    check(rejoined, "the restarted replica %d logged no view line that says "
          "it recovered:\n%s" % (p, c.log_tail(p, 10)))
    check(not [ln for ln in lines_of(c, p)[mark:] if empty in ln],
          "the restarted replica %d, with data, said its directory is empty"
          % p)

    counts = {i: check_format(c, i) for i in range(c.n)}
    return ("%s lines in the format; the view change names replica %s "
            "suspecting replica %d after %s ms"
            % (sum(counts.values()), named[0][1], p, named[0][2]))


if __name__ == "__main__":
    cl.run_test("log_lines", body, budget_s=90)
