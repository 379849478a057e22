/* cli/rpc — a blocking RESP connection for the tools. See rpc.h. */
#include "cli/rpc.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "runtime/addr.h"

/* Connect to addr (host:port, [v6]:port; a host name is resolved), with
 * timeout_s bounding the connect as well as each read and write later: a
 * host that drops packets fails in timeout_s instead of the kernel's
 * minutes of SYN retries. */
static int connect_addr(const char *addr, int timeout_s, struct cohort_err *err)
{
    char host[ADDR_HOST_MAX];
    uint16_t port = 0;
    if (addr_split(addr, host, sizeof(host), &port, err) != 0)
        return -COHORT_EINVAL;
    char service[8];
    snprintf(service, sizeof(service), "%u", (unsigned)port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0)
        return err_set(err, -COHORT_EIO, "%s: %s", addr, gai_strerror(rc));
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {timeout_s, 0};
    if (fd >= 0) {
        /* Linux bounds connect() by the send timeout. */
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        int e = errno == EINPROGRESS || errno == EAGAIN ? ETIMEDOUT : errno;
        err_sys(err, e, "connect to %s", addr);
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -COHORT_EIO;
    }
    freeaddrinfo(res);
    return fd;
}

int cli_rpc_open(struct cli_rpc *c, const char *addr, size_t reply_size_max,
                 int timeout_s, struct cohort_err *err)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    snprintf(c->addr, sizeof(c->addr), "%s", addr);
    c->cap = reply_size_max;
    c->buf = malloc(c->cap);
    if (c->buf == NULL)
        return err_set(err, -COHORT_ENOMEM, "a reply buffer of %zu bytes",
                       c->cap);
    int fd = connect_addr(addr, timeout_s, err);
    if (fd < 0) {
        cli_rpc_close(c);
        return fd;
    }
    c->fd = fd;
    return 0;
}

static int send_all(struct cli_rpc *c, const char *data, size_t size,
                    struct cohort_err *err)
{
    while (size > 0) {
        ssize_t n = write(c->fd, data, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return err_sys(err, errno, "write to %s", c->addr);
        data += n;
        size -= (size_t)n;
    }
    return 0;
}

/* Read until one whole reply is in the buffer. */
static int read_reply(struct cli_rpc *c, struct cohort_err *err)
{
    struct resp_reply_limits limits = {8, c->cap, CLI_RPC_NODES_MAX};
    for (;;) {
        struct resp_reply reply = {.nodes = c->nodes,
                                   .node_capacity = CLI_RPC_NODES_MAX};
        enum resp_result r =
            resp_reply_parse(c->buf, c->have, &limits, &reply, err);
        if (r == RESP_COMPLETE) {
            c->node_count = reply.node_count;
            c->consumed = reply.consumed;
            return 0;
        }
        if (r != RESP_NEED_MORE)
            return err_set(err, -COHORT_EPROTO,
                           "%s answered what cohort does not send", c->addr);
        if (c->have == c->cap)
            return err_set(err, -COHORT_ETOOBIG,
                           "%s sent a reply over %zu bytes", c->addr, c->cap);
        ssize_t n = read(c->fd, c->buf + c->have, c->cap - c->have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            return err_set(err, -COHORT_EIO, "%s closed the connection",
                           c->addr);
        if (n < 0)
            return err_sys(err, errno, "read from %s", c->addr);
        c->have += (size_t)n;
    }
}

int cli_rpc_call(struct cli_rpc *c, uint32_t argc, const struct resp_arg *argv,
                 struct cohort_err *err)
{
    /* Drop the previous reply's bytes. */
    memmove(c->buf, c->buf + c->consumed, c->have - c->consumed);
    c->have -= c->consumed;
    c->consumed = 0;
    c->node_count = 0;
    struct resp_buf out;
    resp_buf_init(&out, 2);
    resp_write_command(&out, argc, argv);
    int rc = out.ok ? send_all(c, out.data, out.size, err)
                    : err_set(err, -COHORT_ENOMEM, "a command");
    resp_buf_deinit(&out);
    return rc != 0 ? rc : read_reply(c, err);
}

void cli_rpc_close(struct cli_rpc *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    c->buf = NULL;
    c->fd = -1;
}

uint64_t cli_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void cli_pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

bool cli_transfer_retryable(const char *msg, size_t len)
{
    static const char *const words[] = {"not caught up", "not responding",
                                        "already under way", "not the primary"};
    for (size_t k = 0; k < sizeof(words) / sizeof(words[0]); k++)
        if (memmem(msg, len, words[k], strlen(words[k])) != NULL)
            return true;
    return false;
}

int cli_rpc_expect(struct cli_rpc *c, uint32_t argc,
                   const struct resp_arg *argv, enum resp_type want,
                   struct cohort_err *err)
{
    int rc = cli_rpc_call(c, argc, argv, err);
    if (rc != 0)
        return rc;
    const struct resp_node *n = &c->nodes[0];
    if (n->type == RESP_TYPE_ERROR)
        return err_set(err, -COHORT_EIO, "%s: %.*s", c->addr, (int)n->len,
                       n->str);
    if (n->type != want)
        return err_set(err, -COHORT_EPROTO, "%s: unexpected reply", c->addr);
    return 0;
}

bool cli_info_field(const char *text, size_t len, const char *name, char *out,
                    size_t size)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i + nlen < len; i++) {
        if ((i > 0 && text[i - 1] != '\n') || memcmp(text + i, name, nlen))
            continue;
        size_t j = i + nlen, k = 0;
        while (j < len && text[j] != '\r' && text[j] != '\n' && k + 1 < size)
            out[k++] = text[j++];
        out[k] = '\0';
        return true;
    }
    return false;
}

