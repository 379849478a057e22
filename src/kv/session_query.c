/* session_query — the reads of the session table, for operators and for
 * applications inspecting their locks (ZooKeeper's `dump`, etcd's `lease
 * list` and `lease timetolive --keys`):
 *
 *     COHORT.SESSIONS                 one [id, ttl-ms, remaining-ms,
 *                                     key-count] per session, by id
 *     COHORT.SESSIONS id              [id, ttl-ms, remaining-ms,
 *                                     [key, ...]] (its ephemeral keys),
 *                                     or nil if there is no such session
 *     COHORT.LOCKS                    one [name, holder, token, [waiting
 *                                     session, ...]] per lock
 *     COHORT.LOCKS name               that lock's entry, or nil if free
 *
 * remaining-ms is the session's deadline minus the read's log time (0 once
 * it is due: the primary's sweep ends it in its next op). Reads like GET:
 * linearizable by default, a member's own state after READONLY. They
 * change nothing and are answered from kv->sessions (kv/session.h).
 */
#include <inttypes.h>
#include <string.h>

#include "kv/lock.h"
#include "kv/session.h"
#include "kv/session_cmd.h"

static void write_u64(struct resp_buf *r, uint64_t v)
{
    resp_write_integer(r, v > INT64_MAX ? INT64_MAX : (int64_t)v);
}

static bool parse_id(const struct resp_arg *arg, uint64_t *id)
{
    int64_t n;
    if (!resp_parse_i64(arg->ptr, arg->size, &n) || n <= 0)
        return false;
    *id = (uint64_t)n;
    return true;
}

static void write_session(struct resp_buf *r, const struct kv_session *s,
                          uint64_t now_ms, bool with_keys)
{
    resp_write_array(r, 4);
    write_u64(r, s->id);
    write_u64(r, s->ttl_ms);
    write_u64(r, s->deadline_ms > now_ms ? s->deadline_ms - now_ms : 0);
    if (!with_keys) {
        write_u64(r, s->key_count);
        return;
    }
    resp_write_array(r, s->key_count);
    for (uint32_t i = 0; i < s->key_count; i++)
        resp_write_bulk(r, s->keys[i].key, s->keys[i].key_size);
}

static void write_lock(struct resp_buf *r, const struct kv_lock *l)
{
    resp_write_array(r, 4);
    resp_write_bulk(r, l->name, l->name_size);
    write_u64(r, l->queue[0].session);
    write_u64(r, l->queue[0].token);
    resp_write_array(r, l->count - 1);
    for (uint32_t i = 1; i < l->count; i++)
        write_u64(r, l->queue[i].session);
}

static void query_sessions(const struct kv *kv, uint64_t now_ms, uint32_t argc,
                           const struct resp_arg *argv, struct resp_buf *r)
{
    const struct kv_sessions *t = &kv->sessions;
    if (argc == 1) {
        resp_write_array(r, t->count);
        for (uint64_t i = 0; i < t->count; i++)
            write_session(r, &t->items[i], now_ms, false);
        return;
    }
    uint64_t id;
    if (argc != 2 || !parse_id(&argv[1], &id)) {
        resp_write_error(r, "ERR syntax error: COHORT.SESSIONS [id] (a "
                            "session id is a positive integer)");
        return;
    }
    const struct kv_session *s =
        kv_sessions_find((struct kv_sessions *)t, id); /* only looks */
    if (s == NULL)
        resp_write_null(r);
    else
        write_session(r, s, now_ms, true);
}

static void query_locks(const struct kv *kv, uint32_t argc,
                        const struct resp_arg *argv, struct resp_buf *r)
{
    const struct kv_sessions *t = &kv->sessions;
    if (argc == 1) {
        resp_write_array(r, t->lock_count);
        for (uint64_t i = 0; i < t->lock_count; i++)
            write_lock(r, &t->locks[i]);
        return;
    }
    if (argc != 2) {
        resp_write_error(r, "ERR syntax error: COHORT.LOCKS [name]");
        return;
    }
    const struct kv_lock *l =
        kv_lock_find((struct kv_sessions *)t, (const uint8_t *)argv[1].ptr,
                     argv[1].size); /* only looks */
    if (l == NULL)
        resp_write_null(r);
    else
        write_lock(r, l);
}

void kv_session_query(const struct kv *kv, uint64_t now_ms,
                      const struct kv_command_def *def, uint32_t argc,
                      const struct resp_arg *argv, struct resp_buf *r)
{
    if (def->id == KV_SESSION_ID_SESSIONS)
        query_sessions(kv, now_ms, argc, argv, r);
    else
        query_locks(kv, argc, argv, r);
}
