/* cli/cmd_server — `cohort server`: one replica (the node) and its RESP
 * server on one libuv loop, until SIGINT or SIGTERM. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "runtime/logline.h"
#include "runtime/node.h"
#include "server/server.h"

struct running {
    struct node *node;
    struct server *server;
    uv_signal_t sigint, sigterm;
    bool stopping;
};

static void on_stop_signal(uv_signal_t *handle, int signum)
{
    struct running *run = handle->data;
    if (run->stopping)
        return;
    run->stopping = true;
    logline(LOGLINE_INFO, "%s received, stopping",
            signum == SIGINT ? "SIGINT" : "SIGTERM");
    server_close(run->server);
    node_close(run->node);
    uv_close((uv_handle_t *)&run->sigint, NULL);
    uv_close((uv_handle_t *)&run->sigterm, NULL);
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
    char source[16];
    snprintf(source, sizeof(source), "r%u", opts.node.self);
    logline_setup(source, opts.node.quiet);
    uv_loop_t *loop = uv_default_loop();
    struct cohort_err err;
    err_clear(&err);
    struct running run = {0};
    run.node = node_open(loop, &opts.node, &err);
    if (!run.node) {
        logline(LOGLINE_ERROR, "%s", err.message);
        uv_run(loop, UV_RUN_DEFAULT);
        server_options_free(&opts);
        return 1;
    }
    run.server = server_open(loop, run.node, &opts.server, &opts.node, &err);
    if (!run.server) {
        logline(LOGLINE_ERROR, "%s", err.message);
        node_close(run.node);
        uv_run(loop, UV_RUN_DEFAULT);
        server_options_free(&opts);
        return 1;
    }
    uv_signal_init(loop, &run.sigint);
    uv_signal_init(loop, &run.sigterm);
    run.sigint.data = run.sigterm.data = &run;
    uv_signal_start(&run.sigint, on_stop_signal, SIGINT);
    uv_signal_start(&run.sigterm, on_stop_signal, SIGTERM);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    server_options_free(&opts);
    return 0;
}
