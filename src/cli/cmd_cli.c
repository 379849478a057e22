/* cli/cmd_cli — `cohort cli`: run commands against a group through
 * libcohort-client (the project uses its own client): writes exactly once
 * and failover hidden within the deadline. One command from the arguments,
 * or one per line of stdin (split at whitespace, no quoting). Replies print
 * as redis-cli prints them when not on a terminal, with (integer), (nil)
 * and (error) marks. Exit 0 when every command got a reply that is not an
 * error, 1 otherwise, 2 on bad usage.
 *
 * `cohort cli [options] watch [--prefix] [--from REV] [--count N] NAME`
 * follows a key (or prefix) through the library's resumable watch, one
 * line per change ("<revision> set|del|expire <key> <value>"), until N
 * changes or a refusal (exit 1 with the message). Redis's own WATCH is
 * connection state, which the library does not keep, so the word is free
 * for this. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cohort_client.h"

#define CLI "cli"
#define MEMBERS_DEFAULT "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"
#define LINE_ARGS_MAX 256

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cohort cli [--members host:port,...] [--user NAME] "
            "[--password PW]\n"
            "                  [--local] [--deadline-ms N] [--tls "
            "--tls-cacert F [--tls-cert F --tls-key F]]\n"
            "                  [COMMAND [ARG...]]\n"
            "       cohort cli [options] watch [--prefix] [--from REV] "
            "[--count N] NAME\n\n"
            "Runs COMMAND (or each line of stdin) through libcohort-client:\n"
            "writes go to the primary exactly once and a failover within\n"
            "the deadline (default %u ms) is retried, not reported.\n"
            "--members   client addresses (default %s)\n"
            "-h HOST -p PORT  as redis-cli: one member (default 127.0.0.1, "
            "7001);\n"
            "            the others are discovered\n"
            "--password  also from COHORT_PASSWORD; --user from COHORT_USER\n"
            "--local     reads from any member (READONLY), maybe stale\n"
            "watch       print each change of key NAME (every key under\n"
            "            NAME with --prefix) after revision REV (default:\n"
            "            now), resumed on another member after a failure\n",
            COHORT_CLIENT_DEADLINE_MS_DEFAULT, MEMBERS_DEFAULT);
}

static enum cli_flag_kind flag_kind(const char *name)
{
    static const struct cli_flag_spec specs[] = {
        {"local", NULL, NULL},        {"tls", NULL, NULL},
        {"help", NULL, NULL},         {"members", "H:P,...", NULL},
        {"user", "NAME", NULL},       {"password", "PASSWORD", NULL},
        {"tls-cacert", "FILE", NULL}, {"tls-cert", "FILE", NULL},
        {"tls-key", "FILE", NULL},    {"deadline-ms", "MS", NULL},
    };
    return cli_flag_kind_in(specs, sizeof(specs) / sizeof(specs[0]), name);
}

static void print_reply(const struct cohort_reply *r, int indent)
{
    switch (r->type) {
    case COHORT_REPLY_INTEGER:
    case COHORT_REPLY_BOOLEAN:
        printf("(integer) %lld\n", (long long)r->integer);
        return;
    case COHORT_REPLY_NIL:
        printf("(nil)\n");
        return;
    case COHORT_REPLY_ERROR:
        printf("(error) %s\n", r->str);
        return;
    case COHORT_REPLY_ARRAY:
    case COHORT_REPLY_MAP:
        if (r->elements == 0)
            printf("(empty array)\n");
        for (size_t i = 0; i < r->elements; i++) {
            printf("%*s%zu) ", i ? indent : 0, "", i + 1);
            print_reply(r->element[i], indent + 3);
        }
        return;
    default:
        fwrite(r->str, 1, r->len, stdout);
        printf("\n");
        return;
    }
}

/* One command; false when it failed or the reply is an error. */
static bool run_one(struct cohort_client *c, int flags, int argc,
                    const char *const *argv)
{
    struct cohort_reply *r = NULL;
    int rc = cohort_client_call(c, flags, argc, argv, NULL, &r);
    if (rc != 0) {
        fprintf(stderr, "cohort cli: %s (%s)\n", cohort_client_error(c),
                cohort_err_name(rc));
        return false;
    }
    print_reply(r, 0);
    bool ok = r->type != COHORT_REPLY_ERROR;
    cohort_reply_free(r);
    return ok;
}

