/* Sessions and ephemeral keys in the store's state machine
 * (kv/session.h, kv/session_cmd.h): OPEN, KEEPALIVE and CLOSE, SET ...
 * SESSION, the primary's EXTEND and EXPIRE judged by each op's log time,
 * the state hash and snapshots, and hostile log bodies. Time is the op's
 * log timestamp, given explicitly by each step. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "kv/command.h"
#include "kv/kv.h"
#include "kv/lock.h"
#include "kv/session.h"
#include "kv/session_cmd.h"
#include "kv/snapshot.h"
#include "kv_run.h"

/* The primary's ops, as server/session_sweep.c builds them. */
static const char *extend(struct kv_run *t, uint64_t now_ms)
{
    struct kv_write w;
    kv_session_extend_write(&w);
    return kv_run_write(t, now_ms, &w);
}

/* The EXPIRE op of the sessions due at chosen_ms, applied at now_ms
 * (later, as when a KEEPALIVE or EXTEND is ordered in between); "none"
 * if none was due. */
static const char *expire_due(struct kv_run *t, uint64_t chosen_ms,
                              uint64_t now_ms)
{
    char text[KV_SESSION_EXPIRE_BATCH][KV_SESSION_ID_TEXT];
    struct resp_arg args[KV_SESSION_EXPIRE_BATCH];
    struct kv_write w;
    if (kv_session_expire_batch(&t->kv, chosen_ms, text, args, &w) == 0)
        return "none";
    return kv_run_write(t, now_ms, &w);
}

static const char *open_session(struct kv_run *t, uint64_t now_ms, uint64_t ttl)
{
    char line[64];
    snprintf(line, sizeof(line), "COHORT.SESSION OPEN %llu",
             (unsigned long long)ttl);
    return kv_run_line(t, now_ms, line);
}

static void open_keepalive_close_and_ephemeral_keys(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    assert_string_equal(open_session(&t, 1000, 5000), ":1\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "SET e v SESSION 1"), "+OK\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "SET plain v"), "+OK\r\n");
    assert_string_equal(kv_run_line(&t, 1100, "COHORT.SESSION KEEPALIVE 1"),
                        ":5000\r\n");
    assert_int_equal(kv_sessions_find(&t.kv.sessions, 1)->deadline_ms, 6100);
    /* A keepalive never shortens a deadline (EXTEND may have set a later
     * one). */
    assert_int_equal(t.kv.sessions.count, 1);
    assert_string_equal(kv_run_line(&t, 1200, "COHORT.SESSION CLOSE 1"),
                        ":1\r\n");
    assert_string_equal(kv_run_line(&t, 1200, "GET e"), "$-1\r\n");
    assert_string_equal(kv_run_line(&t, 1200, "GET plain"), "$1\r\nv\r\n");
    assert_string_equal(kv_run_line(&t, 1200, "COHORT.SESSION CLOSE 1"),
                        ":0\r\n");
    assert_string_equal(kv_run_line(&t, 1200, "COHORT.SESSION KEEPALIVE 1"),
                        "-ERR no such session 1 (it expired or was closed; "
                        "open a new one)\r\n");
    assert_string_equal(kv_run_line(&t, 1200, "SET e v SESSION 1"),
                        "-ERR no such session 1 (it expired or was closed; "
                        "open a new one)\r\n");
    assert_string_equal(kv_run_line(&t, 1200, "GET e"), "$-1\r\n");
    assert_int_equal(t.kv.sessions.count, 0);
    kv_run_deinit(&t);
}

