/* Key change events (kv/changes.h): every command that changes a key, a
 * transaction, expiry, FLUSHALL and RENAME included, records its events
 * at the op's revision, in order, and hands each to the hook with its
 * sequence number; the ring with shared positions keeps its floor and
 * numbers through eviction; a snapshot restore records nothing and
 * resets the ring at the snapshot's op. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "kv/changes.h"
#include "kv/command.h"
#include "kv/kv.h"
#include "kv/snapshot.h"

#define ARGS_MAX 32

struct t {
    struct kv kv;
    uint64_t op;
    uint8_t *reply;
    /* What the hook heard, one "seq:rev:kind:key=value" per event. */
    char heard[4096];
};

static void on_change(void *ctx, uint64_t seq, uint64_t revision, uint8_t kind,
                      const uint8_t *key, size_t key_size, const uint8_t *value,
                      size_t value_size)
{
    struct t *t = ctx;
    size_t n = strlen(t->heard);
    snprintf(t->heard + n, sizeof(t->heard) - n, "%llu:%llu:%s:%.*s=%.*s ",
             (unsigned long long)seq, (unsigned long long)revision,
             kv_change_kind_name(kind), (int)key_size, (const char *)key,
             (int)value_size, (const char *)value);
}

static void t_init(struct t *t, uint32_t history_count)
{
    memset(t, 0, sizeof(*t));
    struct kv_config config = kv_config_default();
    config.history_count_max = history_count;
    config.history_bytes_max = 1u << 20;
    assert_int_equal(kv_init(&t->kv, &config), 0);
    t->kv.publish_hook.ctx = t;
    t->kv.publish_hook.change = on_change;
    t->reply = malloc(kv_reply_size_max(&config));
    assert_non_null(t->reply);
}

static void t_deinit(struct t *t)
{
    kv_deinit(&t->kv);
    free(t->reply);
}

/* Apply one write (words split at spaces) at log time now_ms. */
static void run(struct t *t, uint64_t now_ms, const char *line)
{
    char copy[1024];
    struct resp_arg argv[ARGS_MAX];
    uint32_t argc = 0;
    strcpy(copy, line);
    for (char *w = strtok(copy, " "); w; w = strtok(NULL, " ")) {
        argv[argc].ptr = w;
        argv[argc++].size = strlen(w);
    }
    struct resp_buf out;
    resp_buf_init(&out, 2);
    struct kv_write w;
    assert_int_equal(kv_command_parse(&t->kv.config, argc, argv, &w, &out), 0);
    uint8_t body[2048];
    size_t size = kv_command_encode(&w, body, sizeof(body));
    assert_true(size > 0 && size <= sizeof(body));
    (void)kv_apply(&t->kv, ++t->op, now_ms, body, size, t->reply,
                   kv_reply_size_max(&t->kv.config));
    resp_buf_deinit(&out);
    assert_true(kv_invariants_hold(&t->kv));
}

/* The ring's events from seq on, as the hook's format. */
static const char *ring(const struct t *t)
{
    static char text[4096];
    const struct history *h = &t->kv.changes;
    text[0] = '\0';
    for (uint32_t i = 0; i < h->count; i++) {
        const struct history_entry *e = history_at(h, i);
        size_t n = strlen(text);
        snprintf(text + n, sizeof(text) - n, "%llu:%llu:%s:%.*s=%.*s ",
                 (unsigned long long)(h->first_seq + i),
                 (unsigned long long)e->position,
                 kv_change_kind_name(kv_change_kind(e)), (int)e->channel_size,
                 (const char *)history_channel(e), (int)kv_change_value_size(e),
                 (const char *)kv_change_value(e));
    }
    return text;
}

static void expire_due(struct t *t, uint64_t now_ms, const char *key)
{
    struct resp_arg arg = {.ptr = key, .size = strlen(key)};
    struct kv_write w = {
        .type = KV_CMD_EXPIRE_DUE, .arg_count = 1, .args = &arg};
    uint8_t body[256];
    size_t size = kv_command_encode(&w, body, sizeof(body));
    (void)kv_apply(&t->kv, ++t->op, now_ms, body, size, t->reply,
                   kv_reply_size_max(&t->kv.config));
}