static bool run_lines(struct cohort_client *c, int flags)
{
    char line[65536];
    bool ok = true;
    while (fgets(line, sizeof(line), stdin) != NULL) {
        const char *argv[LINE_ARGS_MAX];
        int argc = 0;
        for (char *save = NULL, *t = strtok_r(line, " \t\r\n", &save);
             t != NULL && argc < LINE_ARGS_MAX;
             t = strtok_r(NULL, " \t\r\n", &save))
            argv[argc++] = t;
        if (argc > 0)
            ok = run_one(c, flags, argc, argv) && ok;
    }
    return ok;
}

struct cli_opts {
    struct cohort_client_options o;
    const char *members[COHORT_CLIENT_MEMBERS_MAX];
    char members_buf[4096];
    int flags;
};

static int take_flag(struct cli_opts *p, const struct cli_flag *f)
{
    uint64_t n = 0;
    if (!strcmp(f->name, "help")) {
        usage(stdout);
        exit(0);
    } else if (!strcmp(f->name, "local")) {
        p->flags |= COHORT_CALL_READ_LOCAL;
    } else if (!strcmp(f->name, "tls")) {
        p->o.tls = 1;
    } else if (!strcmp(f->name, "members")) {
        snprintf(p->members_buf, sizeof(p->members_buf), "%s", f->value);
    } else if (!strcmp(f->name, "user")) {
        p->o.username = f->value;
    } else if (!strcmp(f->name, "password")) {
        p->o.password = f->value;
    } else if (!strcmp(f->name, "tls-cacert")) {
        p->o.tls_ca_cert_file = f->value;
    } else if (!strcmp(f->name, "tls-cert")) {
        p->o.tls_cert_file = f->value;
    } else if (!strcmp(f->name, "tls-key")) {
        p->o.tls_key_file = f->value;
    } else if (!strcmp(f->name, "deadline-ms")) {
        if (cli_flag_u64(CLI, f->name, f->value, 1, 3600000, &n) != 0)
            return 2;
        p->o.deadline_ms = (uint32_t)n;
    } else {
        return cli_flag_bad(CLI, f->name, f->value, "unknown flag");
    }
    return 0;
}

static int split_members(struct cli_opts *p)
{
    size_t count = 0;
    for (char *save = NULL, *m = strtok_r(p->members_buf, ",", &save);
         m != NULL; m = strtok_r(NULL, ",", &save)) {
        if (count == COHORT_CLIENT_MEMBERS_MAX)
            return cli_flag_bad(CLI, "members", "...", "at most 16");
        if (cli_flag_address(CLI, m))
            return 2;
        p->members[count++] = m;
    }
    p->o.members = p->members;
    p->o.member_count = count;
    return 0;
}

/* ------------------------------------------------------------ watch */

/* A TLS file the library could not open would be named by the library on
 * stderr, with the open's generic failure after it, and OpenSSL says
 * little about a missing file: check each one here first, in one line. */
static int check_tls_files(const struct cli_opts *p)
{
    if (!p->o.tls)
        return 0;
    const char *flag[3] = {"tls-cacert", "tls-cert", "tls-key"};
    const char *path[3] = {p->o.tls_ca_cert_file, p->o.tls_cert_file,
                           p->o.tls_key_file};
    for (int i = 0; i < 3; i++) {
        if (path[i] == NULL)
            continue;
        FILE *f = fopen(path[i], "r");
        if (f == NULL) {
            fprintf(stderr,
                    "cohort cli: --%s %s: %s; pass a readable PEM "
                    "file\n",
                    flag[i], path[i], strerror(errno));
            return 2;
        }
        fclose(f);
    }
    return 0;
}

static long watch_left; /* changes still to print; <0: no limit */

static void on_change(struct cohort_watch *w,
                      const struct cohort_watch_event *e, void *ctx)
{
    (void)w;
    (void)ctx;
    static const char *const kinds[] = {"?", "set", "del", "expire"};
    printf("%" PRIu64 " %s ", e->revision, kinds[e->kind]);
    fwrite(e->key, 1, e->key_len, stdout);
    if (e->value != NULL) {
        printf(" ");
        fwrite(e->value, 1, e->value_len, stdout);
    }
    printf("\n");
    fflush(stdout);
    if (watch_left > 0)
        watch_left--;
}

static int watch_usage(const char *why)
{
    fprintf(stderr,
            "cohort cli watch: %s; use cohort cli [options] watch "
            "[--prefix] [--from REV] [--count N] NAME\n",
            why);
    return 2;
}

