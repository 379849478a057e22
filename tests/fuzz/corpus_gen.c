/* corpus_gen — writes the seed corpus of every fuzz target from valid
 * encodings made by the real encoders (messages, WAL segments written by
 * the wal, snapshots by the snapshot writer, metadata by meta_write, the
 * transport's handshake and frames), in each target's input format:
 *
 *     build/fuzz_corpus_gen tests/fuzz/corpus
 *
 * writes tests/fuzz/corpus/<target>/seed-NN files (replacing those of the
 * same name; a few KB per target). Run it after a format change and commit
 * the result; files found by fuzzing (crash-*, regression-*) stay. */
#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "core/message.h"
#include "fuzz_vfs.h"
#include "kv/address.h"
#include "kv/command.h"
#include "kv/incarnation.h"
#include "kv/kv.h"
#include "kv/snapshot.h"
#include "runtime/peer_link.h"
#include "storage/meta.h"
#include "storage/snapshot.h"
#include "storage/wal.h"

static const char *root;

static void emit(const char *target, int n, const void *data, size_t size)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", root, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof(path), "%s/%s/seed-%02d", root, target, n);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* A growing byte buffer. */
struct buf {
    uint8_t data[1 << 16];
    size_t size;
};

static void add(struct buf *b, const void *p, size_t n)
{
    ASSERT(b->size + n <= sizeof(b->data));
    memcpy(b->data + b->size, p, n);
    b->size += n;
}

static void add_u8(struct buf *b, uint8_t v)
{
    add(b, &v, 1);
}

static void add_u16(struct buf *b, uint16_t v)
{
    uint8_t p[2];
    put_u16(p, v);
    add(b, p, 2);
}

static void add_u64(struct buf *b, uint64_t v)
{
    uint8_t p[8];
    put_u64(p, v);
    add(b, p, 8);
}

/* Entries first_op.. chained from parent, small bodies. */
static uint8_t bodies[64][32];
static void make_entries(struct entry *e, uint32_t count, uint64_t first_op,
                         uint64_t parent)
{
    for (uint32_t i = 0; i < count; i++) {
        uint32_t size = (i * 7) % 24;
        memset(bodies[i], 'a' + (int)(i % 26), sizeof(bodies[i]));
        e[i].h = (struct entry_header){
            .parent = parent,
            .op = first_op + i,
            .client_id = 5,
            .request_no = i + 1,
            .timestamp_ms = 1000 + i,
            .view = 2,
            .body_size = size,
            .kind = ENTRY_CLIENT,
        };
        e[i].body = bodies[i];
        entry_seal(&e[i].h, e[i].body);
        parent = e[i].h.checksum;
    }
}

/* ---- resp */

static void gen_resp(void)
{
    static const char *const seeds[] = {
        "*1\r\n$4\r\nPING\r\n",
        "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n",
        "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n*0\r\n*-1\r\n",
        "PING\r\nSET k v\nECHO \"a\\x41\\n b\" 'it\\'s'\r\n\r\n",
        "*2\r\n$4\r\nECHO\r\n$0\r\n\r\nGET x\r\n",
        "*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$0\r\n\r\n",
        "MSET a 1 b 2 c 3\r\n",
        "+OK\r\n-ERR no such key\r\n:42\r\n$5\r\nhello\r\n$-1\r\n*-1\r\n",
        "*3\r\n:1\r\n*2\r\n+a\r\n+b\r\n$3\r\nxyz\r\n",
        "%2\r\n+k\r\n:1\r\n+m\r\n~2\r\n_\r\n#t\r\n",
        ",3.25\r\n,-inf\r\n,nan\r\n(12345678901234567890\r\n",
        "!9\r\nSYNTAX no\r\n=8\r\ntxt:abcd\r\n>2\r\n+message\r\n$1\r\nx\r\n",
        "|1\r\n+ttl\r\n:3600\r\n*1\r\n|0\r\n#f\r\n",
        "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:0\r\n",
    };
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
        emit("resp", (int)i, seeds[i], strlen(seeds[i]));
}