static void every_change_is_recorded_at_its_revision(void **s)
{
    (void)s;
    struct t t;
    t_init(&t, 1000);
    run(&t, 1000, "SET a 1");                           /* 1 */
    run(&t, 1000, "MSET b 2 a 3");                      /* 2: two events */
    run(&t, 1000, "DEL b nothere");                     /* 3 */
    run(&t, 1000, "INCR n");                            /* 4 */
    run(&t, 1000, "RENAME a c");                        /* 5: set c, del a */
    run(&t, 1000, "COHORT.EXEC 0 2 3 SET x 9 2 DEL n"); /* 6 */
    run(&t, 1000, "EXPIRE c 0");                        /* 7: past: del */
    run(&t, 1000, "SET e v PX 10");                     /* 8 */
    run(&t, 2000, "SET e w");                           /* 9: expire, set */
    run(&t, 2000, "SET f v PX 10");                     /* 10 */
    expire_due(&t, 3000, "f");                          /* 11 */
    run(&t, 3000, "EXPIRE x 100");                      /* 12: no event */
    run(&t, 3000, "PUBLISH ch m");                      /* 13: no event */
    run(&t, 3000, "FLUSHALL");                          /* 14: key order */
    const char *want =
        "0:1:set:a=1 1:2:set:b=2 2:2:set:a=3 3:3:del:b= 4:4:set:n=1 "
        "5:5:set:c=3 6:5:del:a= 7:6:set:x=9 8:6:del:n= 9:7:del:c= "
        "10:8:set:e=v 11:9:expire:e= 12:9:set:e=w 13:10:set:f=v "
        "14:11:expire:f= 15:14:del:e= 16:14:del:x= ";
    assert_string_equal(t.heard, want);
    assert_string_equal(ring(&t), want);
    assert_int_equal(t.kv.changes.floor, 0);
    t_deinit(&t);
}

/* A ring of 3: eviction moves the floor to the evicted revision, even in
 * the middle of one (a reader of FROM that revision would miss events);
 * sequence numbers go on. */
static void the_ring_keeps_the_newest_and_its_floor(void **s)
{
    (void)s;
    struct t t;
    t_init(&t, 3);
    run(&t, 1000, "MSET a 1 b 2 c 3 d 4"); /* 1: four events */
    assert_int_equal(t.kv.changes.count, 3);
    assert_int_equal(t.kv.changes.first_seq, 1);
    assert_int_equal(t.kv.changes.floor, 1); /* revision 1 is not whole */
    run(&t, 1000, "SET e 5");                /* 2 */
    assert_string_equal(ring(&t), "2:1:set:c=3 3:1:set:d=4 4:2:set:e=5 ");
    assert_int_equal(history_find(&t.kv.changes, 2), 2);
    run(&t, 1000, "SET f 6");
    run(&t, 1000, "SET g 7");
    assert_string_equal(ring(&t), "4:2:set:e=5 5:3:set:f=6 6:4:set:g=7 ");
    assert_int_equal(t.kv.changes.floor, 1);
    t_deinit(&t);
}

/* kv_changes_resume(), the rule COHORT.WATCH ... FROM and the simulator's
 * watchers share: the first event after rev, or compacted below the
 * floor (an eviction inside a revision makes that revision compacted). */
