/* resp_fuzz — feeds arbitrary bytes to the RESP request parser and the reply
 * parser, as one stream and as the same stream cut into pieces, and checks:
 *
 *   - consumed <= size, and > 0 on COMPLETE; size_wanted > size on NEED_MORE,
 *     and no later COMPLETE at that spot ends before size_wanted;
 *   - argv and node strings lie inside the consumed bytes; the tree's `next`
 *     links agree with the child counts; limits hold for what was accepted;
 *   - NEED_SPACE leaves the buffer untouched, and a retry with the asked-for
 *     room gives COMPLETE with that many arguments (nodes);
 *   - a stream fed in two or three pieces gives the same commands, replies
 *     and error (compared as a hash of everything seen) as fed in one;
 *   - what was parsed, written back with the writer, parses to the same thing.
 *
 * Every parse runs on an exact-size heap copy, so ASan catches a read past
 * the end. Each input is parsed with tight limits and with roomy ones.
 *
 * With libFuzzer: make fuzz (tests/fuzz/README.md).
 *
 * Without libFuzzer, any compiler: add -DFUZZ_MAIN (and drop "fuzzer" from
 * -fsanitize): tests/fuzz/fuzz_main.h replays the corpus
 * (tests/fuzz/corpus/resp) and a fixed pseudo-random sequence of mutations
 * of it, as ctest's fuzz/resp does. */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "resp_fuzz: check failed: %s at %s:%d\n", #cond,   \
                    __FILE__, __LINE__);                                       \
            abort();                                                           \
        }                                                                      \
    } while (0)

#define ARGV_START 2
#define NODES_START 8

static const struct resp_limits request_limits[] = {
    {.arg_count_max = 8, .bulk_size_max = 16, .inline_size_max = 32},
    {.arg_count_max = 1024, .bulk_size_max = 1048576, .inline_size_max = 65536},
};

static const struct resp_reply_limits reply_limits[] = {
    {.depth_max = 3, .bulk_size_max = 16, .element_count_max = 8},
    {.depth_max = RESP_DEPTH_LIMIT,
     .bulk_size_max = 1048576,
     .element_count_max = 1000000},
};

/* FNV-1a over everything a stream produced. */
struct trace {
    uint64_t hash;
};

static void trace_bytes(struct trace *t, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        t->hash ^= b[i];
        t->hash *= 0x100000001b3ull;
    }
}

static void trace_u64(struct trace *t, uint64_t v)
{
    trace_bytes(t, &v, sizeof(v));
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    CHECK(p != NULL);
    return p;
}

static char *copy_of(const uint8_t *data, size_t size)
{
    char *p = xmalloc(size);
    if (size)
        memcpy(p, data, size);
    return p;
}

static bool inside(const char *p, size_t n, const char *lo, size_t size)
{
    return p >= lo && p <= lo + size && n <= (size_t)(lo + size - p);
}

static void check_error(const struct cohort_err *err)
{
    CHECK(err->code == -COHORT_EPROTO || err->code == -COHORT_ETOOBIG);
    CHECK(strncmp(err->message, "Protocol error", 14) == 0);
    CHECK(strpbrk(err->message, "\r\n") == NULL);
}

/* ------------------------------------------------------------------------ */
/* Requests.                                                                */

static void check_command(const char *buf, const struct resp_request *req,
                          const struct resp_limits *lim)
{
    CHECK(req->consumed > 0);
    CHECK(req->argc <= lim->arg_count_max);
    for (uint32_t i = 0; i < req->argc; i++) {
        CHECK(inside(req->argv[i].ptr, req->argv[i].size, buf, req->consumed));
        CHECK(req->argv[i].size <= lim->bulk_size_max);
    }
    if (req->argc == 0)
        return;
    /* Written back as a client would send it, it parses to the same. */
    struct resp_buf out;
    resp_buf_init(&out, 2);
    resp_write_command(&out, req->argc, req->argv);
    CHECK(out.ok);
    struct resp_arg *again = xmalloc(req->argc * sizeof(*again));
    struct resp_request req2 = {.argv = again, .arg_capacity = req->argc};
    struct cohort_err err;
    enum resp_result r =
        resp_request_parse(out.data, out.size, lim, &req2, &err);
    CHECK(r == RESP_COMPLETE);
    CHECK(req2.consumed == out.size);
    CHECK(req2.argc == req->argc);
    for (uint32_t i = 0; i < req->argc; i++) {
        CHECK(again[i].size == req->argv[i].size);
        CHECK(memcmp(again[i].ptr, req->argv[i].ptr, again[i].size) == 0);
    }
    free(again);
    resp_buf_deinit(&out);
}

