/* cli/main — the `cohort` command: one entry point that dispatches to the
 * subcommands (server, up, status, members, add, remove, replace,
 * transfer, rejuvenate,
 * cli, backup, restore,
 * sim, bench). A subcommand that is not built yet says so and exits 2; it never
 * pretends to work. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cohort.h"

static const struct cli_command commands[] = {
    {"up", "start a local 3-replica cluster in the foreground", cmd_up},
    {"server", "run one replica (flags or a config file)", cmd_server},
    {"status", "show the cluster as one member sees it", cmd_status},
    {"members", "list the members as the primary sees them", cmd_members},
    {"add", "add a replica of --peers to the membership (learner, then voter)",
     cmd_add},
    {"remove", "take a replica out of the membership", cmd_remove},
    {"replace", "put a caught-up replica in a voter's place", cmd_replace},
    {"transfer", "hand the primary role to a caught-up backup", cmd_transfer},
    {"rejuvenate", "restart every replica in turn, without downtime",
     cmd_rejuvenate},
    {"cli", "run commands through the client library (exactly once)", cmd_cli},
    {"backup", "export a live cluster's store into a file", cmd_backup},
    {"restore", "put a backup into a new replica's data directory",
     cmd_restore},
    {"sim", "run the deterministic simulator over seeds", cmd_sim},
    {"bench", "measure throughput and latency of a cluster", cmd_bench},
};
#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    fprintf(out, "usage: cohort <command> [options]\n"
                 "       cohort --help | --version\n\ncommands:\n");
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'cohort <command> --help' shows a command's options.\n");
}

int cli_not_built(const char *name, const char *issue)
{
    fprintf(stderr,
            "cohort %s: not implemented yet (%s); see README.md for what "
            "works today\n",
            name, issue);
    return 2;
}

char **cli_process_argv;

int main(int argc, char **argv)
{
    cli_process_argv = argv;
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") ||
        !strcmp(name, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(name, "--version") || !strcmp(name, "version")) {
        printf("cohort %s\n", cohort_version());
        return 0;
    }
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        if (!strcmp(name, commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr,
            "cohort: unknown command '%s'; run 'cohort --help' for the list\n",
            name);
    return 2;
}