/* ---- message */

static size_t encode_message(uint8_t type, uint32_t entry_count, uint8_t *out,
                             size_t cap)
{
    struct entry e[8];
    make_entries(e, entry_count, 11, 77);
    struct message m = {.type = type,
                        .from = 1,
                        .view = 2,
                        .epoch = 1,
                        .op = 10 + entry_count,
                        .commit = 10,
                        .view_op = 10,
                        .checksum = 77,
                        .base_op = 10,
                        .entry_count = entry_count};
    /* Only the fields each type uses (message.h): the others are zero. */
    switch (type) {
    case MSG_PREPARE_OK:
        m.op = 10, m.commit = m.view_op = m.base_op = 0;
        break;
    case MSG_COMMIT:
        m.op = 10, m.base_op = 0;
        break;
    case MSG_DO_VIEW_CHANGE:
        m.last_normal_view = 1, m.view_op = 0;
        break;
    case MSG_NEW_STATE:
        m.status = 1, m.nonce = 99;
        break;
    case MSG_PING:
        m = (struct message){.type = type, .from = 1, .view = 2, .epoch = 1};
        m.nonce = 99;
        break;
    default:
        break;
    }
    size_t n = message_encode(&m, e, out, cap);
    ASSERT(n > 0);
    struct message back;
    ASSERT(message_decode(out, n, 5, &back));
    return n;
}

static void gen_message(void)
{
    static uint8_t out[4096];
    int k = 0;
    emit("message", k++, out, encode_message(MSG_PREPARE, 3, out, sizeof(out)));
    emit("message", k++, out, encode_message(MSG_PREPARE_OK, 0, out, 4096));
    emit("message", k++, out, encode_message(MSG_COMMIT, 0, out, 4096));
    emit("message", k++, out,
         encode_message(MSG_DO_VIEW_CHANGE, 2, out, sizeof(out)));
    emit("message", k++, out,
         encode_message(MSG_START_VIEW, 1, out, sizeof(out)));
    emit("message", k++, out,
         encode_message(MSG_NEW_STATE, 4, out, sizeof(out)));
    emit("message", k++, out, encode_message(MSG_PING, 0, out, 4096));
    struct entry e[3];
    make_entries(e, 3, 11, 77);
    uint64_t n = wal_record_size(e[2].h.body_size);
    wal_record_encode(&e[2], 0, out);
    emit("message", k++, out, (size_t)n);
}

/* ---- replica: scripts for fuzz_group.h, one per starting state (the
 * first byte), the rest pseudo-random (fixed: the same corpus every run). */

static void gen_replica(void)
{
    uint64_t x = 0x2545f4914f6cdd1dull;
    for (int k = 0; k < 4; k++) {
        uint8_t script[768];
        for (size_t i = 0; i < sizeof(script); i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            script[i] = (uint8_t)x;
        }
        script[0] = (uint8_t)k;
        emit("replica", k, script, sizeof(script));
    }
}

/* ---- transport */

static struct peer_auth *gen_auth(uint32_t self)
{
    struct peer_auth_config c = {
        .cluster_id = 0xc0ffee0011223344ull, .self = self, .replica_count = 3};
    char warn[400];
    struct cohort_err err;
    struct peer_auth *a = peer_auth_open(&c, warn, sizeof(warn), &err);
    ASSERT(a != NULL);
    return a;
}

/* What replica 1 sends replica 0 on a link without authentication: its
 * HELLO and AUTH (made by a real link that completed the handshake with
 * replica 0's), then three frames sealed by that link. */
