/* sim/disk — simulated durable storage of one replica. See disk.h. */
#include "sim/disk.h"

#include <stdlib.h>
#include <string.h>

#include "common/assert.h"

static void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    ASSERT(p != NULL);
    return p;
}

static uint8_t *dup_bytes(const uint8_t *src, size_t size)
{
    uint8_t *p = xmalloc(size);
    if (size)
        memcpy(p, src, size);
    return p;
}

void sim_snapshot_copy(struct sim_snapshot *dst, const struct sim_snapshot *src)
{
    *dst = *src;
    dst->state = dup_bytes(src->state, src->state_size);
    dst->client_table = dup_bytes(src->client_table, src->client_table_size);
}

void sim_snapshot_free(struct sim_snapshot *s)
{
    free(s->state);
    free(s->client_table);
    memset(s, 0, sizeof(*s));
}

void sim_disk_init(struct sim_disk *d, struct prng *prng,
                   const struct sim_disk_config *config)
{
    ASSERT(config->latency_min_ms <= config->latency_max_ms);
    memset(d, 0, sizeof(*d));
    d->prng = prng;
    d->config = *config;
}

static void write_free(struct sim_write *w)
{
    for (uint32_t i = 0; i < w->record_count; i++)
        free(w->records[i].bytes);
    free(w->records);
    sim_snapshot_free(&w->snapshot);
    memset(w, 0, sizeof(*w));
}

static void log_truncate(struct sim_disk *d, uint64_t op_last)
{
    while (d->log_count > 0 && d->log_base + d->log_count > op_last) {
        d->log_count--;
        free(d->log[d->log_count].bytes);
    }
}

void sim_disk_deinit(struct sim_disk *d)
{
    for (size_t i = 0; i < d->pending_count; i++)
        write_free(&d->pending[d->pending_head + i]);
    free(d->pending);
    log_truncate(d, 0);
    free(d->log);
    sim_snapshot_free(&d->snapshot);
    free(d->image_entries);
    memset(d, 0, sizeof(*d));
}

static struct sim_write *pending_push(struct sim_disk *d, uint64_t now,
                                      enum sim_write_kind kind)
{
    if (d->pending_head > 0 && d->pending_head >= d->pending_count) {
        memmove(d->pending, d->pending + d->pending_head,
                d->pending_count * sizeof(*d->pending));
        d->pending_head = 0;
    }
    if (d->pending_head + d->pending_count == d->pending_capacity) {
        size_t capacity = d->pending_capacity ? d->pending_capacity * 2 : 16;
        struct sim_write *p = realloc(d->pending, capacity * sizeof(*p));
        ASSERT(p != NULL);
        d->pending = p;
        d->pending_capacity = capacity;
    }
    struct sim_write *w = &d->pending[d->pending_head + d->pending_count++];
    memset(w, 0, sizeof(*w));
    w->kind = kind;
    uint64_t at = now + prng_range(d->prng, d->config.latency_min_ms,
                                   d->config.latency_max_ms);
    w->at = at > d->last_at ? at : d->last_at; /* in order */
    d->last_at = w->at;
    d->stats.writes++;
    return w;
}

static void record_encode(const struct entry *e, struct sim_record *rec)
{
    rec->op = e->h.op;
    rec->corrupted = false;
    rec->size = ENTRY_HEADER_SIZE + e->h.body_size;
    rec->bytes = xmalloc(rec->size);
    entry_header_encode(&e->h, rec->bytes);
    if (e->h.body_size)
        memcpy(rec->bytes + ENTRY_HEADER_SIZE, e->body, e->h.body_size);
}

void sim_disk_persist(struct sim_disk *d, uint64_t now, uint64_t op_first,
                      uint64_t op_last, uint64_t checksum,
                      const struct entry *entries, uint32_t count)
{
    ASSERT(op_first >= 1);
    ASSERT(op_last + 1 == op_first + count);
    struct sim_write *w = pending_push(d, now, SIM_WRITE_LOG);
    w->op_first = op_first;
    w->op_last = op_last;
    w->checksum = checksum;
    w->record_count = count;
    w->records = xmalloc(count * sizeof(*w->records));
    for (uint32_t i = 0; i < count; i++) {
        ASSERT(entries[i].h.op == op_first + i);
        record_encode(&entries[i], &w->records[i]);
    }
}