static void bad_input_is_refused_with_a_message(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    assert_string_equal(open_session(&t, 1000, 99),
                        "-ERR session ttl-ms must be an integer from 100 to "
                        "86400000\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.SESSION OPEN x"),
                        "-ERR session ttl-ms must be an integer from 100 to "
                        "86400000\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.SESSION KEEPALIVE -3"),
                        "-ERR session id must be a positive integer (the "
                        "reply of COHORT.SESSION OPEN)\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.SESSION RENEW 1"),
                        "-ERR unknown COHORT.SESSION subcommand 'RENEW'; "
                        "use OPEN ttl-ms, KEEPALIVE id or CLOSE id\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.SESSION OPEN"),
                        "-ERR wrong number of arguments for "
                        "'cohort.session' command\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "SET k v SESSION"),
                        "-ERR syntax error\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "SET k v SESSION 0"),
                        "-ERR session id must be a positive integer (the "
                        "reply of COHORT.SESSION OPEN)\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "SET k v SESSION 1 EX 5"),
                        "-ERR SET with SESSION takes no EX, PX, EXAT, PXAT "
                        "or KEEPTTL: the key lives as long as the "
                        "session\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "SET k v KEEPTTL SESSION 1"),
                        "-ERR SET with SESSION takes no EX, PX, EXAT, PXAT "
                        "or KEEPTTL: the key lives as long as the "
                        "session\r\n");
    assert_int_equal(t.op, 0); /* none of these reached the log */
    /* Hostile log bodies: an error reply, nothing changed. */
    struct resp_arg bad = {.ptr = "zz", .size = 2};
    struct kv_write w = {
        .type = KV_CMD_SESSION_OPEN, .arg_count = 1, .args = &bad};
    assert_string_equal(kv_run_write(&t, 1000, &w),
                        "-ERR session ttl-ms must be an integer from 100 to "
                        "86400000\r\n");
    w.type = KV_CMD_SESSION_EXPIRE;
    assert_string_equal(kv_run_write(&t, 1000, &w), ":0\r\n");
    uint8_t body[8] = {KV_COMMAND_FORMAT, KV_CMD_SESSION_EXTEND, 1, 0};
    assert_true(strstr(kv_run_apply(&t, 1000, body, sizeof(body)),
                       "malformed command") != NULL);
    assert_int_equal(t.kv.sessions.count, 0);
    kv_run_deinit(&t);
}

/* EXPIRE ends only sessions due at its own time: a KEEPALIVE ordered
 * before it in the log saves the session. */
static void expire_is_judged_at_the_ops_own_time(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    assert_string_equal(open_session(&t, 1000, 1000), ":1\r\n");
    assert_string_equal(open_session(&t, 1000, 3000), ":2\r\n");
    kv_run_line(&t, 1000, "SET a v SESSION 1");
    kv_run_line(&t, 1000, "SET b v SESSION 2");
    assert_string_equal(expire_due(&t, 1999, 1999), "none");
    /* Chosen at 2000, but a keepalive at 1900 is applied first. */
    char text[KV_SESSION_EXPIRE_BATCH][KV_SESSION_ID_TEXT];
    struct resp_arg args[KV_SESSION_EXPIRE_BATCH];
    struct kv_write w;
    assert_int_equal(kv_session_expire_batch(&t.kv, 2000, text, args, &w), 1);
    assert_string_equal(kv_run_line(&t, 1900, "COHORT.SESSION KEEPALIVE 1"),
                        ":1000\r\n");
    assert_string_equal(kv_run_write(&t, 2000, &w), ":0\r\n");
    assert_string_equal(kv_run_line(&t, 2000, "GET a"), "$1\r\nv\r\n");
    /* Due at 2900: ended with its key in that op; session 2 stays. */
    assert_string_equal(expire_due(&t, 2900, 2900), ":1\r\n");
    assert_string_equal(kv_run_line(&t, 2900, "GET a"), "$-1\r\n");
    assert_string_equal(kv_run_line(&t, 2900, "GET b"), "$1\r\nv\r\n");
    assert_int_equal(t.kv.sessions.expired, 1);
    assert_string_equal(expire_due(&t, 4000, 4000), ":1\r\n");
    assert_string_equal(kv_run_line(&t, 4000, "GET b"), "$-1\r\n");
    assert_int_equal(t.kv.key_count, 0);
    kv_run_deinit(&t);
}

/* The failover rule: EXTEND gives every session a full TTL from the new
 * primary's first op, so a deadline that passed while no primary could
 * take a keepalive does not end it. */