static int run_watch(const struct cli_opts *p, int argc, char **argv)
{
    int flags = 0;
    uint64_t from = 0, count = 0;
    int i = 1;
    for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
        if (!strcmp(argv[i], "--prefix")) {
            flags |= COHORT_WATCH_PREFIX;
            continue;
        }
        bool is_from = !strcmp(argv[i], "--from");
        if (!is_from && strcmp(argv[i], "--count") != 0)
            return cli_flag_unknown(CLI, argv[i]);
        if (i + 1 == argc)
            return cli_flag_needs_value(CLI, argv[i] + 2);
        if (cli_flag_u64(CLI, argv[i] + 2, argv[i + 1], is_from ? 0 : 1,
                         is_from ? INT64_MAX - 1 : INT64_MAX,
                         is_from ? &from : &count) != 0)
            return 2;
        if (is_from)
            flags |= COHORT_WATCH_AFTER;
        i++;
    }
    if (i + 1 != argc)
        return watch_usage("give one key or prefix");
    struct cohort_watch *w = NULL;
    int rc = cohort_watch_open(&w, &p->o, flags, argv[i], strlen(argv[i]), from,
                               on_change, NULL);
    if (rc != 0) {
        /* A TLS file's failure (ECONFIG) is on stderr already. */
        if (rc != -COHORT_ECONFIG)
            fprintf(stderr, "cohort cli watch: %s\n", cohort_strerror(rc));
        return 2;
    }
    watch_left = count > 0 ? (long)count : -1;
    while (rc == 0 && watch_left != 0)
        rc = cohort_watch_run(w, 1000);
    if (rc != 0)
        fprintf(stderr, "cohort cli watch: %s (%s)\n", cohort_watch_error(w),
                cohort_err_name(rc));
    cohort_watch_close(w);
    return rc == 0 ? 0 : 1;
}

int cmd_cli(int argc, char **argv)
{
    struct cli_opts p;
    memset(&p, 0, sizeof(p));
    cohort_client_options_init(&p.o);
    snprintf(p.members_buf, sizeof(p.members_buf), "%s", MEMBERS_DEFAULT);
    p.o.password = getenv("COHORT_PASSWORD");
    p.o.username = getenv("COHORT_USER");
    int i = 1;
    struct cli_flag_seen seen = {.count = 0};
    const char *host = NULL, *port = NULL;
    while (i < argc && argv[i][0] == '-') {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "-p")) {
            /* redis-cli's spelling: one member, the others discovered */
            uint64_t n = 0;
            if (i + 1 == argc) {
                fprintf(stderr,
                        "cohort cli: %s needs a value; see 'cohort "
                        "cli --help'\n",
                        argv[i]);
                return 2;
            }
            if (argv[i][1] == 'p' &&
                (!cli_decimal_u64(argv[i + 1], &n) || n == 0 || n > 65535)) {
                fprintf(stderr,
                        "cohort cli: -p %s: expected a decimal number from 1 "
                        "to 65535; see 'cohort cli --help'\n",
                        argv[i + 1]);
                return 2;
            }
            *(argv[i][1] == 'h' ? &host : &port) = argv[i + 1];
            i += 2;
            continue;
        }
        if (strncmp(argv[i], "--", 2) != 0) {
            fprintf(stderr,
                    "cohort cli: unknown flag %s (the short ones are -h HOST "
                    "and -p PORT); see 'cohort cli --help'\n",
                    argv[i]);
            return 2;
        }
        struct cli_flag f;
        if (cli_flag_next(CLI, argc, argv, &i, flag_kind, &f) != 0 ||
            take_flag(&p, &f) != 0 ||
            (flag_kind(f.name) == CLI_FLAG_VALUE &&
             cli_flag_once(CLI, &seen, f.name, f.value) != 0))
            return 2;
        i++;
    }
    if (host != NULL || port != NULL)
        snprintf(p.members_buf, sizeof(p.members_buf), "%s:%s",
                 host ? host : "127.0.0.1", port ? port : "7001");
    if (split_members(&p) != 0 || check_tls_files(&p) != 0)
        return 2;
    if (i < argc && !strcasecmp(argv[i], "watch"))
        return run_watch(&p, argc - i, argv + i);
    struct cohort_client *c = NULL;
    int rc = cohort_client_open(&c, &p.o);
    if (rc != 0) {
        /* A TLS file's failure (ECONFIG) is on stderr already. */
        if (rc != -COHORT_ECONFIG)
            fprintf(stderr,
                    "cohort cli: %s: check --members (host:port,...) "
                    "and that --user comes with --password\n",
                    cohort_strerror(rc));
        return 2;
    }
    bool ok = i < argc
                  ? run_one(c, p.flags, argc - i, (const char *const *)argv + i)
                  : run_lines(c, p.flags);
    cohort_client_close(c);
    return ok ? 0 : 1;
}
