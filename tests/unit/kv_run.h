/* kv_run — shared by the store's unit tests: a store (src/kv) driven as a
 * replica drives it, one op at a time at a log time the test gives, with
 * the reply of each step as NUL-terminated RESP text and the store's
 * invariants checked after every op. */
#ifndef COHORT_TESTS_KV_RUN_H
#define COHORT_TESTS_KV_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "kv/command.h"
#include "kv/kv.h"

struct kv_run {
    struct kv kv;
    uint64_t op;
    uint8_t *reply;
    char text[4096];
};

/* A store with config (NULL: the default with max-value-size 1024). */
void kv_run_init(struct kv_run *t, const struct kv_config *config);
void kv_run_deinit(struct kv_run *t);
/* Apply a log body as the next op at log time now_ms: its reply. */
const char *kv_run_apply(struct kv_run *t, uint64_t now_ms, const uint8_t *body,
                         size_t size);
/* Encode a parsed write and apply it: its reply. */
const char *kv_run_write(struct kv_run *t, uint64_t now_ms,
                         const struct kv_write *w);
/* Run a command (words split at single spaces) at log time now_ms: a
 * write is parsed, encoded and applied; a read is answered as a replica
 * at now_ms would. Its reply, or the parse error's. */
const char *kv_run_line(struct kv_run *t, uint64_t now_ms, const char *line);

/* A snapshot stream in memory: kv_snapshot_write(..., kv_run_buf_write,
 * &buf, ...) fills it, kv_restore(..., kv_run_buf_read, &buf, ...) reads
 * it from pos. */
struct kv_run_buf {
    uint8_t data[65536];
    size_t size, pos;
};
int kv_run_buf_write(void *ctx, const void *data, size_t size);
int kv_run_buf_read(void *ctx, void *data, size_t size, size_t *got);
/* Write kv's snapshot into buf (emptied first; the write must succeed):
 * the stream's format. Restore kv from buf, from its start. */
uint16_t kv_run_snapshot(const struct kv *kv, struct kv_run_buf *buf);
int kv_run_restore(struct kv *kv, struct kv_run_buf *buf,
                   struct cohort_err *err);

#endif