static void extend_gives_every_session_a_full_ttl(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    open_session(&t, 1000, 1000); /* deadline 2000 */
    open_session(&t, 1000, 9000); /* deadline 10000 */
    kv_run_line(&t, 1000, "SET a v SESSION 1");
    /* The old primary died at 1500; the new one's first op is at 2600. */
    assert_string_equal(extend(&t, 2600), ":2\r\n");
    assert_int_equal(kv_sessions_find(&t.kv.sessions, 1)->deadline_ms, 3600);
    assert_int_equal(kv_sessions_find(&t.kv.sessions, 2)->deadline_ms,
                     11600); /* a full TTL from 2600, not from 1000 */
    /* A second EXTEND (a later view) never shortens a deadline. */
    assert_string_equal(kv_run_line(&t, 2700, "COHORT.SESSION KEEPALIVE 1"),
                        ":1000\r\n");
    assert_string_equal(extend(&t, 2650), ":2\r\n");
    assert_int_equal(kv_sessions_find(&t.kv.sessions, 1)->deadline_ms, 3700);
    assert_string_equal(expire_due(&t, 3699, 3699), "none");
    assert_string_equal(kv_run_line(&t, 3000, "COHORT.SESSION KEEPALIVE 1"),
                        ":1000\r\n");
    assert_string_equal(expire_due(&t, 3999, 3999), "none");
    assert_string_equal(kv_run_line(&t, 3999, "GET a"), "$1\r\nv\r\n");
    /* The client stopped: gone one TTL after its last keepalive. */
    assert_string_equal(expire_due(&t, 4000, 4000), ":1\r\n");
    assert_string_equal(kv_run_line(&t, 4000, "GET a"), "$-1\r\n");
    kv_run_deinit(&t);
}

/* Another command's write of an ephemeral key makes it an ordinary key;
 * a SET ... SESSION of another session moves it to that session. */
/* kv_session_sweep_next(), the sweeper's choice that the server and the
 * simulator share: EXTEND until this term's is done, then EXPIRE of the
 * sessions due, else nothing. A term is (epoch, view): an EXTEND done in
 * view 4 of epoch 1 does not count in view 4 of epoch 2. */
static void the_sweeper_extends_once_per_term_before_expiring(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    char text[KV_SESSION_EXPIRE_BATCH][KV_SESSION_ID_TEXT];
    struct resp_arg args[KV_SESSION_EXPIRE_BATCH];
    struct kv_write w;
    assert_string_equal(open_session(&t, 1000, 500), ":1\r\n");
    struct kv_term now = {1, 4};
    /* A new primary (nothing extended): EXTEND, though session 1 is due. */
    assert_int_equal(
        kv_session_sweep_next(&t.kv, now, NULL, 2000, text, args, &w),
        KV_SWEEP_EXTEND);
    assert_int_equal(w.type, KV_CMD_SESSION_EXTEND);
    struct kv_term older_view = {1, 3};
    assert_int_equal(
        kv_session_sweep_next(&t.kv, now, &older_view, 2000, text, args, &w),
        KV_SWEEP_EXTEND);
    /* The same view number in another epoch is another term. */
    struct kv_term other_epoch = {0, 4};
    assert_int_equal(
        kv_session_sweep_next(&t.kv, now, &other_epoch, 2000, text, args, &w),
        KV_SWEEP_EXTEND);
    struct kv_term next_epoch = {2, 4};
    assert_int_equal(
        kv_session_sweep_next(&t.kv, next_epoch, &now, 2000, text, args, &w),
        KV_SWEEP_EXTEND);
    /* Extended in this term: EXPIRE of what is due, or nothing. */
    assert_int_equal(
        kv_session_sweep_next(&t.kv, now, &now, 1400, text, args, &w),
        KV_SWEEP_IDLE);
    assert_int_equal(
        kv_session_sweep_next(&t.kv, now, &now, 1500, text, args, &w),
        KV_SWEEP_EXPIRE);
    assert_int_equal(w.type, KV_CMD_SESSION_EXPIRE);
    assert_int_equal(w.arg_count, 1);
    assert_memory_equal(w.args[0].ptr, "1", 1);
    kv_run_deinit(&t);
}

