/* cli/cmd_members — `cohort members [--cluster host:port]`: the group's
 * members as its primary sees them: id, client address, role, health,
 * link, the op each has and its lag behind the primary. Asks the member
 * given, follows it to the primary (so the figures are the primary's own),
 * and prints one line per member; then whether a transfer is under way,
 * and the primary's latest view changes with their times and causes (INFO
 * replication's view_history lines). */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/rpc.h"

#define MEMBERS_MAX 16u
#define FIELD_MAX 256u

/* key=value from a "memberN:" line's comma-separated list, into out ("-"
 * if absent). */
static void member_field(const char *line, const char *key, char *out,
                         size_t size)
{
    if (!cli_list_field(line, key, out, size))
        snprintf(out, size, "-");
}

static int usage(int code)
{
    fprintf(code ? stderr : stdout,
            "usage: cohort members [--cluster host:port]   (default "
            "127.0.0.1:7001)\n"
            "List the epoch, its voters and learners, and the members as the "
            "primary sees\nthem: id, addresses, role (primary, backup, "
            "learner, or outside: a spare\nor removed), health, link, op and "
            "lag. COHORT_PASSWORD (and "
            "COHORT_USER) log in first.\n");
    return code;
}

static void print_members(const char *text, size_t len)
{
    char view[32], primary[FIELD_MAX], count_text[16], op[32];
    if (!cli_info_field(text, len, "view:", view, sizeof(view)))
        snprintf(view, sizeof(view), "?");
    if (!cli_info_field(text, len, "primary:", primary, sizeof(primary)))
        snprintf(primary, sizeof(primary), "?");
    if (!cli_info_field(text, len, "op:", op, sizeof(op)))
        snprintf(op, sizeof(op), "-");
    uint32_t count = 0;
    if (cli_info_field(text, len, "members:", count_text, sizeof(count_text)))
        count = (uint32_t)strtoul(count_text, NULL, 10);
    if (count > MEMBERS_MAX)
        count = MEMBERS_MAX;
    char epoch[FIELD_MAX], voters[FIELD_MAX] = "-", learners[FIELD_MAX] = "-";
    if (!cli_info_field(text, len, "epoch:", epoch, sizeof(epoch)))
        snprintf(epoch, sizeof(epoch), "0");
    else {
        member_field(epoch, "voters", voters, sizeof(voters));
        epoch[strcspn(epoch, ",")] = '\0';
    }
    char lline[FIELD_MAX];
    if (cli_info_field(text, len, "learners:", lline, sizeof(lline)))
        member_field(lline, "ids", learners, sizeof(learners));
    printf("epoch %s, view %s, primary %s; voters %s, learners %s\n", epoch,
           view, primary, voters[0] ? voters : "-",
           learners[0] ? learners : "-");
    printf("%-3s %-22s %-22s %-8s %-9s %-5s %-10s %s\n", "ID", "CLIENT ADDRESS",
           "PEER ADDRESS", "ROLE", "HEALTH", "LINK", "OP", "LAG");
    for (uint32_t i = 0; i < count; i++) {
        char name[24], line[FIELD_MAX * 2];
        snprintf(name, sizeof(name), "member%" PRIu32 ":", i);
        if (!cli_info_field(text, len, name, line, sizeof(line)))
            continue;
        char addr[FIELD_MAX], peer[FIELD_MAX], role[32], health[32], link[16],
            mop[32], lag[64];
        member_field(line, "addr", addr, sizeof(addr));
        member_field(line, "peer", peer, sizeof(peer));
        member_field(line, "role", role, sizeof(role));
        member_field(line, "health", health, sizeof(health));
        member_field(line, "link", link, sizeof(link));
        member_field(line, "op", mop, sizeof(mop));
        member_field(line, "lag", lag, sizeof(lag));
        char sent[32], size[32];
        member_field(line, "snapshot_sent", sent, sizeof(sent));
        member_field(line, "snapshot_size", size, sizeof(size));
        unsigned long long total = strtoull(size, NULL, 10);
        if (strcmp(size, "-") != 0 && total > 0) {
            /* State transfer under way: how far the snapshot got. */
            size_t used = strlen(lag);
            snprintf(lag + used, sizeof(lag) - used, " (snapshot %llu%%)",
                     strtoull(sent, NULL, 10) * 100ull / total);
        }
        if (!strcmp(health, "self"))
            snprintf(mop, sizeof(mop), "%s", op);
        printf("%-3" PRIu32 " %-22s %-22s %-8s %-9s %-5s %-10s %s\n", i, addr,
               peer, role, health, link, mop, lag);
    }
}