static void a_resume_starts_after_its_revision_or_is_compacted(void **s)
{
    (void)s;
    struct t t;
    t_init(&t, 3);
    uint64_t seq = 99;
    assert_true(kv_changes_resume(&t.kv.changes, 0, &seq));
    assert_int_equal(seq, 0);      /* nothing yet: the next event's number */
    run(&t, 1000, "MSET a 1 b 2"); /* 1: seq 0, 1 */
    run(&t, 1000, "SET c 3");      /* 2: seq 2 */
    assert_true(kv_changes_resume(&t.kv.changes, 0, &seq));
    assert_int_equal(seq, 0);
    assert_true(kv_changes_resume(&t.kv.changes, 1, &seq));
    assert_int_equal(seq, 2);
    assert_true(kv_changes_resume(&t.kv.changes, 2, &seq));
    assert_int_equal(seq, 3);
    assert_true(kv_changes_resume(&t.kv.changes, 7, &seq)); /* ahead */
    assert_int_equal(seq, 3);
    run(&t, 1000, "SET d 4"); /* 3: evicts seq 0, revision 1 not whole */
    assert_false(kv_changes_resume(&t.kv.changes, 0, &seq));
    assert_true(kv_changes_resume(&t.kv.changes, 1, &seq));
    assert_int_equal(seq, 2);
    t_deinit(&t);
}

/* An event over the byte budget alone is not retained but still numbered,
 * so a reader waiting for it sees it is gone; the hook still hears it. */
static void an_event_over_the_budget_is_numbered_and_skipped(void **s)
{
    (void)s;
    struct history h;
    assert_int_equal(history_init(&h, 10, 200), 0);
    h.shared_positions = true;
    assert_int_equal(history_append_tagged(&h, 5, "k", 1, 's', "v", 1), 0);
    assert_int_equal(history_append_tagged(&h, 5, "l", 1, 's', "v", 1), 0);
    char big[300];
    memset(big, 'x', sizeof(big));
    assert_int_equal(
        history_append_tagged(&h, 6, "k", 1, 's', big, sizeof(big)), 0);
    assert_int_equal(h.count, 0);
    assert_int_equal(h.floor, 6);
    assert_int_equal(history_next_seq(&h), 3);
    assert_int_equal(history_append_tagged(&h, 6, "m", 1, 'd', NULL, 0), 0);
    assert_int_equal(h.first_seq, 3);
    assert_int_equal(history_at(&h, 0)->message_size, 1);
    history_deinit(&h);
}

static int buf_write(void *ctx, const void *data, size_t size)
{
    struct resp_buf *b = ctx;
    resp_write_raw(b, data, size);
    return 0;
}

struct reader {
    const struct resp_buf *b;
    size_t pos;
};

static int buf_read(void *ctx, void *data, size_t size, size_t *got)
{
    struct reader *r = ctx;
    size_t n = r->b->size - r->pos < size ? r->b->size - r->pos : size;
    memcpy(data, r->b->data + r->pos, n);
    r->pos += n;
    *got = n;
    return 0;
}

/* Restoring a snapshot records nothing and resets the ring at its op. */
static void a_restore_records_nothing_and_sets_the_floor(void **s)
{
    (void)s;
    struct t t, u;
    t_init(&t, 100);
    t_init(&u, 100);
    run(&t, 1000, "MSET a 1 b 2");
    run(&t, 1000, "SET c 3");
    run(&u, 1000, "SET z 0");
    struct resp_buf b;
    resp_buf_init(&b, 2);
    struct cohort_err err;
    err_clear(&err);
    assert_int_equal(kv_snapshot_write(&t.kv, buf_write, &b, &err), 0);
    struct reader r = {.b = &b};
    u.heard[0] = '\0';
    kv_clear(&u.kv);
    assert_int_equal(kv_restore(&u.kv, buf_read, &r, &err), 0);
    assert_string_equal(u.heard, "");
    assert_int_equal(u.kv.changes.count, 0);
    assert_int_equal(u.kv.changes.floor, 2);
    resp_buf_deinit(&b);
    t_deinit(&t);
    t_deinit(&u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_change_is_recorded_at_its_revision),
        cmocka_unit_test(the_ring_keeps_the_newest_and_its_floor),
        cmocka_unit_test(a_resume_starts_after_its_revision_or_is_compacted),
        cmocka_unit_test(an_event_over_the_budget_is_numbered_and_skipped),
        cmocka_unit_test(a_restore_records_nothing_and_sets_the_floor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
