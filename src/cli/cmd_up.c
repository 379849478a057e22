/* cli/cmd_up — `cohort up`: a local cluster of replicas on 127.0.0.1, each a
 * `cohort server` child process, in the foreground. The children's log lines
 * (one per view change) go to this terminal; Ctrl-C stops them all.
 *
 * Start-up is checked: each child reports on a pipe (COHORT_READY_FD) once
 * it listens on its ports, or exits having printed why it could not. If any
 * replica did not start, the others are stopped and `cohort up` exits 1, so
 * a script never mistakes a dead cluster (or another cluster on the same
 * ports) for its own. Even group sizes are refused: they tolerate no more
 * failures than one replica fewer. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cohort.h"
#include "runtime/logline.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int signum)
{
    (void)signum;
    stop_requested = 1;
}

static void usage(void)
{
    printf("usage: cohort up [--replicas N] [--spares N] [--dir DIR] "
           "[--client-port P]\n                 [--peer-port P] "
           "[--metrics-port P]\n\n"
           "Start a local cluster in the foreground: N replicas (default 3) "
           "on 127.0.0.1,\nclient ports P, P+1, ... (default 7001), peer "
           "ports from --peer-port (default 7101),\ndata under DIR/replica-N "
           "(default ./data). Ctrl-C stops every replica.\n"
           "--metrics-port P gives the replicas metrics ports P, P+1, ... "
           "(/metrics and the\nstatus page at http://127.0.0.1:P/; default "
           "none).\n"
           "--spares N starts N more replicas as spares (ids N.., in every "
           "replica's --peers):\nlearners kept caught up that the primary "
           "puts in a voter's place when the voter\nhas been silent for "
           "--replace-after (10 s).\n");
}

struct up_args {
    long replicas, client_port, peer_port, metrics_port;
    long spares; /* started outside the group: ids replicas.. */
    const char *dir;
};

/* The value of flag ("--name"), decimal in [lo, hi]. */
static int parse_int(const char *flag, const char *v, long lo, long hi,
                     long *out)
{
    uint64_t x = 0;
    if (v == NULL)
        return cli_flag_needs_value("up", flag + 2);
    if (cli_flag_u64("up", flag + 2, v, (uint64_t)lo, (uint64_t)hi, &x) != 0)
        return 2;
    *out = (long)x;
    return 0;
}

/* A group of n replicas survives (n - 1) / 2 failures: an even n tolerates
 * no more than n - 1 does, and needs one more replica for every quorum. */
static int check_replicas(long replicas)
{
    if (replicas % 2 == 1)
        return 0;
    fprintf(stderr,
            "cohort up: --replicas %ld: a group of %ld survives %ld "
            "failure%s, as a group of %ld does; use an odd number (1, 3, 5 "
            "or 7)\n",
            replicas, replicas, (replicas - 1) / 2,
            (replicas - 1) / 2 == 1 ? "" : "s", replicas - 1);
    return 2;
}