int cli_rpc_auth(struct cli_rpc *c, struct cohort_err *err)
{
    const char *password = getenv("COHORT_PASSWORD");
    const char *user = getenv("COHORT_USER");
    if (password == NULL || password[0] == '\0')
        return 0;
    struct resp_arg args[3] = {{"AUTH", 4}};
    uint32_t argc = 1;
    if (user != NULL && user[0] != '\0')
        args[argc++] = (struct resp_arg){user, strlen(user)};
    args[argc++] = (struct resp_arg){password, strlen(password)};
    return cli_rpc_expect(c, argc, args, RESP_TYPE_SIMPLE, err);
}

int cli_rpc_open_member(struct cli_rpc *c, const char *addr,
                        size_t reply_size_max, struct cohort_err *err)
{
    int rc = cli_rpc_open(c, addr, reply_size_max, 10, err);
    if (rc == 0)
        rc = cli_rpc_auth(c, err);
    if (rc != 0)
        cli_rpc_close(c);
    return rc;
}

#define PRIMARY_HOPS_MAX 4u /* backups naming backups, in one round */

/* What one round of asking found, for the message when no round finds a
 * primary: the asked member's index and role, and how the members it led
 * to answered. */
struct primary_search {
    char self[16];
    char role[32];
    bool followed;   /* the asked member named another member */
    bool unanswered; /* ... and that member (or one after it) was down */
    char end[32];    /* else the role of the last one asked */
    /* The asked member, a backup, lost its primary (master_link_status
     * down), last heard from it this many seconds ago ("-1": never). */
    bool link_down;
    char heard_ago[24];
    /* The asked member is outside the membership (role removed or
     * outside): its epoch, and a current voter's client address from its
     * INFO ("" if it names none), for the message. */
    char epoch[16];
    char voter_addr[256];
    /* The asked member did not answer at all (refused, timed out, the
     * connection broke): err says how. */
    bool down;
};

/* Connect to target (timeout_s), log in and read INFO replication into
 * c's buffer. *answered says whether target answered at all: false for a
 * refused or timed-out connection or one that broke (the member is down
 * or unreachable), true for an error reply. c is closed on failure. */
