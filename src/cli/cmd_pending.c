/* cli/cmd_pending — subcommands whose implementation has not landed yet. Each
 * says so and exits 2; each moves to its own cmd_<verb>.c when it lands. */
#include "cli/commands.h"

int cmd_up(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_not_built("up", "the real-cluster runtime and server, issue 4");
}

int cmd_server(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_not_built("server", "the runtime and server, issue 4");
}

int cmd_status(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_not_built("status", "the runtime and server, issue 4");
}

int cmd_bench(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_not_built("bench", "the benchmarks, issue 5");
}