static void a_later_write_detaches_an_ephemeral_key(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    open_session(&t, 1000, 5000); /* 1 */
    open_session(&t, 1000, 5000); /* 2 */
    kv_run_line(&t, 1000, "SET plain v SESSION 1");
    kv_run_line(&t, 1000, "SET plain w");
    kv_run_line(&t, 1000, "SET moved v SESSION 1");
    kv_run_line(&t, 1000, "SET moved v SESSION 2");
    kv_run_line(&t, 1000, "SET again v SESSION 1");
    kv_run_line(&t, 1000, "SET again w SESSION 1");
    kv_run_line(&t, 1000, "SET nx v SESSION 1 NX");
    kv_run_line(&t, 1000, "SET nx w SESSION 2 NX"); /* not written: stays 1's */
    assert_int_equal(kv_sessions_find(&t.kv.sessions, 1)->key_count, 4);
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.SESSION CLOSE 1"),
                        ":1\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "GET plain"), "$1\r\nw\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "GET moved"), "$1\r\nv\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "GET again"), "$-1\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "GET nx"), "$-1\r\n");
    /* Deleted and re-created by someone else: not the session's either. */
    kv_run_line(&t, 1000, "DEL moved");
    kv_run_line(&t, 1000, "SET moved x");
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.SESSION CLOSE 2"),
                        ":1\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "GET moved"), "$1\r\nx\r\n");
    kv_run_deinit(&t);
}

/* Two replicas applying the same log give the same state hash; the
 * sessions (deadlines included) are part of it. */
static void sessions_are_in_the_state_hash(void **s)
{
    (void)s;
    struct kv_run a, b;
    kv_run_init(&a, NULL);
    kv_run_init(&b, NULL);
    uint64_t empty = kv_state_hash(&a.kv);
    const char *lines[] = {"COHORT.SESSION OPEN 1000", "SET e v SESSION 1",
                           "COHORT.SESSION KEEPALIVE 1"};
    for (size_t i = 0; i < 3; i++) {
        kv_run_line(&a, 1000 + i, lines[i]);
        kv_run_line(&b, 1000 + i, lines[i]);
        assert_int_equal(kv_state_hash(&a.kv), kv_state_hash(&b.kv));
    }
    assert_int_not_equal(kv_state_hash(&a.kv), empty);
    uint64_t before = kv_state_hash(&a.kv);
    kv_run_line(&a, 1500, "COHORT.SESSION KEEPALIVE 1");
    assert_int_not_equal(kv_state_hash(&a.kv), before);
    kv_run_line(&a, 1500, "COHORT.SESSION CLOSE 1");
    kv_run_line(&b, 1500, "COHORT.SESSION CLOSE 1");
    assert_int_equal(kv_state_hash(&a.kv), kv_state_hash(&b.kv));
    /* No session left: the hash of a store that never had one. */
    kv_run_line(&a, 1500, "DEL nothing");
    struct kv_run c;
    kv_run_init(&c, NULL);
    assert_int_equal(kv_state_hash(&a.kv), kv_state_hash(&c.kv));
    kv_run_deinit(&a);
    kv_run_deinit(&b);
    kv_run_deinit(&c);
}

static struct kv_run_buf snap;

static uint16_t snapshot(struct kv_run *t)
{
    memset(&snap, 0, sizeof(snap));
    struct cohort_err err;
    err_clear(&err);
    assert_int_equal(kv_snapshot_write(&t->kv, kv_run_buf_write, &snap, &err),
                     0);
    return (uint16_t)(snap.data[4] | snap.data[5] << 8);
}

static int restore(struct kv *copy, const struct kv_config *config)
{
    struct cohort_err err;
    err_clear(&err);
    snap.pos = 0;
    assert_int_equal(kv_init(copy, config), 0);
    return kv_restore(copy, kv_run_buf_read, &snap, &err);
}