static void gen_transport_stream(struct buf *b)
{
    struct peer_auth *a1 = gen_auth(1), *a0 = gen_auth(0);
    struct peer_link *dialer = peer_link_new(a1, 0, "replica 0", 0);
    struct peer_link *acceptor = peer_link_new(a0, PEER_LINK_NOBODY, "r1", 0);
    ASSERT(dialer && acceptor);
    uint8_t out[256];
    struct peer_buf plain = {0};
    for (int round = 0; round < 2; round++) {
        size_t n = peer_link_output_take(dialer, out, sizeof(out));
        add(b, out, n);
        ASSERT(peer_link_input(acceptor, out, n, &plain) == (long)n);
        n = peer_link_output_take(acceptor, out, sizeof(out));
        ASSERT(peer_link_input(dialer, out, n, &plain) == (long)n);
    }
    ASSERT(peer_link_state(dialer) == PEER_LINK_READY);
    add(b, out, peer_link_output_take(dialer, out, sizeof(out)));
    for (int f = 0; f < 3; f++) {
        uint8_t payload[2048];
        payload[0] = 1; /* a protocol message */
        size_t n = 1 + encode_message(f == 1 ? MSG_COMMIT : MSG_PREPARE,
                                      f == 1 ? 0 : (uint32_t)(1 + f),
                                      payload + 1, sizeof(payload) - 1);
        uint8_t header[PEER_LINK_HEADER_MAX];
        ASSERT(peer_link_seal(dialer, payload, (uint32_t)n, header));
        add(b, header, peer_link_header_size(dialer));
        add(b, payload, n);
    }
    free(plain.data);
    peer_link_free(dialer);
    peer_link_free(acceptor);
    peer_auth_free(a1);
    peer_auth_free(a0);
}

static void gen_transport(void)
{
    int k = 0;
    for (int variant = 0; variant < 5; variant++) {
        struct buf b = {.size = 0};
        /* Our side: self 0; variant 1 dialed replica 1; variant 2 a small
         * frame limit; 3 and 4 cut the stream in 1- and 7-byte pieces. */
        uint8_t flags = variant == 1 ? 4 : variant == 2 ? 8 : 0;
        add_u8(&b, flags);
        add_u8(&b, variant == 3 ? 1 : variant == 4 ? 7 : 0);
        gen_transport_stream(&b);
        emit("transport", k++, b.data, b.size);
    }
}

/* ---- wal */

/* The size of p without its trailing zeros (kept 8-aligned). */
static size_t trimmed(const uint8_t *p, size_t size)
{
    while (size > 0 && p[size - 1] == 0)
        size--;
    return (size + 7) & ~(size_t)7;
}

/* Write ops 1..count with the real wal (4 KiB segments), then pack its
 * segment files in wal_fuzz's input format. */
static void gen_wal_one(int k, uint32_t count, bool temp_file, uint8_t flags)
{
    struct fuzz_vfs fv;
    fuzz_vfs_init(&fv);
    fuzz_vfs_mkdir(&fv, "w");
    struct wal_config config;
    wal_config_defaults(&config);
    config.segment_size = 4096;
    struct wal w;
    struct wal_recovery rec;
    struct cohort_err err;
    struct wal_expect expect = {.log_exists = false};
    ASSERT(wal_open(&w, &fv.vfs, "w/wal", &config, &expect, &rec, &err) == 0);
    static struct entry e[64];
    make_entries(e, count, 1, 0);
    for (uint32_t i = 0; i < count; i++) {
        ASSERT(wal_append(&w, &e[i], 0, &err) == 0);
        if (i % 5 == 4)
            ASSERT(wal_sync(&w, NULL, &err) == 0);
    }
    ASSERT(wal_sync(&w, NULL, &err) == 0);
    struct buf b = {.size = 0};
    add_u8(&b, flags);
    for (uint64_t first = 1; first <= count; first++) {
        char path[VFS_PATH_MAX];
        snprintf(path, sizeof(path), "w/wal/%020" PRIu64 ".log", first);
        size_t size;
        const uint8_t *p = fuzz_vfs_get(&fv, path, &size);
        if (!p)
            continue;
        size_t n = trimmed(p, size);
        add_u64(&b, first);
        add_u8(&b, 2); /* zero-pad to the segment size */
        add_u16(&b, (uint16_t)n);
        add(&b, p, n);
    }
    if (temp_file) {
        add_u64(&b, count + 1);
        add_u8(&b, 1 | 2);
        add_u16(&b, 64);
        uint8_t header[64] = {0};
        add(&b, header, sizeof(header));
    }
    wal_close(&w);
    fuzz_vfs_deinit(&fv);
    emit("wal", k, b.data, b.size);
}

