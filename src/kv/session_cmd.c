/* session_cmd — the session commands. See session_cmd.h. */
#include "kv/session_cmd.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cohort.h"
#include "common/assert.h"
#include "kv/group.h"
#include "kv/lock.h"
#include "kv/session.h"

enum {
    ID_SESSION = KV_SESSION_ID_FIRST,
    ID_LOCK,
    ID_UNLOCK,
    ID_FENCE,
    ID_GROUP,
    ID_ELECT,
};

static const struct kv_command_def table[] = {
    {"cohort.session", ID_SESSION, KV_CLASS_WRITE, 3},
    {"cohort.lock", ID_LOCK, KV_CLASS_WRITE, -3},
    {"cohort.unlock", ID_UNLOCK, KV_CLASS_WRITE, 3},
    {"cohort.fence", ID_FENCE, KV_CLASS_WRITE, 5},
    {"cohort.group", ID_GROUP, KV_CLASS_WRITE, -3},
    {"cohort.elect", ID_ELECT, KV_CLASS_WRITE, 2},
    {"cohort.sessions", KV_SESSION_ID_SESSIONS, KV_CLASS_READ, -1},
    {"cohort.locks", KV_SESSION_ID_LOCKS, KV_CLASS_READ, -1},
};

const struct kv_command_def *kv_session_find(const struct resp_arg *name)
{
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (resp_arg_is(name, table[i].name))
            return &table[i];
    return NULL;
}

bool kv_session_owns_type(enum kv_command_type type)
{
    return type >= KV_CMD_SESSION_OPEN && type <= KV_CMD_ELECT;
}

enum kv_arg_role kv_session_arg_role(enum kv_command_type type, uint32_t i)
{
    switch (type) {
    case KV_CMD_LOCK:
    case KV_CMD_UNLOCK:
        return i == 0 ? KV_ARG_KEY : KV_ARG_OTHER; /* the lock's name */
    case KV_CMD_FENCE:
        return i == 0 || i == 2 ? KV_ARG_KEY
               : i == 3         ? KV_ARG_VALUE
                                : KV_ARG_OTHER;
    case KV_CMD_GROUP_JOIN:
        return i <= 1 ? KV_ARG_KEY : i == 3 ? KV_ARG_VALUE : KV_ARG_OTHER;
    case KV_CMD_GROUP_LEAVE:
    case KV_CMD_GROUP_VIEW:
    case KV_CMD_ELECT:
        return KV_ARG_KEY; /* group and member names */
    default:
        return KV_ARG_OTHER;
    }
}

uint64_t kv_session_growth(const struct kv *kv, const struct kv_write *w)
{
    (void)kv;
    if (w->type != KV_CMD_FENCE)
        return 0;
    return kv_record_cost(w->args[2].size, w->args[3].size);
}

/* A positive decimal integer within [min, max]. */
static bool parse_u64(const void *text, size_t size, uint64_t min, uint64_t max,
                      uint64_t *out)
{
    int64_t n;
    if (!resp_parse_i64(text, size, &n) || n < 0 || (uint64_t)n < min ||
        (uint64_t)n > max)
        return false;
    *out = (uint64_t)n;
    return true;
}

static bool parse_ttl(const void *text, size_t size, uint64_t *ttl_ms)
{
    return parse_u64(text, size, KV_SESSION_TTL_MIN_MS, KV_SESSION_TTL_MAX_MS,
                     ttl_ms);
}

static bool parse_id(const void *text, size_t size, uint64_t *id)
{
    return parse_u64(text, size, 1, INT64_MAX, id);
}

static void reply_bad_ttl(struct resp_buf *r)
{
    resp_write_errorf(r, "ERR session ttl-ms must be an integer from %u to %u",
                      KV_SESSION_TTL_MIN_MS, KV_SESSION_TTL_MAX_MS);
}

static void reply_bad_id(struct resp_buf *r)
{
    resp_write_error(r, "ERR session id must be a positive integer (the "
                        "reply of COHORT.SESSION OPEN)");
}

