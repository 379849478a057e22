/* bench/request — see request.h. */
#include "bench/request.h"

#include <string.h>

#include "common/assert.h"

/* Decimal digits of v into out (no terminator); returns their count. */
static size_t put_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

static size_t put_text(char *out, const char *text)
{
    size_t n = strlen(text);
    memcpy(out, text, n);
    return n;
}

/* "$<len>\r\nk<key>\r\n": the key argument. */
static size_t put_key(char *out, uint64_t key)
{
    char digits[20];
    size_t d = put_u64(digits, key);
    size_t n = put_text(out, "$");
    n += put_u64(out + n, d + 1);
    n += put_text(out + n, "\r\nk");
    memcpy(out + n, digits, d);
    n += d;
    n += put_text(out + n, "\r\n");
    return n;
}

size_t bench_request_header(char *out, enum bench_op op, uint64_t key,
                            size_t value_size)
{
    size_t n = 0;
    switch (op) {
    case BENCH_OP_SET:
        n = put_text(out, "*3\r\n$3\r\nSET\r\n");
        n += put_key(out + n, key);
        n += put_text(out + n, "$");
        n += put_u64(out + n, value_size);
        n += put_text(out + n, "\r\n");
        break;
    case BENCH_OP_PUBLISH:
        n = put_text(out, "*3\r\n$7\r\nPUBLISH\r\n");
        n += put_key(out + n, key);
        n += put_text(out + n, "$");
        n += put_u64(out + n, value_size);
        n += put_text(out + n, "\r\n");
        break;
    case BENCH_OP_GET:
        n = put_text(out, "*2\r\n$3\r\nGET\r\n");
        n += put_key(out + n, key);
        break;
    case BENCH_OP_READONLY:
        n = put_text(out, "*1\r\n$8\r\nREADONLY\r\n");
        break;
    case BENCH_OP_PING:
        n = put_text(out, "*1\r\n$4\r\nPING\r\n");
        break;
    case BENCH_OP_EXEC: {
        static_assert(BENCH_EXEC_COMMANDS == 5, "the header says 18 and 5");
        n = put_text(out, "*18\r\n$11\r\nCOHORT.EXEC\r\n$1\r\n0\r\n"
                          "$1\r\n5\r\n");
        for (uint64_t i = 0; i < BENCH_EXEC_COMMANDS; i++) {
            n += put_text(out + n, "$1\r\n2\r\n$4\r\nINCR\r\n");
            n += put_key(out + n, key + i);
        }
        break;
    }
    }
    ASSERT(n > 0);
    ASSERT(n <= BENCH_HEADER_MAX);
    return n;
}

/* Whether an error reply's first word names a condition that another try,
 * on this or another member, may not meet: the member is changing views,
 * recovering, not the primary, or lost track of a write. */
static bool error_is_retry(const struct resp_node *reply)
{
    static const char *const words[] = {
        "TRYAGAIN",    "MOVED",      "ASK",      "UNKNOWN", "LOADING",
        "CLUSTERDOWN", "MASTERDOWN", "READONLY", "BUSY",
    };
    size_t word = 0;
    while (word < reply->len && reply->str[word] != ' ')
        word++;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strlen(words[i]) == word && !memcmp(reply->str, words[i], word))
            return true;
    return false;
}

static bool is_simple(const struct resp_node *reply, const char *text)
{
    return reply->type == RESP_TYPE_SIMPLE && reply->len == strlen(text) &&
           !memcmp(reply->str, text, reply->len);
}

enum bench_reply bench_reply_classify(enum bench_op op,
                                      const struct resp_node *reply)
{
    if (reply->type == RESP_TYPE_ERROR || reply->type == RESP_TYPE_BLOB_ERROR)
        return error_is_retry(reply) ? BENCH_REPLY_RETRY : BENCH_REPLY_ERROR;
    bool ok = false;
    switch (op) {
    case BENCH_OP_SET:
    case BENCH_OP_READONLY:
        ok = is_simple(reply, "OK");
        break;
    case BENCH_OP_GET:
        ok = reply->type == RESP_TYPE_BULK || reply->type == RESP_TYPE_NULL;
        break;
    case BENCH_OP_PING:
        ok = is_simple(reply, "PONG");
        break;
    case BENCH_OP_PUBLISH:
        ok = reply->type == RESP_TYPE_INTEGER && reply->integer >= 0;
        break;
    case BENCH_OP_EXEC:
        ok =
            reply->type == RESP_TYPE_ARRAY && reply->len == BENCH_EXEC_COMMANDS;
        break;
    }
    return ok ? BENCH_REPLY_OK : BENCH_REPLY_WRONG;
}