static void gen_wal(void)
{
    gen_wal_one(0, 4, false, 1);
    gen_wal_one(1, 40, false, 1); /* three segments */
    gen_wal_one(2, 40, true, 0);  /* a leftover temp file; no torn writes */
}

/* ---- snapshot */

static size_t write_snapshot(uint64_t op, uint8_t *out, size_t cap)
{
    struct fuzz_vfs fv;
    fuzz_vfs_init(&fv);
    struct snapshot_info info = {.op = op,
                                 .checksum = 0x1234 + op,
                                 .timestamp_ms = 5000,
                                 .view = 3,
                                 .epoch = 1,
                                 .client_table_size = 24};
    uint8_t table[24];
    memset(table, 't', sizeof(table));
    struct snapshot_writer w;
    struct cohort_err err;
    ASSERT(snapshot_write_begin(&w, &fv.vfs, "s", &info, table, &err) == 0);
    ASSERT(snapshot_write(&w, "state bytes of the store", 24, &err) == 0);
    ASSERT(snapshot_write(&w, "and some more", 13, &err) == 0);
    ASSERT(snapshot_write_end(&w, &info, &err) == 0);
    char path[VFS_PATH_MAX];
    snprintf(path, sizeof(path), "s/snapshot-%020" PRIu64 ".snap", op);
    size_t size;
    const uint8_t *p = fuzz_vfs_get(&fv, path, &size);
    ASSERT(p && size <= cap);
    memcpy(out, p, size);
    fuzz_vfs_deinit(&fv);
    return size;
}

static void gen_snapshot(void)
{
    uint8_t a[1024], b2[1024];
    size_t na = write_snapshot(7, a, sizeof(a));
    size_t nb = write_snapshot(9, b2, sizeof(b2));
    struct buf b = {.size = 0};
    add_u8(&b, 0);
    add(&b, a, na);
    emit("snapshot", 0, b.data, b.size);
    b.size = 0;
    add_u8(&b, 1);
    add_u16(&b, (uint16_t)na);
    add(&b, a, na);
    add(&b, b2, nb);
    emit("snapshot", 1, b.data, b.size);
    b.size = 0;
    add_u8(&b, 2);
    add_u64(&b, 9);
    add_u8(&b, 50); /* chunks of 50 bytes */
    add(&b, b2, nb);
    emit("snapshot", 2, b.data, b.size);
}

/* ---- meta */

static void gen_meta(void)
{
    for (int writes = 1; writes <= 3; writes++) {
        struct fuzz_vfs fv;
        fuzz_vfs_init(&fv);
        fuzz_vfs_mkdir(&fv, "m");
        struct meta m;
        struct meta_record rec;
        bool present;
        struct cohort_err err;
        ASSERT(meta_open(&m, &fv.vfs, "m/meta", &rec, &present, &err) == 0);
        for (int i = 0; i < writes; i++) {
            struct meta_record r = {.cluster_id = 0xabcdef,
                                    .meta = {.view = 4u + (uint32_t)i,
                                             .last_normal_view = 4,
                                             .epoch = 1,
                                             .replica_count = 3}};
            ASSERT(meta_write(&m, &r, &err) == 0);
        }
        meta_close(&m);
        size_t size;
        const uint8_t *p = fuzz_vfs_get(&fv, "m/meta", &size);
        ASSERT(p && size == META_FILE_SIZE);
        uint8_t slots[2 * META_RECORD_SIZE];
        memcpy(slots, p, META_RECORD_SIZE);
        memcpy(slots + META_RECORD_SIZE, p + META_SLOT_SIZE, META_RECORD_SIZE);
        emit("meta", writes - 1, slots, sizeof(slots));
        fuzz_vfs_deinit(&fv);
    }
}