static void reply_bad_token(struct resp_buf *r)
{
    resp_write_error(r, "ERR fencing token must be a positive integer (the "
                        "reply of COHORT.LOCK)");
}

/* COHORT.LOCK name session [WAIT], COHORT.UNLOCK name session,
 * COHORT.FENCE name token key value. */
static int parse_lock(const struct kv_command_def *def, uint32_t argc,
                      const struct resp_arg *argv, struct kv_write *w,
                      struct resp_buf *r)
{
    uint64_t n;
    w->args = argv + 1;
    if (def->id == ID_FENCE) {
        w->type = KV_CMD_FENCE;
        w->arg_count = 4;
        if (!parse_id(argv[2].ptr, argv[2].size, &n)) {
            reply_bad_token(r);
            return -COHORT_EINVAL;
        }
        return 0;
    }
    w->type = def->id == ID_LOCK ? KV_CMD_LOCK : KV_CMD_UNLOCK;
    w->arg_count = 2;
    if (argc > 5 || (argc >= 4 && !resp_arg_is(&argv[3], "wait")) ||
        (argc == 5 && def->id != ID_LOCK)) {
        resp_write_error(r, "ERR syntax error: COHORT.LOCK name session "
                            "[WAIT [ms]]");
        return -COHORT_EINVAL;
    }
    if (argc >= 4)
        w->flags = KV_LOCK_WAIT;
    if (argc == 5 && !parse_u64(argv[4].ptr, argv[4].size, 0,
                                KV_LOCK_WAIT_MS_MAX, &w->wait_ms)) {
        resp_write_errorf(r,
                          "ERR WAIT takes the milliseconds to wait for the "
                          "lock, 0 to %u",
                          KV_LOCK_WAIT_MS_MAX);
        return -COHORT_EINVAL;
    }
    if (!parse_id(argv[2].ptr, argv[2].size, &n)) {
        reply_bad_id(r);
        return -COHORT_EINVAL;
    }
    return 0;
}

/* COHORT.GROUP JOIN group member session [data] | LEAVE group member |
 * VIEW group; COHORT.ELECT group. JOIN's body has 3 arguments, or 4 with
 * data. */
static int parse_group(const struct kv_command_def *def, uint32_t argc,
                       const struct resp_arg *argv, struct kv_write *w,
                       struct resp_buf *r)
{
    uint64_t n;
    w->args = argv + 2;
    if (def->id == ID_ELECT) {
        w->type = KV_CMD_ELECT;
        w->args = argv + 1;
        w->arg_count = 1;
        return 0;
    }
    if (resp_arg_is(&argv[1], "view") && argc == 3) {
        w->type = KV_CMD_GROUP_VIEW;
        w->arg_count = 1;
        return 0;
    }
    if (resp_arg_is(&argv[1], "leave") && argc == 4) {
        w->type = KV_CMD_GROUP_LEAVE;
        w->arg_count = 2;
        return 0;
    }
    if (!resp_arg_is(&argv[1], "join") || argc < 5 || argc > 6) {
        resp_write_error(r, "ERR syntax error: COHORT.GROUP JOIN group member "
                            "session [data] | LEAVE group member | VIEW "
                            "group");
        return -COHORT_EINVAL;
    }
    if (!parse_id(argv[4].ptr, argv[4].size, &n)) {
        reply_bad_id(r);
        return -COHORT_EINVAL;
    }
    w->type = KV_CMD_GROUP_JOIN;
    w->arg_count = argc - 2;
    return 0;
}