/* Parse one command at buf (an exact-size copy of orig), growing argv on
 * NEED_SPACE. Traces the outcome; returns the result and sets *consumed or
 * *wanted. */
static enum resp_result request_step(char *buf, const uint8_t *orig,
                                     size_t size, const struct resp_limits *lim,
                                     struct trace *t, size_t *consumed,
                                     size_t *wanted)
{
    struct resp_arg small[ARGV_START];
    struct resp_arg *argv = small;
    struct resp_request req = {.argv = argv, .arg_capacity = ARGV_START};
    struct cohort_err err;
    err_clear(&err);
    enum resp_result r = resp_request_parse(buf, size, lim, &req, &err);
    if (r == RESP_NEED_SPACE) {
        CHECK(req.argc > ARGV_START);
        CHECK(req.argc <= lim->arg_count_max);
        CHECK(req.consumed == 0);
        CHECK(size == 0 || memcmp(buf, orig, size) == 0);
        uint32_t argc = req.argc;
        argv = xmalloc(argc * sizeof(*argv));
        req.argv = argv;
        req.arg_capacity = argc;
        r = resp_request_parse(buf, size, lim, &req, &err);
        CHECK(r == RESP_COMPLETE);
        CHECK(req.argc == argc);
    }
    switch (r) {
    case RESP_COMPLETE:
        CHECK(req.consumed <= size);
        if (!req.is_inline)
            CHECK(memcmp(buf, orig, req.consumed) == 0);
        check_command(buf, &req, lim);
        trace_u64(t, 'C');
        trace_u64(t, req.argc);
        trace_u64(t, req.consumed);
        trace_u64(t, req.is_inline);
        for (uint32_t i = 0; i < req.argc; i++) {
            trace_u64(t, req.argv[i].size);
            trace_bytes(t, req.argv[i].ptr, req.argv[i].size);
        }
        *consumed = req.consumed;
        break;
    case RESP_NEED_MORE:
        CHECK(req.consumed == 0);
        CHECK(req.size_wanted > size);
        CHECK(size == 0 || memcmp(buf, orig, size) == 0);
        *wanted = req.size_wanted;
        break;
    case RESP_ERROR:
        check_error(&err);
        /* A refused bulk says where its bytes begin, inside what was read. */
        CHECK(req.bulk_size_refused == 0 ||
              req.bulk_size_refused > lim->bulk_size_max);
        CHECK(req.bulk_size_refused == 0 || err.code == -COHORT_ETOOBIG);
        CHECK(req.bulk_refused_at <= size);
        CHECK(req.bulk_size_refused != 0 ||
              (req.bulk_refused_at == 0 && req.bulk_refused_args_after == 0));
        trace_u64(t, 'E');
        trace_u64(t, (uint64_t)(int64_t)err.code);
        trace_bytes(t, err.message, strlen(err.message));
        break;
    default:
        CHECK(!"unexpected result");
    }
    if (argv != small)
        free(argv);
    return r;
}

/* Feed data[0, size) to a connection in pieces ending at cuts[] (ascending),
 * then the rest; trace every command, the error or the bytes left over. */