/* ---- kv: log entry bodies of store commands and transactions */

static void gen_kv(void)
{
    static const char *const lines[] = {
        "SET a 2 NX GET",
        "MSET a 1 c 3",
        "INCRBY a 5",
        "CAS b text new",
        "DEL a b",
        "COHORT.EXEC 0 3 3 SET a 1 2 INCR a 2 GET a",
        "COHORT.EXEC 1 a MODOP = 1 2 3 SET c 1 5 MSET d 1 e 2",
        "COHORT.TXN 2 a VALUE = 1 b VERSION > 0 1 2 INCR b 2 3 SET a x "
        "2 KVINFO a",
        "COHORT.TXN 2 z MISSING a EXISTS 1 4 SET z v XX 1 2 COHORT.REVS a",
        /* kv/strings.h */
        "GETDEL a",
        "MSETNX a 1 b 2",
        "APPEND a tail",
        "SETRANGE a 3 xyz",
        "INCRBYFLOAT a 1.5e2",
        "COPY a b REPLACE",
        "RENAMENX a b",
        "FLUSHALL",
        "COHORT.EXEC 0 3 3 RENAME a b 4 GETRANGE b 0 -1 3 APPEND b x",
    };
    struct kv_config config = kv_config_default();
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        char copy[256];
        struct resp_arg argv[64];
        uint32_t argc = 0;
        snprintf(copy, sizeof(copy), "%s", lines[i]);
        for (char *w = strtok(copy, " "); w; w = strtok(NULL, " ")) {
            argv[argc].ptr = w;
            argv[argc++].size = strlen(w);
        }
        struct kv_write w;
        struct resp_buf out;
        resp_buf_init(&out, 2);
        ASSERT(kv_command_parse(&config, argc, argv, &w, &out) == 0);
        resp_buf_deinit(&out);
        uint8_t body[1024];
        size_t n = kv_command_encode(&w, body, sizeof(body));
        emit("kv", (int)i, body, n);
    }
    /* The address table's op, which no client command parses to. */
    uint8_t body[KV_ADDRESS_BODY_MAX];
    size_t n = kv_address_encode(2, "10.0.0.2:7000", "10.0.0.2:6379", body,
                                 sizeof(body));
    ASSERT(n > 0);
    emit("kv", (int)(sizeof(lines) / sizeof(lines[0])), body, n);
}

/* ---- kvsnap: the store's snapshot streams (kv/snapshot.h) */

struct kvsnap_store {
    struct kv kv;
    uint64_t op;
    uint8_t *reply;
    size_t reply_max;
};

/* Apply one op's body at log time now_ms; the reply must not be an error. */
static void kvsnap_body(struct kvsnap_store *s, uint64_t now_ms,
                        const uint8_t *body, size_t size)
{
    size_t n =
        kv_apply(&s->kv, ++s->op, now_ms, body, size, s->reply, s->reply_max);
    ASSERT(n >= 1 && s->reply[0] != '-');
}

/* A client's write command, parsed and encoded as the primary would. */
static void kvsnap_line(struct kvsnap_store *s, uint64_t now_ms,
                        const char *line)
{
    char copy[256];
    struct resp_arg argv[32];
    uint32_t argc = 0;
    snprintf(copy, sizeof(copy), "%s", line);
    for (char *w = strtok(copy, " "); w; w = strtok(NULL, " ")) {
        ASSERT(argc < 32);
        argv[argc].ptr = w;
        argv[argc++].size = strlen(w);
    }
    struct kv_write w;
    struct resp_buf out;
    resp_buf_init(&out, 2);
    ASSERT(kv_command_parse(&s->kv.config, argc, argv, &w, &out) == 0);
    resp_buf_deinit(&out);
    uint8_t body[1024];
    size_t n = kv_command_encode(&w, body, sizeof(body));
    kvsnap_body(s, now_ms, body, n);
}