int kv_session_parse(const struct kv_command_def *def, uint32_t argc,
                     const struct resp_arg *argv, struct kv_write *w,
                     struct resp_buf *r)
{
    if (def->id == ID_GROUP || def->id == ID_ELECT)
        return parse_group(def, argc, argv, w, r);
    if (def->id != ID_SESSION)
        return parse_lock(def, argc, argv, w, r);
    ASSERT(argc == 3);
    uint64_t n;
    w->args = argv + 2;
    w->arg_count = 1;
    if (resp_arg_is(&argv[1], "open")) {
        w->type = KV_CMD_SESSION_OPEN;
        if (!parse_ttl(argv[2].ptr, argv[2].size, &n)) {
            reply_bad_ttl(r);
            return -COHORT_EINVAL;
        }
        return 0;
    }
    if (resp_arg_is(&argv[1], "keepalive"))
        w->type = KV_CMD_SESSION_KEEPALIVE;
    else if (resp_arg_is(&argv[1], "close"))
        w->type = KV_CMD_SESSION_CLOSE;
    else {
        char shown[65];
        resp_write_errorf(r,
                          "ERR unknown COHORT.SESSION subcommand '%s'; use "
                          "OPEN ttl-ms, KEEPALIVE id or CLOSE id",
                          resp_show(shown, sizeof(shown), argv[1].ptr,
                                    argv[1].ptr ? argv[1].size : 0));
        return -COHORT_EINVAL;
    }
    if (!parse_id(argv[2].ptr, argv[2].size, &n)) {
        reply_bad_id(r);
        return -COHORT_EINVAL;
    }
    return 0;
}

int kv_session_parse_set_option(uint32_t argc, const struct resp_arg *argv,
                                uint32_t *j, struct kv_write *w,
                                struct resp_buf *r)
{
    if (!resp_arg_is(&argv[*j], "session"))
        return 0;
    uint64_t id;
    if (*j + 1 >= argc || (w->flags & KV_SET_SESSION)) {
        resp_write_error(r, "ERR syntax error");
        return -COHORT_EINVAL;
    }
    if (!parse_id(argv[*j + 1].ptr, argv[*j + 1].size, &id)) {
        reply_bad_id(r);
        return -COHORT_EINVAL;
    }
    w->flags |= KV_SET_SESSION;
    w->delta = (int64_t)id;
    *j += 1;
    return 1;
}

const char *kv_session_check_header(const struct kv_command *c)
{
    if (c->type == KV_CMD_LOCK) {
        if (c->flags & ~KV_LOCK_WAIT)
            return "unknown LOCK flags";
        return c->arg_count == 2 ? NULL : "LOCK needs 2 arguments";
    }
    if (c->flags != 0)
        return "flags on a session command";
    switch (c->type) {
    case KV_CMD_SESSION_OPEN:
    case KV_CMD_SESSION_KEEPALIVE:
    case KV_CMD_SESSION_CLOSE:
        return c->arg_count == 1 ? NULL : "session command needs 1 argument";
    case KV_CMD_SESSION_EXTEND:
        return c->arg_count == 0 ? NULL : "EXTEND takes no arguments";
    case KV_CMD_SESSION_EXPIRE:
        return c->arg_count >= 1 && c->arg_count <= KV_SESSION_EXPIRE_BATCH
                   ? NULL
                   : "EXPIRE needs 1 to 64 session ids";
    case KV_CMD_UNLOCK:
        return c->arg_count == 2 ? NULL : "UNLOCK needs 2 arguments";
    case KV_CMD_FENCE:
        return c->arg_count == 4 ? NULL : "FENCE needs 4 arguments";
    case KV_CMD_GROUP_JOIN:
        return c->arg_count == 3 || c->arg_count == 4
                   ? NULL
                   : "JOIN needs 3 or 4 arguments";
    case KV_CMD_GROUP_LEAVE:
        return c->arg_count == 2 ? NULL : "LEAVE needs 2 arguments";
    case KV_CMD_GROUP_VIEW:
    case KV_CMD_ELECT:
        return c->arg_count == 1 ? NULL : "VIEW needs 1 argument";
    default:
        return "unknown command type";
    }
}

/* End session s at op: delete the ephemeral keys still as it wrote them,
 * release its locks, then forget it. */
