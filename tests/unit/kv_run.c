/* kv_run — see kv_run.h. */
#include "kv_run.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/bytes.h"
#include "kv/session.h"
#include "kv/snapshot.h"

#define ARGS_MAX 32

void kv_run_init(struct kv_run *t, const struct kv_config *config)
{
    memset(t, 0, sizeof(*t));
    struct kv_config c = kv_config_default();
    c.value_size_max = 1024;
    if (config != NULL)
        c = *config;
    assert_int_equal(kv_init(&t->kv, &c), 0);
    t->reply = malloc(kv_reply_size_max(&c));
    assert_non_null(t->reply);
}

void kv_run_deinit(struct kv_run *t)
{
    kv_deinit(&t->kv);
    free(t->reply);
}

const char *kv_run_apply(struct kv_run *t, uint64_t now_ms, const uint8_t *body,
                         size_t size)
{
    size_t n = kv_apply(&t->kv, ++t->op, now_ms, body, size, t->reply,
                        kv_reply_size_max(&t->kv.config));
    assert_true(n < sizeof(t->text));
    memcpy(t->text, t->reply, n);
    t->text[n] = '\0';
    assert_true(kv_invariants_hold(&t->kv));
    assert_true(kv_sessions_invariants_hold(&t->kv.sessions));
    return t->text;
}

const char *kv_run_write(struct kv_run *t, uint64_t now_ms,
                         const struct kv_write *w)
{
    uint8_t body[4096];
    size_t size = kv_command_size(w);
    assert_true(size <= sizeof(body));
    assert_int_equal(kv_command_encode(w, body, sizeof(body)), size);
    return kv_run_apply(t, now_ms, body, size);
}

const char *kv_run_line(struct kv_run *t, uint64_t now_ms, const char *line)
{
    static char copy[1024];
    struct resp_arg argv[ARGS_MAX];
    uint32_t argc = 0;
    assert_true(strlen(line) < sizeof(copy));
    strcpy(copy, line);
    for (char *w = strtok(copy, " "); w; w = strtok(NULL, " ")) {
        assert_true(argc < ARGS_MAX);
        argv[argc].ptr = w;
        argv[argc++].size = strlen(w);
    }
    struct resp_buf out;
    resp_buf_init(&out, 2);
    struct kv_write w;
    const char *reply = t->text;
    if (kv_command_class(&argv[0]) == KV_CLASS_READ) {
        kv_query_at(&t->kv, now_ms, argc, argv, &out);
    } else if (kv_command_parse(&t->kv.config, argc, argv, &w, &out) == 0) {
        reply = kv_run_write(t, now_ms, &w);
    }
    if (out.size) {
        assert_true(out.size < sizeof(t->text));
        memcpy(t->text, out.data, out.size);
        t->text[out.size] = '\0';
    }
    resp_buf_deinit(&out);
    return reply;
}

int kv_run_buf_write(void *ctx, const void *data, size_t size)
{
    struct kv_run_buf *b = ctx;
    assert_true(b->size + size <= sizeof(b->data));
    memcpy(b->data + b->size, data, size);
    b->size += size;
    return 0;
}

int kv_run_buf_read(void *ctx, void *data, size_t size, size_t *got)
{
    struct kv_run_buf *b = ctx;
    size_t n = b->size - b->pos < size ? b->size - b->pos : size;
    memcpy(data, b->data + b->pos, n);
    b->pos += n;
    *got = n;
    return 0;
}

uint16_t kv_run_snapshot(const struct kv *kv, struct kv_run_buf *buf)
{
    memset(buf, 0, sizeof(*buf));
    struct cohort_err err;
    err_clear(&err);
    assert_int_equal(kv_snapshot_write(kv, kv_run_buf_write, buf, &err), 0);
    return get_u16(buf->data + 4);
}

int kv_run_restore(struct kv *kv, struct kv_run_buf *buf,
                   struct cohort_err *err)
{
    err_clear(err);
    buf->pos = 0;
    return kv_restore(kv, kv_run_buf_read, buf, err);
}