static void snapshots_keep_sessions_and_their_keys(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    kv_run_line(&t, 1000, "SET plain v");
    assert_int_equal(snapshot(&t), 1); /* no session: the old format */
    open_session(&t, 1000, 2000);
    open_session(&t, 1000, 5000);
    kv_run_line(&t, 1000, "SET e1 v SESSION 2");
    kv_run_line(&t, 1000, "SET e2 v SESSION 3");
    kv_run_line(&t, 1000, "SET x v PX 100000");
    kv_run_line(&t, 1200, "COHORT.SESSION KEEPALIVE 2");
    assert_int_equal(snapshot(&t), 7); /* expiry and sessions */
    struct kv copy;
    assert_int_equal(restore(&copy, &t.kv.config), 0);
    assert_int_equal(kv_state_hash(&copy), kv_state_hash(&t.kv));
    assert_true(kv_sessions_invariants_hold(&copy.sessions));
    assert_int_equal(copy.sessions.count, 2);
    assert_int_equal(kv_sessions_find(&copy.sessions, 2)->deadline_ms, 3200);
    /* The restored replica ends the session as the original does. */
    struct kv_run r = {.kv = copy,
                       .op = t.op,
                       .reply = malloc(kv_reply_size_max(&copy.config))};
    assert_string_equal(expire_due(&r, 3200, 3200), ":1\r\n");
    assert_string_equal(expire_due(&t, 3200, 3200), ":1\r\n");
    assert_string_equal(kv_run_line(&r, 3200, "GET e1"), "$-1\r\n");
    assert_string_equal(kv_run_line(&r, 3200, "GET e2"), "$1\r\nv\r\n");
    assert_int_equal(kv_state_hash(&r.kv), kv_state_hash(&t.kv));
    kv_run_deinit(&r);
    /* A flipped byte in the sessions section is refused. */
    snapshot(&t);
    snap.data[snap.size - 16 - 8] ^= 1;
    struct kv bad;
    assert_int_equal(restore(&bad, &t.kv.config), -COHORT_ECORRUPT);
    assert_int_equal(bad.sessions.count, 0);
    kv_deinit(&bad);
    kv_run_deinit(&t);
}

static void the_sessions_encoding_refuses_hostile_bytes(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    open_session(&t, 1000, 2000);
    kv_run_line(&t, 1000, "SET e v SESSION 1");
    size_t size = kv_sessions_encoded_size(&t.kv.sessions);
    uint8_t data[256];
    assert_true(size <= sizeof(data));
    kv_sessions_encode(&t.kv.sessions, data, size);
    struct kv_sessions back;
    kv_sessions_init(&back);
    const char *why = NULL;
    assert_int_equal(kv_sessions_decode(&back, data, size, 64, &why), 0);
    assert_int_equal(back.digest_sum, t.kv.sessions.digest_sum);
    kv_sessions_clear(&back);
    /* Every truncation, a key over the limit, a zero ttl. */
    for (size_t n = 0; n < size; n++) {
        assert_int_equal(kv_sessions_decode(&back, data, n, 64, &why),
                         -COHORT_ECORRUPT);
        assert_int_equal(back.count, 0);
    }
    assert_int_equal(kv_sessions_decode(&back, data, size, 0, &why),
                     -COHORT_ECORRUPT);
    data[16] = 0; /* ttl_ms low byte: 2000 -> 1792, still valid */
    data[17] = 0; /* ... now 0 */
    assert_int_equal(kv_sessions_decode(&back, data, size, 64, &why),
                     -COHORT_ECORRUPT);
    kv_sessions_deinit(&back);
    kv_run_deinit(&t);
}

/* Locks: FIFO among waiters, tokens (the grant's op) strictly increasing,
 * released by UNLOCK, CLOSE and expiry, each granting the next waiter. */