void sim_disk_meta(struct sim_disk *d, uint64_t now, uint64_t seq,
                   const struct replica_meta *meta)
{
    struct sim_write *w = pending_push(d, now, SIM_WRITE_META);
    w->seq = seq;
    w->meta = *meta;
}

void sim_disk_snapshot(struct sim_disk *d, uint64_t now, bool install,
                       const struct sim_snapshot *snapshot)
{
    ASSERT(snapshot->op > 0);
    struct sim_write *w = pending_push(
        d, now, install ? SIM_WRITE_SNAPSHOT_INSTALL : SIM_WRITE_SNAPSHOT_TAKE);
    sim_snapshot_copy(&w->snapshot, snapshot);
}

bool sim_disk_next_at(const struct sim_disk *d, uint64_t *at)
{
    if (d->pending_count == 0)
        return false;
    *at = d->pending[d->pending_head].at;
    return true;
}

uint64_t sim_disk_last_op(const struct sim_disk *d)
{
    return d->log_base + d->log_count;
}

static void log_append(struct sim_disk *d, struct sim_record *rec)
{
    ASSERT(rec->op == sim_disk_last_op(d) + 1);
    if (d->log_count == d->log_capacity) {
        uint64_t capacity = d->log_capacity ? d->log_capacity * 2 : 64;
        struct sim_record *log = realloc(d->log, capacity * sizeof(*log));
        ASSERT(log != NULL);
        d->log = log;
        d->log_capacity = capacity;
    }
    d->log[d->log_count++] = *rec;
    rec->bytes = NULL;
}

static bool record_same(const struct sim_record *a, const struct sim_record *b)
{
    return a->size == b->size && !memcmp(a->bytes, b->bytes, a->size);
}

static void log_drop_through(struct sim_disk *d, uint64_t op)
{
    if (op <= d->log_base)
        return;
    uint64_t drop = op - d->log_base;
    if (drop > d->log_count)
        drop = d->log_count;
    for (uint64_t i = 0; i < drop; i++)
        free(d->log[i].bytes);
    if (d->log_count > drop)
        memmove(d->log, d->log + drop, (d->log_count - drop) * sizeof(*d->log));
    d->log_count -= drop;
    d->log_base = op;
}

bool sim_disk_compact(struct sim_disk *d, uint64_t op)
{
    if (op > d->snapshot.op)
        return false;
    log_drop_through(d, op);
    return true;
}