static uint64_t request_stream(const uint8_t *data, size_t size,
                               const size_t *cuts, size_t cut_count,
                               const struct resp_limits *lim)
{
    struct trace t = {0xcbf29ce484222325ull};
    size_t start = 0;      /* first byte not consumed */
    size_t wanted_end = 0; /* a command at start ends at or after this */
    for (size_t piece = 0; piece <= cut_count; piece++) {
        size_t end = piece < cut_count ? cuts[piece] : size;
        CHECK(end >= start);
        char *buf = copy_of(data + start, end - start);
        size_t off = 0;
        for (;;) { /* each COMPLETE consumes at least one byte */
            size_t avail = end - start;
            size_t consumed = 0;
            size_t wanted = 0;
            enum resp_result r = request_step(buf + off, data + start, avail,
                                              lim, &t, &consumed, &wanted);
            if (r == RESP_ERROR) {
                free(buf);
                return t.hash;
            }
            if (r == RESP_NEED_MORE) {
                wanted_end = start + wanted;
                break;
            }
            CHECK(start + consumed >= wanted_end);
            wanted_end = 0;
            start += consumed;
            off += consumed;
        }
        free(buf);
    }
    trace_u64(&t, 'L');
    trace_u64(&t, size - start);
    return t.hash;
}

/* ------------------------------------------------------------------------ */
/* Replies.                                                                 */

static bool is_scalar_string(enum resp_type type)
{
    return type == RESP_TYPE_SIMPLE || type == RESP_TYPE_ERROR ||
           type == RESP_TYPE_BULK || type == RESP_TYPE_BLOB_ERROR ||
           type == RESP_TYPE_VERBATIM || type == RESP_TYPE_BIG_NUMBER ||
           type == RESP_TYPE_DOUBLE;
}

/* The preorder links: nodes[i].next is past its subtree, and walking the
 * children by their links lands exactly there. Depth limited by limits. */
static void check_tree(const struct resp_node *nodes, uint32_t count,
                       const char *buf, size_t consumed)
{
    CHECK(count > 0);
    CHECK(nodes[0].next == count);
    for (uint32_t i = 0; i < count; i++) {
        const struct resp_node *n = &nodes[i];
        CHECK(n->next > i);
        CHECK(n->next <= count);
        size_t children = resp_node_children(n);
        uint32_t child = i + 1;
        for (size_t c = 0; c < children; c++) {
            CHECK(child < n->next);
            child = nodes[child].next;
        }
        CHECK(child == n->next);
        if (is_scalar_string(n->type))
            CHECK(inside(n->str, n->len, buf, consumed));
    }
}

static void trace_tree(struct trace *t, const struct resp_node *nodes,
                       uint32_t count)
{
    trace_u64(t, 'R');
    trace_u64(t, count);
    for (uint32_t i = 0; i < count; i++) {
        const struct resp_node *n = &nodes[i];
        trace_u64(t, (uint64_t)n->type);
        trace_u64(t, n->next);
        trace_u64(t, n->len);
        trace_u64(t, (uint64_t)n->integer);
        trace_bytes(t, n->format, sizeof(n->format));
        if (is_scalar_string(n->type))
            trace_bytes(t, n->str, n->len);
        if (n->type == RESP_TYPE_DOUBLE && !isnan(n->dbl))
            trace_bytes(t, &n->dbl, sizeof(n->dbl));
    }
}

/* Write one node (not its children) back with the RESP3 writer. */
static void write_node(struct resp_buf *out, const struct resp_node *n)
{
    switch (n->type) {
    case RESP_TYPE_SIMPLE:
    case RESP_TYPE_ERROR:
    case RESP_TYPE_BIG_NUMBER:
    case RESP_TYPE_BLOB_ERROR:
        /* No writer call for these: raw, as a relay would. */
        if (n->type == RESP_TYPE_BLOB_ERROR) {
            char head[32];
            int len = snprintf(head, sizeof(head), "!%zu\r\n", n->len);
            resp_write_raw(out, head, (size_t)len);
        } else {
            resp_write_raw(out, (const char[]){(char)n->type}, 1);
        }
        resp_write_raw(out, n->str, n->len);
        resp_write_raw(out, "\r\n", 2);
        break;
    case RESP_TYPE_INTEGER:
        resp_write_integer(out, n->integer);
        break;
    case RESP_TYPE_BULK:
        resp_write_bulk(out, n->str, n->len);
        break;
    case RESP_TYPE_NULL:
        resp_write_null(out);
        break;
    case RESP_TYPE_DOUBLE:
        resp_write_double(out, n->dbl);
        break;
    case RESP_TYPE_BOOLEAN:
        resp_write_boolean(out, n->integer != 0);
        break;
    case RESP_TYPE_VERBATIM:
        if (strlen(n->format) == 3) {
            resp_write_verbatim(out, n->format, n->str, n->len);
        } else {
            char head[32];
            int len = snprintf(head, sizeof(head), "=%zu\r\n", n->len + 4);
            resp_write_raw(out, head, (size_t)len);
            resp_write_raw(out, n->str - 4, n->len + 4);
            resp_write_raw(out, "\r\n", 2);
        }
        break;
    case RESP_TYPE_ARRAY:
        resp_write_array(out, n->len);
        break;
    case RESP_TYPE_MAP:
        resp_write_map(out, n->len);
        break;
    case RESP_TYPE_SET:
        resp_write_set(out, n->len);
        break;
    case RESP_TYPE_PUSH:
        resp_write_push(out, n->len);
        break;
    default:
        CHECK(!"unknown node type");
    }
}