static int ask_replication(struct cli_rpc *c, const char *target,
                           size_t reply_size_max, int timeout_s, bool *answered,
                           struct cohort_err *err)
{
    *answered = false;
    int rc = cli_rpc_open(c, target, reply_size_max, timeout_s, err);
    if (rc != 0)
        return rc;
    rc = cli_rpc_auth(c, err);
    if (rc != 0) {
        *answered = c->node_count > 0; /* AUTH's reply was an error */
        cli_rpc_close(c);
        return rc;
    }
    struct resp_arg info[] = {{"INFO", 4}, {"replication", 11}};
    rc = cli_rpc_call(c, 2, info, err);
    if (rc != 0) {
        *answered = rc != -COHORT_EIO; /* EIO: the connection broke */
        cli_rpc_close(c);
        return rc;
    }
    *answered = true;
    const struct resp_node *n = &c->nodes[0];
    if (n->type == RESP_TYPE_ERROR)
        rc =
            err_set(err, -COHORT_EIO, "%s: %.*s", c->addr, (int)n->len, n->str);
    else if (n->type != RESP_TYPE_BULK)
        rc = err_set(err, -COHORT_EPROTO, "%s: unexpected reply", c->addr);
    if (rc != 0)
        cli_rpc_close(c);
    return rc;
}

/* The member c's INFO text names as its primary, into next ("" if none
 * to follow). A backup names its primary; so does a replica outside the
 * membership (removed, a spare) once it learned the epoch. A replica in a
 * view change or recovering names the primary of a view that is not (yet)
 * working: it is not followed. */
static void named_primary(const struct cli_rpc *c, const char *role, char *next,
                          size_t size)
{
    const char *text = c->nodes[0].str;
    size_t len = c->nodes[0].len;
    char member[32] = "";
    cli_info_field(text, len, "self_member:", member, sizeof(member));
    bool follows = !strcmp(role, "backup") || !strcmp(member, "outside");
    if (!follows || !cli_info_field(text, len, "primary:", next, size) ||
        !strcmp(next, c->addr))
        next[0] = '\0';
}

/* Whether the asked member says it lost its primary (INFO's
 * master_link_status, a backup's only). */
static void link_state(const struct cli_rpc *c, struct primary_search *s)
{
    char link[16] = "";
    cli_info_field(c->nodes[0].str, c->nodes[0].len,
                   "master_link_status:", link, sizeof(link));
    s->link_down = !strcmp(link, "down");
    snprintf(s->heard_ago, sizeof(s->heard_ago), "-1");
    cli_info_field(c->nodes[0].str, c->nodes[0].len,
                   "master_last_io_seconds_ago:", s->heard_ago,
                   sizeof(s->heard_ago));
}

/* A current voter's client address from c's INFO text, into s: one the
 * asked member is connected to (link=up) before one it is not, and the
 * primary it names before another. */
static void current_voter(const struct cli_rpc *c, struct primary_search *s)
{
    const char *text = c->nodes[0].str;
    size_t len = c->nodes[0].len;
    char line[512], voters[128], index[16] = "";
    if (!cli_info_field(text, len, "epoch:", line, sizeof(line)))
        return;
    snprintf(s->epoch, sizeof(s->epoch), "%.*s", (int)strcspn(line, ","), line);
    cli_list_field(line, "voters", voters, sizeof(voters));
    cli_info_field(text, len, "primary_index:", index, sizeof(index));
    int best = -1;
    for (const char *p = voters; *p;) {
        size_t n = strcspn(p, "+");
        char name[24], addr[256], link[8];
        snprintf(name, sizeof(name), "member%.*s:", (int)(n < 8 ? n : 8), p);
        if (cli_info_field(text, len, name, line, sizeof(line)) &&
            cli_list_field(line, "addr", addr, sizeof(addr))) {
            cli_list_field(line, "link", link, sizeof(link));
            int score = 2 * !strcmp(link, "up") +
                        (n == strlen(index) && !memcmp(p, index, n));
            if (score > best) {
                best = score;
                snprintf(s->voter_addr, sizeof(s->voter_addr), "%s", addr);
            }
        }
        p += n + (p[n] == '+');
    }
}

/* One round: ask addr, then the members it leads to, up to
 * PRIMARY_HOPS_MAX, each within timeout_s. 0 with c open at the primary;
 * 1 with c closed when no primary answered (s says why); a negative code
 * when addr itself cannot be asked (s->down if it did not answer at all)
 * or a member answered with an error. */