static void record_tear(struct sim_disk *d, struct sim_record *rec)
{
    if (rec->size > 1 && prng_chance(d->prng, 500000)) {
        rec->size = prng_range(d->prng, 1, rec->size - 1); /* cut short */
    } else {
        uint64_t bit = prng_below(d->prng, rec->size * 8);
        rec->bytes[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
}

/* Apply records [0, written) of a log write, then a torn copy of record
 * `written` if torn. Entries that are durable and identical are not
 * rewritten, so they cannot be torn. Returns false if the write leaves a gap
 * after the durable log. */
static bool log_write_apply(struct sim_disk *d, struct sim_write *w,
                            uint32_t written, bool torn)
{
    uint64_t first = w->op_first;
    if (first > sim_disk_last_op(d) + 1 && first <= d->snapshot.op + 1) {
        /* The log is behind the snapshot (ops applied before they were
         * durable here): it restarts after the snapshot. */
        log_drop_through(d, d->snapshot.op);
    }
    bool gap = first > sim_disk_last_op(d) + 1;
    if (gap) {
        /* The log restarts at op_first: what was there cannot chain. */
        log_truncate(d, d->log_base);
        d->log_base = first - 1;
    }
    uint32_t limit = written + (torn && written < w->record_count ? 1 : 0);
    uint32_t i = 0;
    for (; i < limit; i++) {
        uint64_t op = first + i;
        if (op <= d->log_base)
            continue; /* compacted into the snapshot */
        if (op > sim_disk_last_op(d))
            break;
        if (!record_same(&d->log[op - d->log_base - 1], &w->records[i]))
            break;
    }
    if (i == limit) {
        /* Nothing new. A complete write still cuts what follows it. */
        uint64_t keep = first + limit - 1;
        if (!torn)
            log_truncate(d, keep > d->log_base ? keep : d->log_base);
        return !gap;
    }
    uint64_t keep = first + i - 1;
    log_truncate(d, keep > d->log_base ? keep : d->log_base);
    for (; i < limit; i++) {
        struct sim_record *rec = &w->records[i];
        if (i == written)
            record_tear(d, rec);
        log_append(d, rec);
    }
    return !gap;
}

static void snapshot_apply(struct sim_disk *d, struct sim_write *w)
{
    if (w->snapshot.op <= d->snapshot.op)
        return; /* an older one than what is durable: keep the newer */
    sim_snapshot_free(&d->snapshot);
    d->snapshot = w->snapshot;
    memset(&w->snapshot, 0, sizeof(w->snapshot));
    if (w->kind != SIM_WRITE_SNAPSHOT_INSTALL)
        return;
    /* Installed from a peer: the log below is superseded, and a suffix that
     * does not continue the snapshot is a stale branch. */
    log_drop_through(d, d->snapshot.op);
    if (d->log_base < d->snapshot.op) {
        log_truncate(d, d->log_base);
        d->log_base = d->snapshot.op;
    }
    if (d->log_count > 0) {
        struct entry_header h;
        if (!entry_header_decode(d->log[0].bytes, &h) ||
            h.parent != d->snapshot.checksum)
            log_truncate(d, d->log_base);
    }
}

void sim_disk_complete(struct sim_disk *d, struct sim_disk_done *done)
{
    ASSERT(d->pending_count > 0);
    struct sim_write *w = &d->pending[d->pending_head];
    memset(done, 0, sizeof(*done));
    done->kind = w->kind;
    d->ever_written = true;
    switch (w->kind) {
    case SIM_WRITE_LOG: {
        done->op = w->op_last;
        done->checksum = w->checksum;
        done->gap_durable_op = sim_disk_last_op(d);
        done->gap = !log_write_apply(d, w, w->record_count, false);
        break;
    }
    case SIM_WRITE_META:
        d->meta_present = true;
        d->meta_seq = w->seq;
        d->meta = w->meta;
        done->seq = w->seq;
        break;
    case SIM_WRITE_SNAPSHOT_TAKE:
    case SIM_WRITE_SNAPSHOT_INSTALL:
        done->op = w->snapshot.op;
        done->checksum = w->snapshot.checksum;
        snapshot_apply(d, w);
        done->snapshot = &d->snapshot;
        break;
    }
    write_free(w);
    d->pending_head++;
    d->pending_count--;
}

bool sim_disk_crash(struct sim_disk *d)
{
    bool torn = false;
    if (d->pending_count > 0 && prng_chance(d->prng, d->config.torn_ppm)) {
        struct sim_write *w = &d->pending[d->pending_head];
        d->ever_written = true;
        torn = true;
        d->stats.torn++;
        if (w->kind == SIM_WRITE_LOG) {
            uint32_t written =
                (uint32_t)prng_below(d->prng, w->record_count + 1ull);
            log_write_apply(d, w, written, written < w->record_count);
        } else if (w->kind == SIM_WRITE_META) {
            d->meta_present = true; /* crash-atomic: all of it landed */
            d->meta_seq = w->seq;
            d->meta = w->meta;
        } else {
            snapshot_apply(d, w);
        }
    }
    d->stats.writes_lost += d->pending_count - (torn ? 1 : 0);
    for (size_t i = 0; i < d->pending_count; i++)
        write_free(&d->pending[d->pending_head + i]);
    d->pending_head = 0;
    d->pending_count = 0;
    d->last_at = 0;
    return torn;
}

/* The highest op whose durable record verifies, or log_base. */
static uint64_t last_valid_op(const struct sim_disk *d);

uint64_t sim_disk_corrupt(struct sim_disk *d, uint64_t op_max)
{
    uint64_t lo = d->log_base > d->snapshot.op ? d->log_base : d->snapshot.op;
    /* Only below the last valid record: a bad record with nothing valid
     * after it looks like a torn write, which the WAL cuts silently (see
     * sim_disk_load()), so damage there could not be detected. */
    uint64_t hi = last_valid_op(d);
    hi = hi > 0 ? hi - 1 : 0;
    if (op_max && hi > op_max)
        hi = op_max;
    if (hi <= lo)
        return 0;
    uint64_t op = prng_range(d->prng, lo + 1, hi);
    struct sim_record *rec = &d->log[op - d->log_base - 1];
    uint64_t bit = prng_below(d->prng, rec->size * 8);
    rec->bytes[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    rec->corrupted = true;
    d->stats.corruptions++;
    return op;
}

static bool record_decode(const struct sim_record *rec, uint64_t op,
                          struct entry *e)
{
    if (rec->size < ENTRY_HEADER_SIZE)
        return false;
    if (!entry_header_decode(rec->bytes, &e->h))
        return false;
    if (e->h.op != op)
        return false;
    if (rec->size != ENTRY_HEADER_SIZE + (size_t)e->h.body_size)
        return false;
    e->body = rec->bytes + ENTRY_HEADER_SIZE;
    return entry_verify(&e->h, e->body);
}

uint64_t sim_disk_corrupt_op(const struct sim_disk *d)
{
    for (uint64_t i = 0; i < d->log_count; i++)
        if (d->log[i].corrupted)
            return d->log[i].op;
    return 0;
}

bool sim_disk_entry(const struct sim_disk *d, uint64_t op,
                    struct entry_header *h)
{
    if (op <= d->log_base || op > sim_disk_last_op(d))
        return false;
    struct entry e;
    if (!record_decode(&d->log[op - d->log_base - 1], op, &e))
        return false;
    *h = e.h;
    return true;
}

static uint64_t last_valid_op(const struct sim_disk *d)
{
    for (uint64_t i = d->log_count; i > 0; i--) {
        struct entry e;
        if (record_decode(&d->log[i - 1], d->log[i - 1].op, &e))
            return d->log[i - 1].op;
    }
    return d->log_base;
}

static bool valid_after(const struct sim_disk *d, uint64_t index)
{
    for (uint64_t j = index + 1; j < d->log_count; j++) {
        struct entry e;
        if (record_decode(&d->log[j], d->log_base + 1 + j, &e))
            return true;
    }
    return false;
}

void sim_disk_load(struct sim_disk *d, struct sim_disk_image *image)
{
    memset(image, 0, sizeof(*image));
    /* As the WAL's open does: bad records with nothing valid after them
     * are a torn tail, cut from the disk. */
    uint64_t valid = last_valid_op(d);
    if (valid < sim_disk_last_op(d)) {
        uint64_t first_bad = valid + 1;
        if (first_bad > d->snapshot.op)
            image->torn_op = first_bad;
        log_truncate(d, valid);
    }
    struct replica_durable *out = &image->durable;
    out->meta_present = d->ever_written;
    if (d->meta_present) {
        out->view = d->meta.view;
        out->last_normal_view = d->meta.last_normal_view;
        out->meta_flags = d->meta.flags;
        out->epoch = d->meta.epoch;
    }
    image->snapshot = &d->snapshot;
    out->snapshot_op = d->snapshot.op;
    out->snapshot_checksum = d->snapshot.checksum;
    out->snapshot_timestamp_ms = d->snapshot.timestamp_ms;
    out->client_table = d->snapshot.client_table;
    out->client_table_size = d->snapshot.client_table_size;
    if (d->image_capacity < d->log_count) {
        free(d->image_entries);
        d->image_capacity = d->log_count;
        d->image_entries = xmalloc(d->image_capacity * sizeof(struct entry));
    }
    uint64_t parent = d->snapshot.checksum;
    uint64_t expect = d->snapshot.op + 1;
    uint64_t count = 0;
    for (uint64_t i = 0; i < d->log_count; i++) {
        uint64_t op = d->log_base + 1 + i;
        if (op < expect)
            continue;
        struct entry *e = &d->image_entries[count];
        if (!record_decode(&d->log[i], op, e)) {
            /* As the WAL does: a bad record with nothing valid after it
             * is a torn tail (a write that was never reported durable),
             * cut silently; any other bad record is damage. */
            ASSERT(valid_after(d, i)); /* the torn tail is cut above */
            out->damaged_op = op;
            break;
        }
        if (op != expect || e->h.parent != parent) {
            image->unchained_op = op;
            break;
        }
        parent = e->h.checksum;
        expect++;
        count++;
    }
    out->entries = d->image_entries;
    out->entry_count = count;
}