static void session_end(struct kv *kv, struct kv_session *s, uint64_t op)
{
    kv_lock_session_ended(&kv->sessions, s->id, op);
    kv_group_session_ended(&kv->sessions, s->id, op);
    for (uint32_t k = 0; k < s->key_count; k++) {
        const struct kv_session_key *e = &s->keys[k];
        const struct kv_record *rec = kv_get(kv, e->key, e->key_size);
        if (rec != NULL && rec->mod_op == e->mod_op)
            (void)kv_del(kv, e->key, e->key_size);
    }
    kv_sessions_remove(&kv->sessions, (uint64_t)(s - kv->sessions.items));
}

static void must(int rc)
{
    if (rc == -COHORT_ENOMEM)
        cohort_assert_fail("out of memory applying a committed op", __FILE__,
                           __LINE__);
}

static uint64_t deadline_at(uint64_t now_ms, uint64_t ttl_ms)
{
    return now_ms > UINT64_MAX - ttl_ms ? UINT64_MAX : now_ms + ttl_ms;
}

static void apply_open(struct kv *kv, uint64_t op, uint64_t now_ms,
                       const uint8_t *arg, size_t size, struct resp_buf *r)
{
    uint64_t ttl_ms;
    if (!parse_ttl(arg, size, &ttl_ms)) {
        reply_bad_ttl(r);
        return;
    }
    if (kv->sessions.count >= KV_SESSIONS_MAX) {
        resp_write_errorf(r,
                          "ERR too many sessions (%u); close the ones you "
                          "no longer use",
                          KV_SESSIONS_MAX);
        return;
    }
    must(kv_sessions_add(&kv->sessions, op, ttl_ms,
                         deadline_at(now_ms, ttl_ms)));
    ASSERT(op <= INT64_MAX);
    resp_write_integer(r, (int64_t)op);
}

/* KEEPALIVE and CLOSE of the session arg names. */
static void apply_one(struct kv *kv, uint64_t op, uint64_t now_ms,
                      enum kv_command_type t, const uint8_t *arg, size_t size,
                      struct resp_buf *r)
{
    uint64_t id;
    if (!parse_id(arg, size, &id)) {
        reply_bad_id(r);
        return;
    }
    struct kv_session *s = kv_sessions_find(&kv->sessions, id);
    if (t == KV_CMD_SESSION_CLOSE) {
        if (s != NULL)
            session_end(kv, s, op);
        resp_write_integer(r, s != NULL);
        return;
    }
    if (s == NULL) {
        resp_write_errorf(r,
                          "ERR no such session %" PRIu64
                          " (it expired or was closed; open a new one)",
                          id);
        return;
    }
    uint64_t at = deadline_at(now_ms, s->ttl_ms);
    if (at > s->deadline_ms)
        kv_sessions_set_deadline(&kv->sessions, s, at);
    resp_write_integer(r, (int64_t)s->ttl_ms);
}

static void apply_extend(struct kv *kv, uint64_t now_ms, struct resp_buf *r)
{
    for (uint64_t i = 0; i < kv->sessions.count; i++) {
        struct kv_session *s = &kv->sessions.items[i];
        uint64_t at = deadline_at(now_ms, s->ttl_ms);
        if (at > s->deadline_ms)
            kv_sessions_set_deadline(&kv->sessions, s, at);
    }
    resp_write_integer(r, (int64_t)kv->sessions.count);
}

static void apply_expire(struct kv *kv, uint64_t op, uint64_t now_ms,
                         struct kv_command *c, struct resp_buf *r)
{
    int64_t ended = 0;
    for (uint32_t i = 0; i < c->arg_count; i++) {
        const uint8_t *arg;
        size_t size;
        uint64_t id;
        kv_command_next_arg(c, &arg, &size);
        if (!parse_id(arg, size, &id))
            continue;
        struct kv_session *s = kv_sessions_find(&kv->sessions, id);
        if (s != NULL && s->deadline_ms <= now_ms) {
            session_end(kv, s, op);
            ended++;
        }
    }
    kv->sessions.expired += (uint64_t)ended;
    resp_write_integer(r, ended);
}

static void reply_no_session(struct resp_buf *r, uint64_t id)
{
    resp_write_errorf(r,
                      "ERR no such session %" PRIu64
                      " (it expired or was closed; open a new one)",
                      id);
}