static bool same_node(const struct resp_node *a, const struct resp_node *b)
{
    if (a->type != b->type || a->next != b->next || a->len != b->len ||
        a->integer != b->integer)
        return false;
    if (memcmp(a->format, b->format, sizeof(a->format)) != 0)
        return false;
    if (a->type == RESP_TYPE_DOUBLE)
        return isnan(a->dbl) ? isnan(b->dbl)
                             : memcmp(&a->dbl, &b->dbl, sizeof(a->dbl)) == 0;
    if (is_scalar_string(a->type))
        return memcmp(a->str, b->str, a->len) == 0;
    return true;
}

/* Written back with the writer (attributes dropped), the tree parses to the
 * same tree. */
static void check_rewrite(const struct resp_node *nodes, uint32_t count,
                          const struct resp_reply_limits *lim)
{
    struct resp_buf out;
    resp_buf_init(&out, 3);
    for (uint32_t i = 0; i < count; i++)
        write_node(&out, &nodes[i]);
    CHECK(out.ok);
    struct resp_node *again = xmalloc(count * sizeof(*again));
    struct resp_reply reply = {.nodes = again, .node_capacity = count};
    struct cohort_err err;
    enum resp_result r =
        resp_reply_parse(out.data, out.size, lim, &reply, &err);
    CHECK(r == RESP_COMPLETE);
    CHECK(reply.consumed == out.size);
    CHECK(reply.node_count == count);
    for (uint32_t i = 0; i < count; i++) {
        if (nodes[i].type == RESP_TYPE_DOUBLE)
            continue; /* text may differ; the value is compared below */
        CHECK(same_node(&nodes[i], &again[i]));
    }
    for (uint32_t i = 0; i < count; i++) {
        if (nodes[i].type == RESP_TYPE_DOUBLE) {
            CHECK(again[i].type == RESP_TYPE_DOUBLE);
            CHECK(isnan(nodes[i].dbl) ? isnan(again[i].dbl)
                                      : memcmp(&nodes[i].dbl, &again[i].dbl,
                                               sizeof(double)) == 0);
        }
    }
    free(again);
    resp_buf_deinit(&out);
}

static enum resp_result reply_step(const char *buf, size_t size,
                                   const struct resp_reply_limits *lim,
                                   struct trace *t, size_t *consumed,
                                   size_t *wanted)
{
    struct resp_node small[NODES_START];
    struct resp_node *nodes = small;
    struct resp_reply reply = {.nodes = nodes, .node_capacity = NODES_START};
    struct cohort_err err;
    err_clear(&err);
    enum resp_result r = resp_reply_parse(buf, size, lim, &reply, &err);
    if (r == RESP_NEED_SPACE) {
        CHECK(reply.node_count > NODES_START);
        CHECK(reply.consumed == 0);
        uint32_t count = reply.node_count;
        nodes = xmalloc(count * sizeof(*nodes));
        reply.nodes = nodes;
        reply.node_capacity = count;
        r = resp_reply_parse(buf, size, lim, &reply, &err);
        CHECK(r == RESP_COMPLETE);
        CHECK(reply.node_count == count);
    }
    switch (r) {
    case RESP_COMPLETE:
        CHECK(reply.consumed > 0);
        CHECK(reply.consumed <= size);
        check_tree(nodes, reply.node_count, buf, reply.consumed);
        check_rewrite(nodes, reply.node_count, lim);
        trace_tree(t, nodes, reply.node_count);
        trace_u64(t, reply.consumed);
        *consumed = reply.consumed;
        break;
    case RESP_NEED_MORE:
        CHECK(reply.consumed == 0);
        CHECK(reply.size_wanted > size);
        *wanted = reply.size_wanted;
        break;
    case RESP_ERROR:
        check_error(&err);
        trace_u64(t, 'E');
        trace_u64(t, (uint64_t)(int64_t)err.code);
        trace_bytes(t, err.message, strlen(err.message));
        break;
    default:
        CHECK(!"unexpected result");
    }
    if (nodes != small)
        free(nodes);
    return r;
}