static int primary_round(struct cli_rpc *c, const char *addr,
                         size_t reply_size_max, int timeout_s,
                         struct primary_search *s, struct cohort_err *err)
{
    char target[256];
    snprintf(target, sizeof(target), "%s", addr);
    memset(s, 0, sizeof(*s));
    for (uint32_t hop = 0; hop < PRIMARY_HOPS_MAX; hop++) {
        bool answered = false;
        int rc = ask_replication(c, target, reply_size_max, timeout_s,
                                 &answered, err);
        if (rc != 0 && (hop == 0 || answered)) {
            s->down = hop == 0 && !answered;
            return rc;
        }
        if (rc != 0) {
            s->unanswered = true; /* the member it names is down */
            return 1;
        }
        char role[32] = "", next[256];
        cli_info_field(c->nodes[0].str, c->nodes[0].len, "role:", role,
                       sizeof(role));
        if (!strcmp(role, "primary"))
            return 0;
        if (hop == 0) {
            snprintf(s->role, sizeof(s->role), "%s", role);
            cli_info_field(c->nodes[0].str, c->nodes[0].len,
                           "self_index:", s->self, sizeof(s->self));
            link_state(c, s);
            if (!strcmp(role, "removed") || !strcmp(role, "outside"))
                current_voter(c, s);
        } else
            snprintf(s->end, sizeof(s->end), "%s", role);
        named_primary(c, role, next, sizeof(next));
        cli_rpc_close(c); /* the INFO text was c's buffer */
        if (next[0] == '\0')
            return 1;
        s->followed = true;
        snprintf(target, sizeof(target), "%s", next);
    }
    return 1;
}

/* A role from INFO in words, after "it is" ("in a view change"). */
static const char *role_words(const char *role)
{
    if (!strcmp(role, "view_change"))
        return "in a view change";
    if (!strcmp(role, "recovering"))
        return "recovering";
    if (!strcmp(role, "removed"))
        return "removed from the group";
    if (!strcmp(role, "outside"))
        return "outside the membership";
    return role[0] ? role : "not the primary";
}

/* Why the member asked knows no working primary, in words: its own state
 * when it follows nobody, else what became of the primary it follows. */
static void search_state(const struct primary_search *s, char *out, size_t size)
{
    if (s->link_down && strcmp(s->heard_ago, "-1") != 0)
        snprintf(out, size,
                 "it lost the primary it follows: nothing heard from it "
                 "for %s s",
                 s->heard_ago);
    else if (s->link_down)
        snprintf(out, size,
                 "it lost the primary it follows: nothing heard "
                 "from it since it started");
    else if (s->unanswered)
        snprintf(out, size, "the primary it follows does not answer");
    else if (s->followed && !strcmp(s->end, "backup"))
        snprintf(out, size, "the primary it follows is a backup now");
    else if (s->followed)
        snprintf(out, size, "the primary it follows is %s", role_words(s->end));
    else
        snprintf(out, size, "it is %s", role_words(s->role));
}

/* The one line when no round found a primary, from what asking addr
 * found (s). */
static int no_primary(const struct primary_search *s, const char *addr,
                      struct cohort_err *err)
{
    char state[160];
    search_state(s, state, sizeof(state));
    const char *self = s->self[0] ? s->self : "?";
    if (!strcmp(s->role, "removed") || !strcmp(s->role, "outside")) {
        /* Starting the stopped members is no answer: this one takes no
         * part whatever the others do. Its own state says nothing more. */
        char follows[200] = "";
        if (s->followed || s->unanswered || s->link_down)
            snprintf(follows, sizeof(follows), "; %s", state);
        return err_set(err, -COHORT_EAGAIN,
                       "no primary reachable: replica %s (%s) is %s (epoch "
                       "%s)%s: ask a current member instead: cohort members "
                       "--cluster %s",
                       self, addr, role_words(s->role),
                       s->epoch[0] ? s->epoch : "?", follows,
                       s->voter_addr[0] ? s->voter_addr
                                        : "<a current member's address>");
    }
    return err_set(err, -COHORT_EAGAIN,
                   "no primary reachable: replica %s (%s) knows no working "
                   "primary (%s); a majority of members must be up: start "
                   "the stopped ones (cohort status shows each)",
                   self, addr, state);
}