static void locks_grant_in_fifo_order_with_increasing_tokens(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    open_session(&t, 1000, 1000); /* 1 */
    open_session(&t, 1000, 5000); /* 2 */
    open_session(&t, 1000, 5000); /* 3 */
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.LOCK L 1"), ":4\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.LOCK L 1"), ":4\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.LOCK L 2"), "$-1\r\n");
    assert_int_equal(kv_sessions_find(&t.kv.sessions, 2) != NULL, 1);
    assert_int_equal(t.kv.sessions.locks[0].count, 1); /* no WAIT: no queue */
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.LOCK L 3 WAIT"),
                        "$-1\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.LOCK L 2 WAIT"),
                        "$-1\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.LOCK L 3 WAIT"),
                        "$-1\r\n");
    assert_int_equal(t.kv.sessions.locks[0].count, 3);
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.FENCE L 4 data a"),
                        "+OK\r\n");
    /* Session 1 expires (op 11): 3 asked first, so it is granted at 11. */
    assert_string_equal(expire_due(&t, 2000, 2000), ":1\r\n");
    assert_int_equal(t.op, 11);
    assert_string_equal(kv_run_line(&t, 2000, "COHORT.LOCK L 3"), ":11\r\n");
    assert_string_equal(kv_run_line(&t, 2000, "COHORT.FENCE L 4 data b"),
                        "-ERR fencing token 4 is not current for lock 'L' "
                        "(its token is 11); take the lock again\r\n");
    assert_string_equal(kv_run_line(&t, 2000, "GET data"), "$1\r\na\r\n");
    assert_string_equal(kv_run_line(&t, 2000, "COHORT.FENCE L 11 data c"),
                        "+OK\r\n");
    /* UNLOCK by a non-holder changes nothing; by the holder grants 2. */
    assert_string_equal(kv_run_line(&t, 2000, "COHORT.UNLOCK L 1"), ":0\r\n");
    assert_string_equal(kv_run_line(&t, 2000, "COHORT.UNLOCK L 3"), ":1\r\n");
    assert_string_equal(kv_run_line(&t, 2000, "COHORT.LOCK L 2"), ":16\r\n");
    assert_string_equal(kv_run_line(&t, 2000, "COHORT.SESSION CLOSE 2"),
                        ":1\r\n");
    assert_int_equal(t.kv.sessions.lock_count, 0); /* freed when empty */
    assert_string_equal(kv_run_line(&t, 2000, "COHORT.FENCE L 16 data d"),
                        "-ERR fencing token 16 is not current for lock 'L' "
                        "(it is free); take the lock again\r\n");
    assert_string_equal(kv_run_line(&t, 2000, "COHORT.LOCK L 3"), ":20\r\n");
    /* WAIT ms is the same op as WAIT (the server holds the answer); where
     * a session stands is what the server's wait judges. */
    uint64_t four = strtoull(open_session(&t, 2000, 5000) + 1, NULL, 10);
    char line[64];
    snprintf(line, sizeof(line), "COHORT.LOCK L %llu WAIT 500",
             (unsigned long long)four);
    assert_string_equal(kv_run_line(&t, 2000, line), "$-1\r\n");
    uint64_t token = 0;
    const uint8_t *name = (const uint8_t *)"L";
    assert_int_equal(kv_lock_position(&t.kv.sessions, name, 1, 3, &token), 0);
    assert_int_equal(token, 20);
    assert_int_equal(kv_lock_position(&t.kv.sessions, name, 1, four, &token),
                     1);
    assert_int_equal(kv_lock_position(&t.kv.sessions, name, 1, 9, &token), -1);
    assert_int_equal(
        kv_lock_position(&t.kv.sessions, (const uint8_t *)"M", 1, 3, &token),
        -1);
    kv_run_deinit(&t);
}

/* COHORT.SESSIONS and COHORT.LOCKS list the table as it stands, with the
 * time left judged at the read's log time, and refuse bad ids. */
static void sessions_and_locks_are_listed(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.SESSIONS"), "*0\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.LOCKS"), "*0\r\n");
    open_session(&t, 1000, 1000); /* 1 */
    open_session(&t, 1000, 5000); /* 2 */
    assert_string_equal(kv_run_line(&t, 1000, "SET e v SESSION 1"), "+OK\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.LOCK L 2"), ":4\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.LOCK L 1 WAIT"),
                        "$-1\r\n");
    assert_string_equal(kv_run_line(&t, 1400, "COHORT.SESSIONS"),
                        "*2\r\n*4\r\n:1\r\n:1000\r\n:600\r\n:1\r\n"
                        "*4\r\n:2\r\n:5000\r\n:4600\r\n:0\r\n");
    assert_string_equal(kv_run_line(&t, 2500, "COHORT.SESSIONS 1"),
                        "*4\r\n:1\r\n:1000\r\n:0\r\n*1\r\n$1\r\ne\r\n");
    assert_string_equal(kv_run_line(&t, 1400, "COHORT.SESSIONS 9"), "$-1\r\n");
    assert_string_equal(kv_run_line(&t, 1400, "COHORT.SESSIONS x"),
                        "-ERR syntax error: COHORT.SESSIONS [id] (a session "
                        "id is a positive integer)\r\n");
    assert_string_equal(kv_run_line(&t, 1400, "COHORT.LOCKS"),
                        "*1\r\n*4\r\n$1\r\nL\r\n:2\r\n:4\r\n*1\r\n:1\r\n");
    assert_string_equal(kv_run_line(&t, 1400, "COHORT.LOCKS L"),
                        "*4\r\n$1\r\nL\r\n:2\r\n:4\r\n*1\r\n:1\r\n");
    assert_string_equal(kv_run_line(&t, 1400, "COHORT.LOCKS M"), "$-1\r\n");
    assert_string_equal(kv_run_line(&t, 1400, "COHORT.LOCKS L M"),
                        "-ERR syntax error: COHORT.LOCKS [name]\r\n");
    kv_run_deinit(&t);
}