static int parse_args(int argc, char **argv, struct up_args *u)
{
    struct cli_flag_seen seen = {.count = 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            return 1;
        } else if (!strcmp(a, "--replicas")) {
            rc = parse_int(a, v, 1, COHORT_REPLICAS_MAX, &u->replicas), i++;
        } else if (!strcmp(a, "--spares")) {
            rc = parse_int(a, v, 0, COHORT_REPLICAS_MAX - 1, &u->spares), i++;
        } else if (!strcmp(a, "--client-port")) {
            rc = parse_int(a, v, 1, 65535 - COHORT_REPLICAS_MAX,
                           &u->client_port),
            i++;
        } else if (!strcmp(a, "--peer-port")) {
            rc = parse_int(a, v, 1, 65535 - COHORT_REPLICAS_MAX, &u->peer_port),
            i++;
        } else if (!strcmp(a, "--metrics-port")) {
            rc = parse_int(a, v, 1, 65535 - COHORT_REPLICAS_MAX,
                           &u->metrics_port),
            i++;
        } else if (!strcmp(a, "--dir")) {
            if (v == NULL)
                return cli_flag_needs_value("up", "dir");
            /* "" made the data directories /replica-N, at the root. */
            if (v[0] == '\0')
                return cli_flag_bad("up", "dir", v,
                                    "expected a directory (leave the option "
                                    "out for ./data)");
            u->dir = v, i++;
        } else {
            return cli_flag_unknown("up", a);
        }
        if (rc == 0) /* every flag left takes a value */
            rc = cli_flag_once("up", &seen, a + 2, v);
        if (rc)
            return rc;
    }
    if (u->replicas + u->spares > COHORT_REPLICAS_MAX) {
        fprintf(stderr,
                "cohort up: --replicas %ld and --spares %ld make %ld "
                "processes; a group's --peers holds at most %d\n",
                u->replicas, u->spares, u->replicas + u->spares,
                COHORT_REPLICAS_MAX);
        return 2;
    }
    /* Each kind of port takes one per process, from its base: ranges that
     * overlap used to reach every replica, which each refused the same
     * address in a line of its own, naming `cohort server`'s --peers and
     * --clients instead of these flags. */
    long n = u->replicas + u->spares;
    const struct {
        const char *name;
        long base;
    } ranges[] = {{"--client-port", u->client_port},
                  {"--peer-port", u->peer_port},
                  {"--metrics-port", u->metrics_port}};
    for (int a = 0; a < 3; a++) {
        for (int b = a + 1; b < 3; b++) {
            if (ranges[a].base == 0 || ranges[b].base == 0 ||
                ranges[a].base + n <= ranges[b].base ||
                ranges[b].base + n <= ranges[a].base)
                continue;
            fprintf(stderr,
                    "cohort up: %s %ld and %s %ld overlap: %ld processes take "
                    "ports %ld..%ld and %ld..%ld; give bases at least %ld "
                    "apart\n",
                    ranges[a].name, ranges[a].base, ranges[b].name,
                    ranges[b].base, n, ranges[a].base, ranges[a].base + n - 1,
                    ranges[b].base, ranges[b].base + n - 1, n);
            return 2;
        }
    }
    return check_replicas(u->replicas);
}

/* Start replica i as a `cohort server` child that reports on ready_fd
 * (COHORT_READY_FD, see cmd_server.c) once it listens. Returns its pid, or
 * -1 after printing why. The read end of the pipe goes to *ready. */
static pid_t spawn(const struct up_args *u, long i, const char *peers,
                   const char *clients, int *ready)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        logline(LOGLINE_ERROR, "pipe: %s", strerror(errno));
        return -1;
    }
    char id[24], data[1024], metrics[24], voters[24];
    snprintf(voters, sizeof(voters), "%ld", u->replicas);
    snprintf(id, sizeof(id), "%ld", i);
    snprintf(metrics, sizeof(metrics), "%ld", u->metrics_port + i);
    snprintf(data, sizeof(data), "%s/replica-%ld", u->dir, i);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGINT, SIG_IGN); /* the parent stops us with SIGTERM */
        char fd_text[16];
        int fd = fcntl(fds[1], F_DUPFD, 3); /* without O_CLOEXEC */
        snprintf(fd_text, sizeof(fd_text), "%d", fd);
        setenv("COHORT_READY_FD", fd_text, 1);
        char *args[] = {
            "cohort",     "server",      "--id",      id,
            "--peers",    (char *)peers, "--clients", (char *)clients,
            "--data-dir", data,          NULL,        NULL,
            NULL,         NULL,          NULL,        NULL};
        int argn = 10;
        if (u->metrics_port) {
            args[argn++] = "--metrics-port";
            args[argn++] = metrics;
        }
        if (u->spares) {
            /* Epoch 0's voters: the first --replicas; the rest wait
             * outside (every replica must agree on it). */
            args[argn++] = "--voters";
            args[argn++] = voters;
            if (i >= u->replicas)
                args[argn++] = "--spare"; /* asks to be kept caught up */
        }
        execv("/proc/self/exe", args);
        logline(LOGLINE_ERROR, "exec cohort server: %s", strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    if (pid < 0) {
        logline(LOGLINE_ERROR, "fork: %s", strerror(errno));
        close(fds[0]);
        return -1;
    }
    *ready = fds[0];
    return pid;
}

/* Wait until each replica says it is ready (listening on both ports) or
 * closes its pipe without saying so (it exited: it printed why). Returns
 * how many did not start. */
static long wait_ready(long replicas, const int *ready, bool *started)
{
    long failed = 0;
    for (long i = 0; i < replicas; i++) {
        started[i] = false;
        if (ready[i] < 0) {
            failed++;
            continue;
        }
        char byte;
        ssize_t n;
        do
            n = read(ready[i], &byte, 1);
        while (n < 0 && errno == EINTR && !stop_requested);
        started[i] = n == 1;
        failed += !started[i];
        close(ready[i]);
    }
    return failed;
}

