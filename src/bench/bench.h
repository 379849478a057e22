/* bench — the load generator behind `cohort bench`: keeps a number of
 * requests outstanding over a set of connections to one or more members
 * (pipelining when there are more requests than connections), for a time or
 * an op count, and measures throughput and latency with bench/hist.
 *
 * One thread and one epoll loop. Everything is allocated by bench_run()
 * before the first request: per connection a ring of request slots (each
 * with its header bytes), a read buffer that only grows, and one shared
 * value buffer that every SET sends with writev. Nothing is allocated per
 * request.
 *
 * Failures are counted, never fatal: a connection that breaks, times out or
 * answers -TRYAGAIN-like errors counts its unanswered requests as errors,
 * closes, and reconnects after a short backoff to the next member in the
 * list, so a run survives a member being killed. Fatal are only setup
 * errors (no member reachable at the start, READONLY refused). */
#ifndef COHORT_BENCH_H
#define COHORT_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include "bench/hist.h"
#include "common/err.h"

enum bench_workload {
    BENCH_WRITE = 0,    /* SET of a random key */
    BENCH_READ = 1,     /* GET (linearizable on cohort) */
    BENCH_LREAD = 2,    /* READONLY once per connection, then GET */
    BENCH_MIXED = 3,    /* read_percent GET, the rest SET */
    BENCH_FAILOVER = 4, /* SET at concurrency 1 around a kill command */
    BENCH_EXEC = 5,     /* a transaction of 5 INCRs (COHORT.EXEC) */
    BENCH_PRELOAD = 6,  /* SET of k0 .. k<keys-1>, each once (internal) */
    BENCH_PUBLISH = 7,  /* PUBLISH to channel k<n> (--keys 1: one channel) */
};

/* The text of a workload ("write") and back; -1 for an unknown name. */
const char *bench_workload_name(enum bench_workload w);
int bench_workload_parse(const char *name);

#define BENCH_MEMBERS_MAX 16
#define BENCH_MEMBER_TEXT_MAX 280

struct bench_member {
    struct sockaddr_storage addr;
    char text[BENCH_MEMBER_TEXT_MAX]; /* "host:port" as given */
};

struct bench_config {
    enum bench_workload workload;
    const char *system; /* label in the result line */
    struct bench_member members[BENCH_MEMBERS_MAX];
    uint32_t member_count;
    uint32_t concurrency; /* requests outstanding, >= connections */
    uint32_t connections;
    size_t value_size;
    uint64_t keys;
    double seconds;         /* measured time bound; the failover cap */
    uint64_t ops;           /* measured op bound; 0: none */
    double warmup_seconds;  /* load before measuring, not counted */
    uint32_t read_percent;  /* mixed */
    uint32_t timeout_ms;    /* per request (and per connect) */
    uint32_t kill_after_ms; /* failover: from the start to the kill */
    uint32_t after_ms;      /* failover: run on after failover_ms */
    const char *kill_cmd;   /* failover: run with /bin/sh -c */
    uint64_t seed;
    bool preload; /* SET every key first (pipelined, not measured) */
    bool quiet;   /* no progress lines on stderr */
};

struct bench_result {
    struct hist hist;   /* latency of each measured op, ns */
    uint64_t ops;       /* acknowledged in the measured window */
    uint64_t errors;    /* failed requests and connection failures */
    double seconds;     /* length of the measured window */
    double failover_ms; /* failover: from the kill to the ack of the first
                           write sent after the kill command exited; < 0:
                           none */
};

/* Run the workload of config to its end. Returns 0 with out filled, or a
 * negative code with err holding one line for the user (no member
 * reachable, a setup command refused, out of memory). */
int bench_run(const struct bench_config *config, struct bench_result *out,
              struct cohort_err *err);

/* The one machine-readable result line (with its newline) into buf. */
void bench_result_format(const struct bench_config *config,
                         const struct bench_result *result, char *buf,
                         size_t size);

#endif