static void apply_lock(struct kv *kv, uint64_t op, struct kv_command *c,
                       struct resp_buf *r)
{
    const uint8_t *name, *arg;
    size_t name_size, size;
    uint64_t id, token = 0;
    kv_command_next_arg(c, &name, &name_size);
    kv_command_next_arg(c, &arg, &size);
    if (!parse_id(arg, size, &id)) {
        reply_bad_id(r);
        return;
    }
    if (c->type == KV_CMD_UNLOCK) {
        resp_write_integer(
            r, kv_lock_release(&kv->sessions, name, name_size, id, op));
        return;
    }
    if (kv_sessions_find(&kv->sessions, id) == NULL) {
        reply_no_session(r, id);
        return;
    }
    switch (kv_lock_acquire(&kv->sessions, name, name_size, id,
                            (c->flags & KV_LOCK_WAIT) != 0, op, &token)) {
    case KV_LOCK_GRANTED:
        resp_write_integer(r, (int64_t)token);
        return;
    case KV_LOCK_QUEUED:
    case KV_LOCK_BUSY:
        resp_write_null(r);
        return;
    case KV_LOCK_FULL:
        resp_write_errorf(r,
                          "ERR too many locks (%u) or waiters on one lock "
                          "(%u); unlock the ones you no longer use",
                          KV_LOCKS_MAX, KV_LOCK_WAITERS_MAX);
        return;
    }
    UNREACHABLE();
}

static void apply_fence(struct kv *kv, uint64_t op, struct kv_command *c,
                        struct resp_buf *r)
{
    const uint8_t *name, *arg, *key, *value;
    size_t name_size, size, key_size, value_size;
    uint64_t token;
    kv_command_next_arg(c, &name, &name_size);
    kv_command_next_arg(c, &arg, &size);
    kv_command_next_arg(c, &key, &key_size);
    kv_command_next_arg(c, &value, &value_size);
    if (!parse_id(arg, size, &token)) {
        reply_bad_token(r);
        return;
    }
    uint64_t current = kv_lock_token(&kv->sessions, name, name_size);
    char shown[65];
    resp_show(shown, sizeof(shown), name, name_size);
    if (current == 0) {
        resp_write_errorf(r,
                          "ERR fencing token %" PRIu64
                          " is not current for lock '%s' (it is free); "
                          "take the lock again",
                          token, shown);
        return;
    }
    if (current != token) {
        resp_write_errorf(r,
                          "ERR fencing token %" PRIu64
                          " is not current for lock '%s' (its token is "
                          "%" PRIu64 "); take the lock again",
                          token, shown, current);
        return;
    }
    if (kv_put(kv, key, key_size, value, value_size, op) != 0)
        cohort_assert_fail("out of memory applying a committed op", __FILE__,
                           __LINE__);
    const struct kv_record *rec = kv_get(kv, key, key_size);
    if (rec != NULL && rec->expire_at_ms != 0)
        (void)kv_expire_set(kv, key, key_size, 0);
    resp_write_simple(r, "OK");
}

static void apply_join(struct kv *kv, uint64_t op, struct kv_command *c,
                       struct resp_buf *r)
{
    const uint8_t *group, *member, *arg, *data = (const uint8_t *)"";
    size_t group_size, member_size, size, data_size = 0;
    uint64_t id, holder = 0;
    kv_command_next_arg(c, &group, &group_size);
    kv_command_next_arg(c, &member, &member_size);
    kv_command_next_arg(c, &arg, &size);
    if (c->arg_count == 4)
        kv_command_next_arg(c, &data, &data_size);
    if (!parse_id(arg, size, &id)) {
        reply_bad_id(r);
        return;
    }
    if (kv_sessions_find(&kv->sessions, id) == NULL) {
        reply_no_session(r, id);
        return;
    }
    switch (kv_group_join(&kv->sessions, group, group_size, member, member_size,
                          data, data_size, id, op, &holder)) {
    case KV_GROUP_CHANGED:
    case KV_GROUP_UNCHANGED:
        resp_write_integer(
            r, (int64_t)kv_group_find(&kv->sessions, group, group_size)->view);
        return;
    case KV_GROUP_TAKEN: {
        char member_shown[65], group_shown[65];
        resp_write_errorf(
            r,
            "ERR member '%s' of group '%s' belongs to session %" PRIu64
            "; pick another name",
            resp_show(member_shown, sizeof(member_shown), member, member_size),
            resp_show(group_shown, sizeof(group_shown), group, group_size),
            holder);
        return;
    }
    case KV_GROUP_FULL:
        resp_write_errorf(r,
                          "ERR too many groups (%u) or members in one group "
                          "(%u); leave the ones you no longer use",
                          KV_GROUPS_MAX, KV_GROUP_MEMBERS_MAX);
        return;
    }
    UNREACHABLE();
}

