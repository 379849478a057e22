/* http_fuzz — http_request_parse() (runtime/http.h), the metrics port's
 * request head parser, on whatever a stranger sends to that port. Checks:
 *
 *   - the answer is one of enum http_parse; MORE only for a head shorter
 *     than HTTP_HEAD_MAX;
 *   - DONE: the head (its empty line included) lies inside the input and
 *     HTTP_HEAD_MAX, ends in '\n', has at most HTTP_HEADERS_MAX headers;
 *     the method is GET or HEAD; the path is a NUL-terminated string of
 *     visible ASCII from '/', without a query or fragment, shorter than
 *     HTTP_PATH_MAX;
 *   - the answer depends only on the bytes it needed: the server parses
 *     what has arrived so far, so once a prefix of the input gets an
 *     answer other than MORE, the whole input gets the same one (with the
 *     same request for DONE), and the head alone too.
 *
 * Input: the bytes of the request. tests/fuzz/corpus/http holds requests
 * the status page and a Prometheus scrape send, and refused ones
 * (tests/fuzz/corpus_gen.c).
 *
 * libFuzzer: make fuzz. Plain program: -DFUZZ_MAIN (fuzz_main.h). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "runtime/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t accepted; /* heads parsed DONE */

static bool is_answer(enum http_parse rc)
{
    switch (rc) {
    case HTTP_PARSE_DONE:
    case HTTP_PARSE_MORE:
    case HTTP_PARSE_BAD:
    case HTTP_PARSE_NOT_FOUND:
    case HTTP_PARSE_METHOD:
    case HTTP_PARSE_TOO_BIG:
    case HTTP_PARSE_VERSION:
        return true;
    }
    return false;
}

/* Parse a heap copy of exactly n bytes, so that ASan sees any read past
 * them. */
static enum http_parse parse(const uint8_t *data, size_t n,
                             struct http_request *req)
{
    char *copy = malloc(n ? n : 1);
    ASSERT(copy != NULL);
    if (n)
        memcpy(copy, data, n);
    enum http_parse rc = http_request_parse(copy, n, req);
    free(copy);
    ASSERT(is_answer(rc));
    if (rc == HTTP_PARSE_MORE)
        ASSERT(n < HTTP_HEAD_MAX);
    if (rc != HTTP_PARSE_DONE)
        return rc;
    ASSERT(req->head_size >= 1 && req->head_size <= n &&
           req->head_size <= HTTP_HEAD_MAX);
    ASSERT(data[req->head_size - 1] == '\n');
    ASSERT(req->header_count <= HTTP_HEADERS_MAX);
    ASSERT(req->method == HTTP_GET || req->method == HTTP_HEAD);
    size_t len = strnlen(req->path, sizeof(req->path));
    ASSERT(len >= 1 && len < sizeof(req->path));
    ASSERT(req->path[0] == '/');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)req->path[i];
        ASSERT(c > 0x20 && c < 0x7f && c != '?' && c != '#');
    }
    return rc;
}

static bool same_request(const struct http_request *a,
                         const struct http_request *b)
{
    return a->method == b->method && strcmp(a->path, b->path) == 0 &&
           a->header_count == b->header_count && a->head_size == b->head_size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 2 * HTTP_HEAD_MAX)
        return 0;
    struct http_request whole, part;
    enum http_parse rc = parse(data, size, &whole);
    if (rc == HTTP_PARSE_DONE) {
        accepted++;
        ASSERT(parse(data, whole.head_size, &part) == HTTP_PARSE_DONE);
        ASSERT(same_request(&whole, &part));
        ASSERT(parse(data, whole.head_size - 1, &part) == HTTP_PARSE_MORE);
    }
    /* Two prefixes the server may have parsed before the rest arrived. */
    size_t cuts[2] = {size / 2, size ? size - 1 : 0};
    for (size_t i = 0; i < 2; i++) {
        enum http_parse early = parse(data, cuts[i], &part);
        if (early == HTTP_PARSE_MORE)
            continue;
        ASSERT(early == rc);
        if (rc == HTTP_PARSE_DONE)
            ASSERT(same_request(&whole, &part));
    }
    return 0;
}

#ifdef FUZZ_MAIN
#define FUZZ_NAME "http_fuzz"
#define FUZZ_ACCEPTED accepted
#include "fuzz_main.h"
#endif