/* After a blank line: a transfer under way, if one is; then "recent view
 * changes" and one line each, oldest first: time (UTC), view, primary, the
 * primary's role in it, cause. */
static void print_history(const char *text, size_t len)
{
    char value[32];
    if (cli_info_field(text, len, "transfer_in_progress:", value,
                       sizeof(value)) &&
        !strcmp(value, "1")) {
        char target[32] = "?";
        cli_info_field(text, len, "transfer_target:", target, sizeof(target));
        printf("\na leadership transfer to replica %s is under way\n", target);
    }
    uint32_t count = 0;
    if (cli_info_field(text, len, "view_history:", value, sizeof(value)))
        count = (uint32_t)strtoul(value, NULL, 10);
    if (count == 0)
        return;
    printf("\nrecent view changes (as the primary saw them):\n");
    for (uint32_t k = 0; k < count && k < MEMBERS_MAX; k++) {
        char name[32], line[FIELD_MAX], view[32], primary[32], role[32],
            cause[32], at[32], when[32] = "?";
        snprintf(name, sizeof(name), "view_history%" PRIu32 ":", k);
        if (!cli_info_field(text, len, name, line, sizeof(line)))
            continue;
        member_field(line, "view", view, sizeof(view));
        member_field(line, "primary", primary, sizeof(primary));
        member_field(line, "role", role, sizeof(role));
        member_field(line, "cause", cause, sizeof(cause));
        member_field(line, "time_ms", at, sizeof(at));
        unsigned long long ms = strtoull(at, NULL, 10);
        time_t secs = (time_t)(ms / 1000u);
        struct tm tm;
        if (ms > 0 && gmtime_r(&secs, &tm))
            snprintf(when, sizeof(when), "%02d:%02d:%02d.%03llu", tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ms % 1000u);
        printf("  %s UTC  view %-6s primary %-3s (here: %s)  cause: %s\n", when,
               view, primary, role, cause);
    }
}

int cmd_members(int argc, char **argv)
{
    const char *addr = "127.0.0.1:7001";
    /* --cluster and a positional address both name the member to ask:
     * one of each is refused (the last used to win in silence). */
    const char *by_flag = NULL, *by_position = NULL;
    struct cli_flag_seen seen = {.count = 0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return usage(0);
        if (!strcmp(argv[i], "--cluster") && i + 1 == argc)
            return cli_flag_needs_value("members", "cluster");
        if (!strcmp(argv[i], "--cluster") &&
            cli_flag_once("members", &seen, "cluster", argv[i + 1]))
            return 2;
        if (!strcmp(argv[i], "--cluster"))
            addr = by_flag = argv[++i];
        else if (argv[i][0] == '-')
            return cli_flag_unknown("members", argv[i]);
        else if (by_position == NULL)
            addr = by_position = argv[i];
        else {
            /* One line, like the other refusals (the whole usage text
             * used to follow it). */
            fprintf(stderr,
                    "cohort members: the addresses %s and %s both name the "
                    "member to ask; give one of them\n",
                    by_position, argv[i]);
            return 2;
        }
    }
    if (by_flag && by_position) {
        fprintf(stderr,
                "cohort members: --cluster %s and the address %s both name "
                "the member to ask; give one of them\n",
                by_flag, by_position);
        return 2;
    }
    if (cli_flag_address("members", addr))
        return 2;
    struct cli_rpc c;
    struct cohort_err err;
    if (cli_rpc_open_primary(&c, addr, 1u << 16, &err) != 0) {
        /* "no primary reachable" (EAGAIN) says what to do already: the
         * hint again would be a second, contradicting answer. */
        if (err.code == -COHORT_EAGAIN)
            fprintf(stderr, "cohort members: %s\n", err.message);
        else
            fprintf(stderr,
                    "cohort members: %s; is the cluster running (cohort "
                    "status %s)?\n",
                    err.message, addr);
        return 1;
    }
    struct resp_arg info[] = {{"INFO", 4}, {"replication", 11}};
    int rc = cli_rpc_expect(&c, 2, info, RESP_TYPE_BULK, &err);
    if (rc == 0) {
        print_members(c.nodes[0].str, c.nodes[0].len);
        print_history(c.nodes[0].str, c.nodes[0].len);
    } else
        fprintf(stderr, "cohort members: %s\n", err.message);
    cli_rpc_close(&c);
    return rc == 0 ? 0 : 1;
}