/* VIEW: *2 :view *2n member data ...; ELECT: *3 :view leader data, or a
 * null array if the group has no member. A view that would not fit the
 * reply buffer is refused with an error (members are not truncated). */
static void reply_view(const struct kv *kv, const struct kv_group *g,
                       bool elect, struct resp_buf *r)
{
    if (g == NULL) {
        if (elect) {
            resp_write_null_array(r);
            return;
        }
        resp_write_array(r, 2);
        resp_write_integer(r, 0);
        resp_write_array(r, 0);
        return;
    }
    uint32_t n = elect ? 1 : g->count;
    size_t size = 64;
    for (uint32_t i = 0; i < n; i++)
        size += 32 + (size_t)g->members[i].name_size + g->members[i].data_size;
    if (size > (size_t)kv->config.value_size_max + KV_REPLY_OVERHEAD) {
        char shown[65];
        resp_write_errorf(
            r,
            "ERR the view of group '%s' is %zu bytes, over "
            "max-value-size; use smaller member data",
            resp_show(shown, sizeof(shown), g->name, g->name_size), size);
        return;
    }
    resp_write_array(r, elect ? 3 : 2);
    resp_write_integer(r, (int64_t)g->view);
    if (!elect)
        resp_write_array(r, 2 * g->count);
    for (uint32_t i = 0; i < n; i++) {
        resp_write_bulk(r, g->members[i].name, g->members[i].name_size);
        resp_write_bulk(r, g->members[i].data, g->members[i].data_size);
    }
}

static void apply_group(struct kv *kv, uint64_t op, struct kv_command *c,
                        struct resp_buf *r)
{
    const uint8_t *group, *member;
    size_t group_size, member_size;
    kv_command_next_arg(c, &group, &group_size);
    if (c->type == KV_CMD_GROUP_LEAVE) {
        kv_command_next_arg(c, &member, &member_size);
        resp_write_integer(r, kv_group_leave(&kv->sessions, group, group_size,
                                             member, member_size, op));
        return;
    }
    reply_view(kv, kv_group_find(&kv->sessions, group, group_size),
               c->type == KV_CMD_ELECT, r);
}

void kv_session_apply(struct kv *kv, uint64_t op, uint64_t now_ms,
                      struct kv_command *c, struct resp_buf *r)
{
    const uint8_t *arg = NULL;
    size_t size = 0;
    switch (c->type) {
    case KV_CMD_SESSION_OPEN:
        kv_command_next_arg(c, &arg, &size);
        apply_open(kv, op, now_ms, arg, size, r);
        break;
    case KV_CMD_SESSION_KEEPALIVE:
    case KV_CMD_SESSION_CLOSE:
        kv_command_next_arg(c, &arg, &size);
        apply_one(kv, op, now_ms, c->type, arg, size, r);
        break;
    case KV_CMD_SESSION_EXTEND:
        apply_extend(kv, now_ms, r);
        break;
    case KV_CMD_SESSION_EXPIRE:
        apply_expire(kv, op, now_ms, c, r);
        break;
    case KV_CMD_LOCK:
    case KV_CMD_UNLOCK:
        apply_lock(kv, op, c, r);
        break;
    case KV_CMD_FENCE:
        apply_fence(kv, op, c, r);
        break;
    case KV_CMD_GROUP_JOIN:
        apply_join(kv, op, c, r);
        break;
    case KV_CMD_GROUP_LEAVE:
    case KV_CMD_GROUP_VIEW:
    case KV_CMD_ELECT:
        apply_group(kv, op, c, r);
        break;
    default:
        UNREACHABLE();
    }
    DEBUG_ASSERT(kv_sessions_invariants_hold(&kv->sessions));
}