int cli_rpc_open_primary_any(struct cli_rpc *c, const char *const *addrs,
                             uint32_t count, uint64_t wait_ms,
                             size_t reply_size_max, struct cohort_err *err)
{
    uint64_t deadline = cli_monotonic_ms() + wait_ms;
    struct primary_search s, report = {.self = ""};
    const char *report_addr = addrs[0];
    bool report_first = false; /* report is addrs[0]'s */
    struct cohort_err first_err;
    for (;;) {
        bool answered = false;
        first_err.code = 0;
        for (uint32_t k = 0; k < count; k++) {
            uint64_t now = cli_monotonic_ms();
            if (k > 0 && now >= deadline)
                break; /* the wait is over: no more members this round */
            uint64_t left_s = now < deadline ? (deadline - now) / 1000u : 0;
            int timeout_s = left_s < 1 ? 1 : left_s > 10 ? 10 : (int)left_s;
            int rc =
                primary_round(c, addrs[k], reply_size_max, timeout_s, &s, err);
            if (rc == 0)
                return 0;
            if (rc < 0 && !s.down)
                return rc; /* an error reply: no point asking on */
            if (rc < 0) {
                if (first_err.code == 0)
                    first_err = *err;
                continue; /* down: perhaps another member knows */
            }
            answered = true;
            if (k == 0 || !report_first) {
                report = s;
                report_addr = addrs[k];
                report_first = k == 0;
            }
        }
        if (!answered) {
            *err = first_err; /* nobody to ask */
            return err->code;
        }
        if (cli_monotonic_ms() >= deadline)
            break;
        cli_pause_ms(100); /* a view change or a recovery: ask again */
    }
    return no_primary(&report, report_addr, err);
}

int cli_rpc_open_primary(struct cli_rpc *c, const char *addr,
                         size_t reply_size_max, struct cohort_err *err)
{
    const char *addrs[1] = {addr};
    return cli_rpc_open_primary_any(c, addrs, 1, CLI_PRIMARY_WAIT_MS,
                                    reply_size_max, err);
}

bool cli_list_field(const char *line, const char *key, char *out, size_t size)
{
    size_t klen = strlen(key);
    out[0] = '\0';
    for (const char *p = line; p != NULL && *p;) {
        if (!strncmp(p, key, klen) && p[klen] == '=') {
            const char *v = p + klen + 1;
            snprintf(out, size, "%.*s", (int)strcspn(v, ","), v);
            return true;
        }
        p = strchr(p, ',');
        if (p)
            p++;
    }
    return false;
}

bool cli_info_lacks_majority(const char *text, size_t len, bool heard,
                             struct cli_majority *out)
{
    char epoch[256], voters[256];
    *out = (struct cli_majority){0};
    if (!cli_info_field(text, len, "epoch:", epoch, sizeof(epoch)) ||
        !cli_list_field(epoch, "voters", voters, sizeof(voters)))
        return false;
    for (char *id = strtok(voters, "+"); id != NULL; id = strtok(NULL, "+")) {
        char name[32], member[512], link[16], health[16];
        snprintf(name, sizeof(name), "member%s:", id);
        out->voters++;
        if (!cli_info_field(text, len, name, member, sizeof(member)))
            continue;
        cli_list_field(member, "link", link, sizeof(link));
        cli_list_field(member, "health", health, sizeof(health));
        if (!strcmp(health, "self") ||
            (!strcmp(link, "up") && !(heard && !strcmp(health, "suspected"))))
            out->connected++;
    }
    out->needed = out->voters / 2 + 1;
    return out->voters > 0 && out->connected < out->needed;
}

int cli_rpc_info(struct cli_rpc *c, const char *section, const char **text,
                 size_t *len, struct cohort_err *err)
{
    struct resp_arg info[] = {{"INFO", 4}, {section, strlen(section)}};
    int rc = cli_rpc_expect(c, 2, info, RESP_TYPE_BULK, err);
    if (rc != 0)
        return rc;
    *text = c->nodes[0].str;
    *len = c->nodes[0].len;
    return 0;
}