static void lock_bad_input_and_ended_sessions(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.LOCK L 7"),
                        "-ERR no such session 7 (it expired or was closed; "
                        "open a new one)\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.LOCK L 7 NOW"),
                        "-ERR syntax error: COHORT.LOCK name session "
                        "[WAIT [ms]]\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.LOCK L 7 WAIT -5"),
                        "-ERR WAIT takes the milliseconds to wait for the "
                        "lock, 0 to 3600000\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.LOCK L 7 NOW 5"),
                        "-ERR syntax error: COHORT.LOCK name session "
                        "[WAIT [ms]]\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.LOCK L x"),
                        "-ERR session id must be a positive integer (the "
                        "reply of COHORT.SESSION OPEN)\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.FENCE L 0 k v"),
                        "-ERR fencing token must be a positive integer (the "
                        "reply of COHORT.LOCK)\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.UNLOCK L"),
                        "-ERR wrong number of arguments for "
                        "'cohort.unlock' command\r\n");
    assert_int_equal(t.kv.sessions.lock_count, 0);
    kv_run_deinit(&t);
}

/* Many sessions and locks: tokens strictly increase across every grant,
 * at most one holder per lock, and a snapshot keeps the queues. */
static void tokens_increase_and_snapshots_keep_queues(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    char line[128];
    for (int i = 0; i < 6; i++)
        open_session(&t, 1000, 1000 + 500 * (uint64_t)i); /* ids 1..6 */
    for (int i = 1; i <= 6; i++)
        for (int l = 0; l < 3; l++) {
            snprintf(line, sizeof(line), "COHORT.LOCK L%d %d WAIT", l, i);
            kv_run_line(&t, 1000, line);
        }
    struct kv copy;
    assert_int_equal(snapshot(&t), 5);
    assert_int_equal(restore(&copy, &t.kv.config), 0);
    assert_int_equal(kv_state_hash(&copy), kv_state_hash(&t.kv));
    assert_int_equal(copy.sessions.lock_count, 3);
    assert_true(kv_sessions_invariants_hold(&copy.sessions));
    kv_deinit(&copy);
    uint64_t last = 0;
    for (uint64_t now = 2000; now <= 4000; now += 500) {
        expire_due(&t, now, now);
        for (int l = 0; l < 3; l++) {
            snprintf(line, sizeof(line), "L%d", l);
            struct kv_lock *lk =
                kv_lock_find(&t.kv.sessions, (const uint8_t *)line, 2);
            assert_non_null(lk);
            assert_true(lk->queue[0].token > last);
            for (uint32_t j = 1; j < lk->count; j++)
                assert_int_equal(lk->queue[j].token, 0);
        }
        last = t.op - 1; /* every grant of this op is t.op: later ops beat it */
    }
    kv_run_deinit(&t);
}

/* Groups: members in join order, a view number (the op of the last
 * change) that strictly increases, members leaving with their session,
 * ELECT naming the longest member. */