static void stop_all(long replicas, pid_t *pids)
{
    for (long i = 0; i < replicas; i++)
        if (pids[i] > 0)
            kill(pids[i], SIGTERM);
    for (long i = 0; i < replicas; i++)
        if (pids[i] > 0)
            waitpid(pids[i], NULL, 0);
}

/* Wait for the replicas to exit (or for Ctrl-C). */
static void supervise(long replicas, pid_t *pids)
{
    long alive = replicas;
    while (alive > 0 && !stop_requested) {
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0)
            continue; /* EINTR from our signal handler */
        for (long i = 0; i < replicas; i++)
            if (pids[i] == pid) {
                logline(LOGLINE_WARN,
                        "replica %ld exited (%s %d); the others go on", i,
                        WIFEXITED(status) ? "status" : "signal",
                        WIFEXITED(status) ? WEXITSTATUS(status)
                                          : WTERMSIG(status));
                pids[i] = 0;
                alive--;
            }
    }
}

static void address_lists(const struct up_args *u, char *peers, char *clients,
                          size_t size)
{
    peers[0] = clients[0] = '\0';
    for (long i = 0; i < u->replicas + u->spares; i++) {
        char one[64];
        snprintf(one, sizeof(one), "%s127.0.0.1:%ld", i ? "," : "",
                 u->peer_port + i);
        strncat(peers, one, size - strlen(peers) - 1);
        snprintf(one, sizeof(one), "%s127.0.0.1:%ld", i ? "," : "",
                 u->client_port + i);
        strncat(clients, one, size - strlen(clients) - 1);
    }
}

int cmd_up(int argc, char **argv)
{
    struct up_args u = {3, 7001, 7101, 0, 0, "data"};
    int rc = parse_args(argc, argv, &u);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    long total = u.replicas + u.spares;
    char peers[512], clients[512];
    address_lists(&u, peers, clients, sizeof(peers));
    logline_setup("up", false);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    pid_t pids[COHORT_REPLICAS_MAX] = {0};
    int ready[COHORT_REPLICAS_MAX];
    bool started[COHORT_REPLICAS_MAX];
    for (long i = 0; i < total; i++) {
        ready[i] = -1;
        pid_t pid = spawn(&u, i, peers, clients, &ready[i]);
        pids[i] = pid > 0 ? pid : 0;
    }
    long failed = wait_ready(total, ready, started);
    if (stop_requested) {
        stop_all(total, pids);
        printf("cohort up: stopped\n");
        return 0;
    }
    if (failed > 0) {
        stop_all(total, pids);
        const char *hint = "if another cluster holds the ports, pick free "
                           "ones with --client-port and --peer-port";
        if (failed == total)
            logline(LOGLINE_ERROR, "no replica started (see above); %s", hint);
        else
            logline(LOGLINE_ERROR,
                    "%ld of %ld replicas did not start (see above); stopped "
                    "the others; %s",
                    failed, total, hint);
        return 1;
    }
    printf("cohort up: %ld replicas on 127.0.0.1, client ports %ld-%ld, data "
           "under %s/\n"
           "cohort up: try: redis-cli -p %ld set greeting hello; Ctrl-C "
           "stops the cluster\n",
           u.replicas, u.client_port, u.client_port + u.replicas - 1, u.dir,
           u.client_port);
    if (u.spares)
        printf("cohort up: %ld spare%s: ids %ld-%ld, client ports %ld-%ld; a "
               "spare takes a voter's place when the voter is silent for 10 "
               "s (cohort members --cluster 127.0.0.1:%ld)\n",
               u.spares, u.spares == 1 ? "" : "s", u.replicas, total - 1,
               u.client_port + u.replicas, u.client_port + total - 1,
               u.client_port);
    if (u.metrics_port)
        printf("cohort up: status page http://127.0.0.1:%ld/, metrics "
               "http://127.0.0.1:%ld/metrics (ports %ld-%ld)\n",
               u.metrics_port, u.metrics_port, u.metrics_port,
               u.metrics_port + total - 1);
    fflush(stdout);
    supervise(total, pids);
    stop_all(total, pids);
    printf("cohort up: stopped\n");
    return 0;
}
