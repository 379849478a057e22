/* cli/cmd_up — `cohort up`: a local cluster of replicas on 127.0.0.1, each a
 * `cohort server` child process, in the foreground. The children's log lines
 * (one per view change) go to this terminal; Ctrl-C stops them all. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/commands.h"
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
    printf("usage: cohort up [--replicas N] [--dir DIR] [--client-port P] "
           "[--peer-port P]\n\n"
           "Start a local cluster in the foreground: N replicas (default 3) "
           "on 127.0.0.1,\nclient ports P, P+1, ... (default 7001), peer "
           "ports from --peer-port (default 7101),\ndata under DIR/replica-N "
           "(default ./data). Ctrl-C stops every replica.\n");
}

static int parse_int(const char *flag, const char *v, long lo, long hi,
                     long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v ? v : "", &end, 10);
    if (!v || errno || *end || x < lo || x > hi) {
        fprintf(stderr,
                "cohort up: %s %s: expected a number from %ld to "
                "%ld\n",
                flag, v ? v : "", lo, hi);
        return 2;
    }
    *out = x;
    return 0;
}

int cmd_up(int argc, char **argv)
{
    long replicas = 3, client_port = 7001, peer_port = 7101;
    const char *dir = "data";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            return 0;
        } else if (!strcmp(a, "--replicas")) {
            rc = parse_int(a, v, 1, COHORT_REPLICAS_MAX, &replicas), i++;
        } else if (!strcmp(a, "--client-port")) {
            rc = parse_int(a, v, 1, 65535 - COHORT_REPLICAS_MAX, &client_port),
            i++;
        } else if (!strcmp(a, "--peer-port")) {
            rc = parse_int(a, v, 1, 65535 - COHORT_REPLICAS_MAX, &peer_port),
            i++;
        } else if (!strcmp(a, "--dir") && v) {
            dir = v, i++;
        } else {
            fprintf(stderr,
                    "cohort up: unknown option '%s'; see 'cohort up "
                    "--help'\n",
                    a);
            return 2;
        }
        if (rc)
            return rc;
    }
    char peers[512] = "", clients[512] = "";
    for (long i = 0; i < replicas; i++) {
        char one[64];
        snprintf(one, sizeof(one), "%s127.0.0.1:%ld", i ? "," : "",
                 peer_port + i);
        strncat(peers, one, sizeof(peers) - strlen(peers) - 1);
        snprintf(one, sizeof(one), "%s127.0.0.1:%ld", i ? "," : "",
                 client_port + i);
        strncat(clients, one, sizeof(clients) - strlen(clients) - 1);
    }
    logline_setup("up", false);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    pid_t pids[COHORT_REPLICAS_MAX] = {0};
    for (long i = 0; i < replicas; i++) {
        char id[24], data[1024];
        snprintf(id, sizeof(id), "%ld", i);
        snprintf(data, sizeof(data), "%s/replica-%ld", dir, i);
        pid_t pid = fork();
        if (pid == 0) {
            signal(SIGINT, SIG_IGN); /* the parent stops us with SIGTERM */
            char *args[] = {"cohort",     "server", "--id",      id,
                            "--peers",    peers,    "--clients", clients,
                            "--data-dir", data,     NULL};
            execv("/proc/self/exe", args);
            logline(LOGLINE_ERROR, "exec cohort server: %s", strerror(errno));
            _exit(127);
        }
        pids[i] = pid;
    }
    printf("cohort up: %ld replicas on 127.0.0.1, client ports %ld-%ld, data "
           "under %s/\n"
           "cohort up: try: redis-cli -p %ld set greeting hello; Ctrl-C "
           "stops the cluster\n",
           replicas, client_port, client_port + replicas - 1, dir, client_port);
    fflush(stdout);
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
    for (long i = 0; i < replicas; i++)
        if (pids[i] > 0)
            kill(pids[i], SIGTERM);
    for (long i = 0; i < replicas; i++)
        if (pids[i] > 0)
            waitpid(pids[i], NULL, 0);
    printf("cohort up: stopped\n");
    return 0;
}