static void groups_have_ordered_views_and_lose_ended_sessions(void **s)
{
    (void)s;
    struct kv_run t;
    kv_run_init(&t, NULL);
    open_session(&t, 1000, 1000); /* 1 */
    open_session(&t, 1000, 5000); /* 2 */
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.ELECT g"), "*-1\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.GROUP VIEW g"),
                        "*2\r\n:0\r\n*0\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.GROUP JOIN g a 1 h1"),
                        ":5\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.GROUP JOIN g b 2"),
                        ":6\r\n");
    /* The same join again is no change; a name held by another session is
     * refused. */
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.GROUP JOIN g a 1 h1"),
                        ":6\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.GROUP JOIN g a 2 h2"),
                        "-ERR member 'a' of group 'g' belongs to session 1; "
                        "pick another name\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.GROUP VIEW g"),
                        "*2\r\n:6\r\n*4\r\n$1\r\na\r\n$2\r\nh1\r\n$1\r\nb\r\n"
                        "$0\r\n\r\n");
    assert_string_equal(kv_run_line(&t, 1000, "COHORT.ELECT g"),
                        "*3\r\n:6\r\n$1\r\na\r\n$2\r\nh1\r\n");
    /* Session 1 expires at op 11: b leads view 11. */
    assert_string_equal(expire_due(&t, 2000, 2000), ":1\r\n");
    assert_int_equal(t.op, 11);
    assert_string_equal(kv_run_line(&t, 2000, "COHORT.ELECT g"),
                        "*3\r\n:11\r\n$1\r\nb\r\n$0\r\n\r\n");
    assert_string_equal(kv_run_line(&t, 2000, "COHORT.GROUP LEAVE g a"),
                        ":0\r\n");
    assert_string_equal(kv_run_line(&t, 2000, "COHORT.GROUP LEAVE g b"),
                        ":1\r\n");
    assert_int_equal(t.kv.sessions.group_count, 0);
    assert_string_equal(kv_run_line(&t, 2000, "COHORT.GROUP JOIN g c 9"),
                        "-ERR no such session 9 (it expired or was closed; "
                        "open a new one)\r\n");
    assert_string_equal(kv_run_line(&t, 2000, "COHORT.GROUP JOIN g"),
                        "-ERR syntax error: COHORT.GROUP JOIN group member "
                        "session [data] | LEAVE group member | VIEW "
                        "group\r\n");
    /* A snapshot keeps groups; the restored copy hashes the same. */
    kv_run_line(&t, 2000, "COHORT.GROUP JOIN g c 2 x");
    kv_run_line(&t, 2000, "COHORT.GROUP JOIN h c 2 y");
    struct kv copy;
    assert_int_equal(snapshot(&t), 5);
    assert_int_equal(restore(&copy, &t.kv.config), 0);
    assert_int_equal(kv_state_hash(&copy), kv_state_hash(&t.kv));
    assert_int_equal(copy.sessions.group_count, 2);
    assert_true(kv_sessions_invariants_hold(&copy.sessions));
    kv_deinit(&copy);
    assert_string_equal(kv_run_line(&t, 2000, "COHORT.SESSION CLOSE 2"),
                        ":1\r\n");
    assert_int_equal(t.kv.sessions.group_count, 0);
    kv_run_deinit(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(open_keepalive_close_and_ephemeral_keys),
        cmocka_unit_test(bad_input_is_refused_with_a_message),
        cmocka_unit_test(expire_is_judged_at_the_ops_own_time),
        cmocka_unit_test(extend_gives_every_session_a_full_ttl),
        cmocka_unit_test(the_sweeper_extends_once_per_term_before_expiring),
        cmocka_unit_test(a_later_write_detaches_an_ephemeral_key),
        cmocka_unit_test(sessions_are_in_the_state_hash),
        cmocka_unit_test(snapshots_keep_sessions_and_their_keys),
        cmocka_unit_test(the_sessions_encoding_refuses_hostile_bytes),
        cmocka_unit_test(locks_grant_in_fifo_order_with_increasing_tokens),
        cmocka_unit_test(lock_bad_input_and_ended_sessions),
        cmocka_unit_test(sessions_and_locks_are_listed),
        cmocka_unit_test(tokens_increase_and_snapshots_keep_queues),
        cmocka_unit_test(groups_have_ordered_views_and_lose_ended_sessions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
