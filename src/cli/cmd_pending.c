/* cli/cmd_pending — subcommands whose implementation has not landed yet. Each
 * says so and exits 2; each moves to its own cmd_<verb>.c when it lands. */
#include "cli/commands.h"

int cmd_bench(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_not_built("bench", "the benchmarks, issue 5");
}