static int kvsnap_write(void *ctx, const void *data, size_t size)
{
    add(ctx, data, size);
    return 0;
}

/* The store's stream after a flags byte and a piece size
 * (tests/fuzz/kvsnap_fuzz.c). */
static void kvsnap_emit(struct kvsnap_store *s, int n, uint8_t flags,
                        uint8_t piece)
{
    static struct buf b;
    b.size = 0;
    add_u8(&b, flags);
    add_u8(&b, piece);
    struct cohort_err err;
    ASSERT(kv_snapshot_write(&s->kv, kvsnap_write, &b, &err) == 0);
    emit("kvsnap", n, b.data, b.size);
}

static void gen_kvsnap(void)
{
    struct kvsnap_store s = {0};
    struct kv_config config = kv_config_default();
    ASSERT(kv_init(&s.kv, &config) == 0);
    s.reply_max = kv_reply_size_max(&config);
    s.reply = malloc(s.reply_max);
    ASSERT(s.reply != NULL);
    kvsnap_emit(&s, 0, 0, 0); /* empty */
    kvsnap_line(&s, 1000, "SET a 1");
    kvsnap_line(&s, 1000, "SET b text");
    kvsnap_emit(&s, 1, 0, 0);
    /* Every optional part: an expiry, users, sessions holding a lock and a
     * group membership, the address table, the incarnation. */
    kvsnap_line(&s, 1000, "SET c v PX 60000");
    kvsnap_line(&s, 1000, "ACL SETUSER carol on >pw ~k* +get");
    kvsnap_line(&s, 1000, "COHORT.SESSION OPEN 30000");
    char line[128];
    uint64_t session = s.op;
    snprintf(line, sizeof(line), "COHORT.LOCK L %" PRIu64, session);
    kvsnap_line(&s, 1100, line);
    snprintf(line, sizeof(line), "COHORT.GROUP JOIN g a %" PRIu64 " h1",
             session);
    kvsnap_line(&s, 1100, line);
    uint8_t body[KV_ADDRESS_BODY_MAX];
    size_t n = kv_address_encode(2, "10.0.0.2:7000", "10.0.0.2:6379", body,
                                 sizeof(body));
    ASSERT(n > 0);
    kvsnap_body(&s, 1200, body, n);
    n = kv_incarnation_encode(0x1234567890abcdefull, body, sizeof(body));
    ASSERT(n > 0);
    kvsnap_body(&s, 1200, body, n);
    kvsnap_emit(&s, 2, 0, 0);
    kvsnap_emit(&s, 3, 3, 6); /* checksums fixed, read 7 bytes at a time */
    kv_deinit(&s.kv);
    free(s.reply);
}

/* ---- http: requests to the metrics port (runtime/http.h) */

static void gen_http(void)
{
    static const char *const requests[] = {
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9121\r\n"
        "User-Agent: Prometheus/2.45.0\r\nAccept: text/plain;version=0.0.4\r\n"
        "X-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n",
        "GET /status.json?pretty=1#top HTTP/1.0\n\n",
        "HEAD / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        "GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "POST /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET / HTTP/2.0\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++)
        emit("http", (int)i, requests[i], strlen(requests[i]));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS-DIR (tests/fuzz/corpus)\n", argv[0]);
        return 2;
    }
    root = argv[1];
    if (mkdir(root, 0755) != 0 && errno != EEXIST) {
        perror(root);
        return 1;
    }
    gen_resp();
    gen_message();
    gen_transport();
    gen_wal();
    gen_snapshot();
    gen_meta();
    gen_replica();
    gen_kv();
    gen_kvsnap();
    gen_http();
    printf("corpus_gen: wrote the seed corpus under %s\n", root);
    return 0;
}
