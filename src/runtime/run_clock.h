/* run_clock — the replica's protocol clock: monotonic milliseconds that
 * count the time the process was running or waiting for input, and not the
 * time it could not run (waiting for a CPU on a busy machine, stopped,
 * paging).
 *
 * Why: the core measures a peer's silence on this clock (core/detector).
 * A replica whose event loop did not run for a while has not read its
 * sockets either: what its peers sent meanwhile is waiting, unread, in the
 * kernel. Counting that time as their silence makes a starved backup
 * suspect a primary that was sending all along, and every replica of a
 * group on a saturated machine is starved together (measured: 150 to 270 ms
 * in the run queue at once, while snapshot children and builds took both
 * cores; see docs/ARCHITECTURE.md, "Stalls"). Raft implementations get
 * this from counting ticks (a tick that was not delivered did not happen);
 * this clock does the same for a loop that reads it on every 5 ms tick.
 *
 * The node's loop reads the clock at least every tick (5 ms) while it runs.
 * A step longer than step_max_ms between two reads is a stall: the clock
 * advances by step_max_ms only, and the rest is counted in stalled_ms.
 *
 * Invariants: (1) now_ms never decreases; (2) it advances by at most
 * step_max_ms per read; (3) now_ms + stalled_ms - start = raw time elapsed
 * (the raw clock is monotonic).
 *
 * Pure: the raw time comes in as an argument. */
#ifndef COHORT_RUN_CLOCK_H
#define COHORT_RUN_CLOCK_H

#include <stdint.h>

struct run_clock {
    uint64_t raw_ms;      /* the raw monotonic time of the last read */
    uint64_t now_ms;      /* the clock's time at the last read */
    uint64_t step_max_ms; /* the longest step counted in full */
    uint64_t stalled_ms;  /* raw time not counted, in total */
    uint64_t stalls;      /* reads that found a step over step_max_ms */
};

/* Start at raw_ms (the clock reads raw_ms then). step_max_ms >= 1. */
void run_clock_init(struct run_clock *c, uint64_t raw_ms, uint64_t step_max_ms);
/* The clock's time, given the raw monotonic time now. A raw time earlier
 * than the last read counts as no time passing. */
uint64_t run_clock_read(struct run_clock *c, uint64_t raw_ms);

#endif