static uint64_t reply_stream(const uint8_t *data, size_t size,
                             const size_t *cuts, size_t cut_count,
                             const struct resp_reply_limits *lim)
{
    struct trace t = {0xcbf29ce484222325ull};
    size_t start = 0;
    size_t wanted_end = 0;
    for (size_t piece = 0; piece <= cut_count; piece++) {
        size_t end = piece < cut_count ? cuts[piece] : size;
        CHECK(end >= start);
        char *buf = copy_of(data + start, end - start);
        size_t off = 0;
        for (;;) { /* each COMPLETE consumes at least three bytes */
            size_t consumed = 0;
            size_t wanted = 0;
            enum resp_result r =
                reply_step(buf + off, end - start, lim, &t, &consumed, &wanted);
            if (r == RESP_ERROR) {
                free(buf);
                return t.hash;
            }
            if (r == RESP_NEED_MORE) {
                wanted_end = start + wanted;
                break;
            }
            CHECK(start + consumed >= wanted_end);
            wanted_end = 0;
            start += consumed;
            off += consumed;
        }
        free(buf);
    }
    trace_u64(&t, 'L');
    trace_u64(&t, size - start);
    return t.hash;
}

/* ------------------------------------------------------------------------ */
/* Entry point.                                                             */

/* Split points: a few fixed ones and one that depends on the input. */
static size_t pick_cuts(const uint8_t *data, size_t size, size_t cuts[][2],
                        size_t counts[])
{
    size_t n = 0;
    uint64_t h = 0;
    for (size_t i = 0; i < size; i++)
        h = h * 31 + data[i];
    size_t candidates[] = {1, size / 2, size ? size - 1 : 0,
                           size ? (size_t)(h % size) : 0};
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
        cuts[n][0] = candidates[i] < size ? candidates[i] : size;
        counts[n++] = 1;
    }
    /* Three pieces. */
    cuts[n][0] = size / 3;
    cuts[n][1] = 2 * size / 3;
    counts[n++] = 2;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cuts[5][2];
    size_t counts[5];
    size_t n = pick_cuts(data, size, cuts, counts);
    for (size_t l = 0; l < 2; l++) {
        uint64_t whole =
            request_stream(data, size, NULL, 0, &request_limits[l]);
        for (size_t i = 0; i < n; i++)
            CHECK(request_stream(data, size, cuts[i], counts[i],
                                 &request_limits[l]) == whole);
        whole = reply_stream(data, size, NULL, 0, &reply_limits[l]);
        for (size_t i = 0; i < n; i++)
            CHECK(reply_stream(data, size, cuts[i], counts[i],
                               &reply_limits[l]) == whole);
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* A plain program, for machines without libFuzzer.                          */

#ifdef FUZZ_MAIN
/* Pieces of RESP the mutator splices in (the same list is resp.dict for
 * libFuzzer). */
static const char *const resp_tokens[] = {
    "\r\n",
    "\r",
    "\n",
    "*",
    "$",
    "-1",
    "0",
    "-",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551616",
    "-9223372036854775808",
    "17",
    "33",
    "65",
    "1048577",
    "\"",
    "'",
    "\\",
    "\\x4",
    " ",
    "%",
    "|",
    ">",
    "~",
    "=",
    ",",
    "#",
    "_",
    "!",
    "(",
    ":",
    "+",
};

#define FUZZ_NAME "resp_fuzz"
#define FUZZ_TOKENS resp_tokens
#include "fuzz_main.h"
#endif
