/* cli/commands — the subcommands of `cohort`. Each takes argc/argv starting
 * at its own name and returns the process exit code: 0 success, 1 failure,
 * 2 bad usage or not implemented. */
#ifndef COHORT_CLI_COMMANDS_H
#define COHORT_CLI_COMMANDS_H

struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};

int cmd_up(int argc, char **argv);
int cmd_server(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_members(int argc, char **argv);
int cmd_sim(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_cli(int argc, char **argv);
int cmd_transfer(int argc, char **argv);
int cmd_add(int argc, char **argv);
int cmd_remove(int argc, char **argv);
int cmd_replace(int argc, char **argv);
int cmd_rejuvenate(int argc, char **argv);

/* The process's whole argv (main's), NULL-terminated: what `cohort server`
 * re-executes itself with after COHORT.REJUVENATE. */
extern char **cli_process_argv;

/* Print "not implemented yet" for a subcommand and return 2. */
int cli_not_built(const char *name, const char *issue);

#endif