bool kv_session_set_check(struct kv *kv, const struct kv_command *c,
                          struct resp_buf *r)
{
    if (!(c->flags & KV_SET_SESSION))
        return true;
    uint64_t id = c->delta > 0 ? (uint64_t)c->delta : 0;
    if (id != 0 && kv_sessions_find(&kv->sessions, id) != NULL)
        return true;
    resp_write_errorf(r,
                      "ERR no such session %" PRIu64
                      " (it expired or was closed; open a new one)",
                      id);
    return false;
}

void kv_session_set_attach(struct kv *kv, const struct kv_command *c,
                           const uint8_t *key, size_t key_size)
{
    if (!(c->flags & KV_SET_SESSION))
        return;
    struct kv_session *s = kv_sessions_find(&kv->sessions, (uint64_t)c->delta);
    const struct kv_record *rec = kv_get(kv, key, key_size);
    ASSERT(s != NULL); /* kv_session_set_check() */
    if (rec == NULL)
        return;
    /* Past KV_SESSION_KEYS_MAX the key is written but not ephemeral: the
     * SET's reply is already written. Rare; documented in the README. */
    must(kv_sessions_attach(&kv->sessions, s, key, key_size, rec->mod_op));
}

void kv_session_extend_write(struct kv_write *w)
{
    memset(w, 0, sizeof(*w));
    w->type = KV_CMD_SESSION_EXTEND;
}

uint32_t kv_session_expire_batch(const struct kv *kv, uint64_t now_ms,
                                 char text[][KV_SESSION_ID_TEXT],
                                 struct resp_arg *args, struct kv_write *w)
{
    uint32_t n = 0;
    for (uint64_t i = 0; i < kv->sessions.count && n < KV_SESSION_EXPIRE_BATCH;
         i++) {
        const struct kv_session *s = &kv->sessions.items[i];
        if (s->deadline_ms > now_ms)
            continue;
        int len = snprintf(text[n], KV_SESSION_ID_TEXT, "%" PRIu64, s->id);
        ASSERT(len > 0 && len < (int)KV_SESSION_ID_TEXT);
        args[n].ptr = text[n];
        args[n].size = (size_t)len;
        n++;
    }
    if (n == 0)
        return 0;
    memset(w, 0, sizeof(*w));
    w->type = KV_CMD_SESSION_EXPIRE;
    w->arg_count = n;
    w->args = args;
    return n;
}

uint64_t kv_session_first_deadline(const struct kv *kv)
{
    uint64_t first = UINT64_MAX;
    for (uint64_t i = 0; i < kv->sessions.count; i++)
        if (kv->sessions.items[i].deadline_ms < first)
            first = kv->sessions.items[i].deadline_ms;
    return first;
}

enum kv_session_sweep
kv_session_sweep_next(const struct kv *kv, struct kv_term term,
                      const struct kv_term *extended, uint64_t now_ms,
                      char text[][KV_SESSION_ID_TEXT], struct resp_arg *args,
                      struct kv_write *w)
{
    if (extended == NULL || !kv_term_equal(*extended, term)) {
        kv_session_extend_write(w);
        return KV_SWEEP_EXTEND;
    }
    if (kv_session_first_deadline(kv) > now_ms)
        return KV_SWEEP_IDLE;
    if (kv_session_expire_batch(kv, now_ms, text, args, w) == 0)
        return KV_SWEEP_IDLE;
    return KV_SWEEP_EXPIRE;
}
