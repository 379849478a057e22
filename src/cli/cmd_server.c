/* cli/cmd_server — `cohort server`: one replica (the node) and its RESP
 * server on one libuv loop, until SIGINT or SIGTERM, or until
 * COHORT.REJUVENATE: then it stops the same way (the storage thread's work
 * finished, ports and the data directory's lock released) and re-executes
 * its binary with the same arguments (runtime/reexec), keeping its PID.
 *
 * When started by `cohort up`, COHORT_READY_FD names a pipe on which it
 * writes one byte once both ports listen, then closes it: its parent tells
 * a replica that started from one that exited (closing the pipe unwritten). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "runtime/logline.h"
#include "runtime/node.h"
#include "runtime/reexec.h"
#include "server/server.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED_BUILD 1
#endif
#endif
#ifndef SANITIZED_BUILD
#define SANITIZED_BUILD 0
#endif

struct running {
    uv_loop_t *loop;
    struct node *node;
    struct server *server;
    uv_signal_t sigint, sigterm;
    bool stopping;
    /* COHORT.REJUVENATE: re-execute once the loop has ended; the timer
     * gives the command's +OK a moment to reach its client first. */
    bool restart;
    bool restart_timer_open;
    uv_timer_t restart_timer;
};

static void stop(struct running *run)
{
    if (run->stopping)
        return;
    run->stopping = true;
    if (run->restart_timer_open) {
        run->restart_timer_open = false;
        uv_close((uv_handle_t *)&run->restart_timer, NULL);
    }
    server_close(run->server);
    node_close(run->node);
    uv_close((uv_handle_t *)&run->sigint, NULL);
    uv_close((uv_handle_t *)&run->sigterm, NULL);
}

static void on_stop_signal(uv_signal_t *handle, int signum)
{
    struct running *run = handle->data;
    if (run->stopping)
        return;
    logline(LOGLINE_INFO, "%s received, stopping",
            signum == SIGINT ? "SIGINT" : "SIGTERM");
    run->restart = false; /* a signal means stop, restart or not */
    stop(run);
}

#define RESTART_REPLY_MS 50 /* for the +OK to leave before the ports close */

static void on_restart_timer(uv_timer_t *timer)
{
    struct running *run = timer->data;
    logline(LOGLINE_INFO, "rejuvenating: stopping, then re-executing");
    stop(run);
}

/* server_config.rejuvenate: stop soon, then re-execute (cmd_server). */
static void on_rejuvenate(void *ctx)
{
    struct running *run = ctx;
    if (run->stopping || run->restart)
        return;
    run->restart = true;
    uv_timer_init(run->loop, &run->restart_timer);
    run->restart_timer_open = true;
    run->restart_timer.data = run;
    uv_timer_start(&run->restart_timer, on_restart_timer, RESTART_REPLY_MS, 0);
}

/* Tell `cohort up` (if it started us) that both ports listen. */
static void report_ready(void)
{
    const char *text = getenv("COHORT_READY_FD");
    if (text == NULL)
        return;
    char *end = NULL;
    long fd = strtol(text, &end, 10);
    unsetenv("COHORT_READY_FD");
    if (end == text || *end != '\0' || fd < 3 || fd > 65535)
        return;
    ssize_t n = write((int)fd, "1", 1);
    (void)n; /* the parent reads EOF instead: it reports the failure */
    close((int)fd);
}

int cmd_server(int argc, char **argv)
{
    struct server_options opts;
    int rc = server_options_parse(&opts, argc, argv);
    if (rc != 0) {
        server_options_free(&opts);
        return rc == 1 ? 0 : 2;
    }
    signal(SIGPIPE, SIG_IGN);
    reexec_init();
    char source[16];
    snprintf(source, sizeof(source), "r%u", opts.node.self);
    logline_setup(source, opts.node.quiet);
    if (opts.node.replica_count % 2 == 0)
        logline(LOGLINE_WARN,
                "a group of %u replicas survives no more failures than a "
                "group of %u; an odd size is usual",
                opts.node.replica_count, opts.node.replica_count - 1);
    /* A sanitizer build frees everything, for its leak check. */
    opts.node.keep_store_on_close = !SANITIZED_BUILD;
    uv_loop_t *loop = uv_default_loop();
    struct cohort_err err;
    err_clear(&err);
    struct running run = {0};
    /* Every file the flags name, before the data directory is created or
     * opened: a refused start leaves nothing behind. */
    if (node_files_check(&opts.node, &err) != 0 ||
        server_files_check(&opts.server, &err) != 0) {
        logline(LOGLINE_ERROR, "%s", err.message);
        server_options_free(&opts);
        return 1;
    }
    run.node = node_open(loop, &opts.node, &err);
    if (!run.node) {
        logline(LOGLINE_ERROR, "%s", err.message);
        uv_run(loop, UV_RUN_DEFAULT);
        server_options_free(&opts);
        return 1;
    }
    opts.server.rejuvenate = on_rejuvenate;
    opts.server.rejuvenate_ctx = &run;
    run.loop = loop;
    run.server = server_open(loop, run.node, &opts.server, &opts.node, &err);
    if (!run.server) {
        logline(LOGLINE_ERROR, "%s", err.message);
        node_close(run.node);
        uv_run(loop, UV_RUN_DEFAULT);
        server_options_free(&opts);
        return 1;
    }
    report_ready();
    uv_signal_init(loop, &run.sigint);
    uv_signal_init(loop, &run.sigterm);
    run.sigint.data = run.sigterm.data = &run;
    uv_signal_start(&run.sigint, on_stop_signal, SIGINT);
    uv_signal_start(&run.sigterm, on_stop_signal, SIGTERM);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    server_options_free(&opts);
    if (run.restart) {
        logline(LOGLINE_INFO, "rejuvenating: stopped; re-executing the binary");
        fflush(NULL);
        rc = reexec_self(cli_process_argv, &err);
        logline(LOGLINE_ERROR, "cannot restart: %s; start it again by hand",
                err.message);
        return 1;
    }
    return 0;
}
