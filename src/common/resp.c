/* resp — the RESP codec: request parser, reply writer, reply parser. See
 * resp.h for the contracts.
 *
 * How the parsers stay split-proof: every check looks only at bytes that
 * have arrived, and a check that lacks bytes returns NEED_MORE before any
 * later check runs. So for a prefix of a stream the answer is either
 * NEED_MORE or the answer for the whole stream, error message included. A
 * number line is judged byte by byte (a byte that cannot be part of it is an
 * error at once) and is at most 20 characters, so a peer cannot make the
 * parser wait forever on a length that never ends. */
#include "common/resp.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/hex.h"

/* "-9223372036854775808" is the longest number a line may hold. */
#define NUMBER_TEXT_MAX 20
/* The longest double a reply may carry, as text. */
#define DOUBLE_TEXT_MAX 128
/* The smallest encoding of one request argument ("$0\r\n\r\n") and of one
 * reply value ("_\r\n"): lower bounds for size_wanted. */
#define ARG_SIZE_MIN 6
#define VALUE_SIZE_MIN 3

static_assert(RESP_DEPTH_LIMIT >= 1, "the reply parser needs a stack");

enum line_status {
    LINE_OK,
    LINE_NEED_MORE,
    LINE_BAD,
    LINE_TOO_LONG,
};

static size_t add_saturated(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static size_t mul_saturated(size_t a, size_t b)
{
    return b != 0 && a > SIZE_MAX / b ? SIZE_MAX : a * b;
}

/* isspace() in the C locale, without the locale. */
static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
           c == '\r';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

bool resp_parse_i64(const void *text, size_t n, int64_t *out)
{
    const char *p = text;
    if (n == 0 || n > NUMBER_TEXT_MAX)
        return false;
    if (n == 1 && p[0] == '0') {
        *out = 0;
        return true;
    }
    bool negative = p[0] == '-';
    size_t i = negative ? 1 : 0;
    if (i == n || p[i] < '1' || p[i] > '9')
        return false;
    uint64_t v = 0;
    for (; i < n; i++) {
        if (!is_digit(p[i]))
            return false;
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (negative) {
        if (v > (uint64_t)INT64_MAX + 1)
            return false;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
        return true;
    }
    if (v > (uint64_t)INT64_MAX)
        return false;
    *out = (int64_t)v;
    return true;
}

/* A number line at buf[*pos]: '-' and digits, then CRLF. On LINE_OK sets
 * *value and moves *pos past the LF. Never LINE_TOO_LONG: an overlong line
 * is simply not a number. */
static enum line_status number_line(const char *buf, size_t size, size_t *pos,
                                    int64_t *value)
{
    size_t start = *pos;
    size_t i = start;
    for (;; i++) {
        if (i >= size)
            return LINE_NEED_MORE;
        if (buf[i] == '\r')
            break;
        if (i - start >= NUMBER_TEXT_MAX)
            return LINE_BAD;
        if (buf[i] != '-' && !is_digit(buf[i]))
            return LINE_BAD;
    }
    if (i + 1 >= size)
        return LINE_NEED_MORE;
    if (buf[i + 1] != '\n')
        return LINE_BAD;
    if (!resp_parse_i64(buf + start, i - start, value))
        return LINE_BAD;
    *pos = i + 2;
    return LINE_OK;
}

/* A text line at buf[pos]: at most max bytes with no CR or LF, then CRLF.
 * On LINE_OK sets *len to the bytes before the CR. */
static enum line_status text_line(const char *buf, size_t size, size_t pos,
                                  size_t max, size_t *len)
{
    ASSERT(pos <= size);
    size_t avail = size - pos;
    size_t scan = avail > max ? max + 1 : avail;
    const char *cr = memchr(buf + pos, '\r', scan);
    size_t before = cr ? (size_t)(cr - (buf + pos)) : scan;
    if (memchr(buf + pos, '\n', before))
        return LINE_BAD;
    if (!cr)
        return avail > max ? LINE_TOO_LONG : LINE_NEED_MORE;
    ASSERT(before <= max);
    if (pos + before + 1 >= size)
        return LINE_NEED_MORE;
    if (buf[pos + before + 1] != '\n')
        return LINE_BAD;
    *len = before;
    return LINE_OK;
}

/* The CRLF after a payload of n bytes at buf[pos]: a wrong byte is an error
 * as soon as it has arrived. */
static enum line_status payload_end(const char *buf, size_t size, size_t pos,
                                    size_t n)
{
    ASSERT(pos <= size);
    size_t avail = size - pos;
    for (size_t k = 0; k < 2; k++) {
        if (avail > n + k && buf[pos + n + k] != "\r\n"[k])
            return LINE_BAD;
    }
    return avail < n + 2 ? LINE_NEED_MORE : LINE_OK;
}

/* A byte as it may appear inside an error line: printable as itself,
 * anything else as \xNN. */
static void byte_text(char c, char out[8])
{
    unsigned char u = (unsigned char)c;
    if (u >= 0x20 && u < 0x7f)
        snprintf(out, 8, "%c", c);
    else
        snprintf(out, 8, "\\x%02x", u);
}

static enum resp_result protocol_error(struct cohort_err *err, const char *what)
{
    err_set(err, -COHORT_EPROTO, "Protocol error: %s", what);
    return RESP_ERROR;
}

/* ------------------------------------------------------------------------ */
/* Request parser: multibulk.                                               */

/* One "$<len>\r\n<bytes>\r\n" argument at buf[*pos]. On NEED_MORE sets
 * *wanted to a lower bound on where the argument ends. */
static enum resp_result bulk_arg_parse(const char *buf, size_t size,
                                       const struct resp_limits *limits,
                                       size_t *pos, struct resp_arg *arg,
                                       size_t *wanted, struct cohort_err *err)
{
    size_t p = *pos;
    if (p >= size) {
        *wanted = p + ARG_SIZE_MIN;
        return RESP_NEED_MORE;
    }
    if (buf[p] != '$') {
        char got[8];
        byte_text(buf[p], got);
        err_set(err, -COHORT_EPROTO, "Protocol error: expected '$', got '%s'",
                got);
        return RESP_ERROR;
    }
    p++;
    int64_t len = 0;
    enum line_status line = number_line(buf, size, &p, &len);
    if (line == LINE_NEED_MORE) {
        *wanted = size + 1;
        return RESP_NEED_MORE;
    }
    if (line != LINE_OK || len < 0)
        return protocol_error(err, "invalid bulk length");
    if ((uint64_t)len > limits->bulk_size_max) {
        err_set(err, -COHORT_ETOOBIG,
                "Protocol error: bulk length %" PRId64
                " exceeds limit %zu (" RESP_LIMIT_BULK_NAME ")",
                len, limits->bulk_size_max);
        arg->size = (size_t)len; /* the refused length, for the caller */
        *pos = p;                /* where its bytes begin */
        return RESP_ERROR;
    }
    size_t n = (size_t)len;
    line = payload_end(buf, size, p, n);
    if (line == LINE_BAD)
        return protocol_error(err, "missing CRLF after bulk string");
    if (line == LINE_NEED_MORE) {
        *wanted = add_saturated(p, add_saturated(n, 2));
        return RESP_NEED_MORE;
    }
    arg->ptr = buf + p;
    arg->size = n;
    *pos = p + n + 2;
    return RESP_COMPLETE;
}

static enum resp_result multibulk_parse(const char *buf, size_t size,
                                        const struct resp_limits *limits,
                                        struct resp_request *req,
                                        struct cohort_err *err)
{
    ASSERT(size > 0);
    ASSERT(buf[0] == '*');
    size_t pos = 1;
    int64_t count = 0;
    enum line_status line = number_line(buf, size, &pos, &count);
    if (line == LINE_NEED_MORE) {
        req->size_wanted = size + 1;
        return RESP_NEED_MORE;
    }
    /* Redis skips "*0" and "*-1" as empty commands. */
    if (line != LINE_OK || count < -1)
        return protocol_error(err, "invalid multibulk length");
    if (count <= 0) {
        req->consumed = pos;
        return RESP_COMPLETE;
    }
    if ((uint64_t)count > limits->arg_count_max) {
        err_set(err, -COHORT_ETOOBIG,
                "Protocol error: multibulk length %" PRId64
                " exceeds limit %" PRIu32 " (" RESP_LIMIT_ARGS_NAME ")",
                count, limits->arg_count_max);
        return RESP_ERROR;
    }
    uint32_t argc = (uint32_t)count;
    for (uint32_t i = 0; i < argc; i++) {
        struct resp_arg arg = {NULL, 0};
        size_t wanted = 0;
        enum resp_result r =
            bulk_arg_parse(buf, size, limits, &pos, &arg, &wanted, err);
        if (r == RESP_NEED_MORE) {
            size_t rest = mul_saturated(argc - i - 1, ARG_SIZE_MIN);
            req->size_wanted = add_saturated(wanted, rest);
            ASSERT(req->size_wanted > size);
            return RESP_NEED_MORE;
        }
        if (r == RESP_ERROR && arg.size > limits->bulk_size_max) {
            req->bulk_size_refused = arg.size;
            req->bulk_refused_at = pos;
            req->bulk_refused_args_after = argc - i - 1;
        }
        if (r != RESP_COMPLETE)
            return r;
        if (i < req->arg_capacity)
            req->argv[i] = arg;
    }
    req->argc = argc;
    if (argc > req->arg_capacity)
        return RESP_NEED_SPACE;
    req->consumed = pos;
    return RESP_COMPLETE;
}

/* ------------------------------------------------------------------------ */
/* Request parser: inline commands, split as Redis's sdssplitargs() does.   */

struct inline_scan {
    const char *line;
    size_t len;
    size_t pos;   /* next byte to read */
    char *out;    /* pass 2: where decoded tokens go (the line itself) */
    size_t start; /* the current token's first byte */
    size_t size;  /* decoded bytes of the current token */
};

enum token_step {
    STEP_MORE,
    STEP_END,
    STEP_UNBALANCED,
};

static void inline_emit(struct inline_scan *s, char c)
{
    if (s->out) {
        /* Decoding only shortens: the write never passes the read. */
        ASSERT(s->start + s->size < s->pos);
        s->out[s->start + s->size] = c;
    }
    s->size++;
}

static char escape_value(char c)
{
    switch (c) {
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    case 'b':
        return '\b';
    case 'a':
        return '\a';
    default:
        return c;
    }
}

/* A closing quote must be followed by whitespace or the end of the line. */
static enum token_step inline_close_quote(struct inline_scan *s)
{
    size_t next = s->pos + 1;
    if (next < s->len && !is_space(s->line[next]))
        return STEP_UNBALANCED;
    s->pos = next;
    return STEP_END;
}

static enum token_step inline_double_quoted(struct inline_scan *s)
{
    const char *p = s->line;
    size_t i = s->pos;
    if (i >= s->len)
        return STEP_UNBALANCED;
    if (p[i] == '\\' && i + 3 < s->len && p[i + 1] == 'x' &&
        hex_digit(p[i + 2], true) >= 0 && hex_digit(p[i + 3], true) >= 0) {
        s->pos = i + 4;
        inline_emit(s, (char)(hex_digit(p[i + 2], true) * 16 +
                              hex_digit(p[i + 3], true)));
        return STEP_MORE;
    }
    if (p[i] == '\\' && i + 1 < s->len) {
        s->pos = i + 2;
        inline_emit(s, escape_value(p[i + 1]));
        return STEP_MORE;
    }
    if (p[i] == '"')
        return inline_close_quote(s);
    s->pos = i + 1;
    inline_emit(s, p[i]);
    return STEP_MORE;
}

static enum token_step inline_single_quoted(struct inline_scan *s)
{
    const char *p = s->line;
    size_t i = s->pos;
    if (i >= s->len)
        return STEP_UNBALANCED;
    if (p[i] == '\\' && i + 1 < s->len && p[i + 1] == '\'') {
        s->pos = i + 2;
        inline_emit(s, '\'');
        return STEP_MORE;
    }
    if (p[i] == '\'')
        return inline_close_quote(s);
    s->pos = i + 1;
    inline_emit(s, p[i]);
    return STEP_MORE;
}

/* Read the next token into s->start/s->size (and, in pass 2, decode it in
 * place). Returns STEP_MORE for a token, STEP_END at the end of the line. */
static enum token_step inline_token(struct inline_scan *s)
{
    while (s->pos < s->len && is_space(s->line[s->pos]))
        s->pos++;
    if (s->pos == s->len)
        return STEP_END;
    s->start = s->pos;
    s->size = 0;
    char quote = 0;
    for (;;) {
        enum token_step step = STEP_MORE;
        if (quote == '"')
            step = inline_double_quoted(s);
        else if (quote == '\'')
            step = inline_single_quoted(s);
        if (step == STEP_UNBALANCED)
            return step;
        if (step == STEP_END)
            return STEP_MORE;
        if (quote)
            continue;
        /* Outside quotes: Redis ends a token only on these four. */
        if (s->pos == s->len)
            return STEP_MORE;
        char c = s->line[s->pos++];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            return STEP_MORE;
        if (c == '"' || c == '\'')
            quote = c;
        else
            inline_emit(s, c);
    }
}

/* Pass 1: count the tokens and check them against the limits. */
static enum resp_result inline_count(const char *line, size_t len,
                                     const struct resp_limits *limits,
                                     uint32_t *count, struct cohort_err *err)
{
    struct inline_scan s = {line, len, 0, NULL, 0, 0};
    uint32_t n = 0;
    for (;;) { /* each token consumes at least one byte */
        enum token_step step = inline_token(&s);
        if (step == STEP_END)
            break;
        if (step == STEP_UNBALANCED)
            return protocol_error(err, "unbalanced quotes in request");
        if (n == limits->arg_count_max) {
            err_set(err, -COHORT_ETOOBIG,
                    "Protocol error: inline argument count exceeds limit "
                    "%" PRIu32 " (" RESP_LIMIT_ARGS_NAME ")",
                    limits->arg_count_max);
            return RESP_ERROR;
        }
        if (s.size > limits->bulk_size_max) {
            err_set(err, -COHORT_ETOOBIG,
                    "Protocol error: inline argument of %zu bytes exceeds "
                    "limit %zu (" RESP_LIMIT_BULK_NAME ")",
                    s.size, limits->bulk_size_max);
            return RESP_ERROR;
        }
        n++;
    }
    *count = n;
    return RESP_COMPLETE;
}

/* Pass 2: decode the tokens in place into argv (already counted). */
static void inline_split(char *line, size_t len, struct resp_arg *argv,
                         uint32_t count)
{
    struct inline_scan s = {line, len, 0, line, 0, 0};
    for (uint32_t i = 0; i < count; i++) {
        enum token_step step = inline_token(&s);
        ASSERT(step == STEP_MORE);
        argv[i].ptr = line + s.start;
        argv[i].size = s.size;
    }
    ASSERT(inline_token(&s) == STEP_END);
}

static enum resp_result inline_parse(char *buf, size_t size,
                                     const struct resp_limits *limits,
                                     struct resp_request *req,
                                     struct cohort_err *err)
{
    size_t max = limits->inline_size_max;
    size_t scan = size > max ? max + 1 : size;
    const char *lf = memchr(buf, '\n', scan);
    if (!lf && size <= max) {
        req->size_wanted = size + 1;
        return RESP_NEED_MORE;
    }
    if (!lf) {
        err_set(err, -COHORT_ETOOBIG,
                "Protocol error: too big inline request, exceeds limit %zu "
                "(" RESP_LIMIT_INLINE_NAME ")",
                max);
        return RESP_ERROR;
    }
    size_t line_size = (size_t)(lf - buf);
    ASSERT(line_size <= max);
    size_t len = line_size;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    uint32_t count = 0;
    enum resp_result r = inline_count(buf, len, limits, &count, err);
    if (r != RESP_COMPLETE)
        return r;
    req->is_inline = true;
    req->argc = count;
    if (count > req->arg_capacity)
        return RESP_NEED_SPACE;
    inline_split(buf, len, req->argv, count);
    req->consumed = line_size + 1;
    return RESP_COMPLETE;
}

enum resp_result resp_request_parse(char *buf, size_t size,
                                    const struct resp_limits *limits,
                                    struct resp_request *req,
                                    struct cohort_err *err)
{
    ASSERT(limits->arg_count_max > 0);
    ASSERT(limits->inline_size_max > 0);
    ASSERT(req->argv != NULL || req->arg_capacity == 0);
    ASSERT(buf != NULL || size == 0);
    req->argc = 0;
    req->consumed = 0;
    req->size_wanted = 0;
    req->is_inline = false;
    req->bulk_size_refused = 0;
    req->bulk_refused_at = 0;
    req->bulk_refused_args_after = 0;
    if (size == 0) {
        req->size_wanted = 1;
        return RESP_NEED_MORE;
    }
    enum resp_result r = buf[0] == '*'
                             ? multibulk_parse(buf, size, limits, req, err)
                             : inline_parse(buf, size, limits, req, err);
    ASSERT(r != RESP_COMPLETE || (req->consumed > 0 && req->consumed <= size));
    ASSERT(r != RESP_NEED_MORE || req->size_wanted > size);
    return r;
}

/* ------------------------------------------------------------------------ */
/* Reply writer.                                                            */

#define RESP_BUF_CAPACITY_MIN 256

void resp_buf_init(struct resp_buf *b, int proto)
{
    ASSERT(proto == 2 || proto == 3);
    memset(b, 0, sizeof(*b));
    b->proto = proto;
    b->ok = true;
}

void resp_buf_deinit(struct resp_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void resp_buf_consume(struct resp_buf *b, size_t n)
{
    ASSERT(n <= b->size);
    if (n == 0)
        return;
    memmove(b->data, b->data + n, b->size - n);
    b->size -= n;
}

/* Room for n more bytes at the end, which count as written; NULL after an
 * allocation failure, which sticks. */
static char *buf_reserve(struct resp_buf *b, size_t n)
{
    ASSERT(b->size <= b->capacity);
    if (!b->ok)
        return NULL;
    if (n > SIZE_MAX - b->size) {
        b->ok = false;
        return NULL;
    }
    size_t need = b->size + n;
    if (need > b->capacity) {
        size_t cap = b->capacity ? b->capacity : RESP_BUF_CAPACITY_MIN;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        /* tidy: allow realloc: a writer's buffer grows with what is written
         * to it; the server, client and store use it, never the core. */
        char *p = realloc(b->data, cap);
        if (!p) {
            b->ok = false;
            return NULL;
        }
        b->data = p;
        b->capacity = cap;
    }
    char *at = b->data + b->size;
    b->size = need;
    return at;
}

static void buf_append(struct resp_buf *b, const void *data, size_t size)
{
    char *at = buf_reserve(b, size);
    if (at && size)
        memcpy(at, data, size);
}

/* type, the decimal digits of value (with '-' if negative), CRLF: the
 * header of every reply and bulk string, so no printf on the hot path. */
static void write_number_line(struct resp_buf *b, char type, bool negative,
                              uint64_t magnitude)
{
    char text[24];
    char *end = text + sizeof(text);
    char *p = end;
    *--p = '\n';
    *--p = '\r';
    do {
        *--p = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude > 0);
    if (negative)
        *--p = '-';
    *--p = type;
    buf_append(b, p, (size_t)(end - p));
}

static void write_count(struct resp_buf *b, char type, size_t count)
{
    write_number_line(b, type, false, count);
}

static void write_line(struct resp_buf *b, char type, const char *s,
                       size_t size)
{
    char *at = buf_reserve(b, add_saturated(size, 3));
    if (!at)
        return;
    at[0] = type;
    for (size_t i = 0; i < size; i++)
        at[1 + i] = s[i] == '\r' || s[i] == '\n' ? ' ' : s[i];
    at[size + 1] = '\r';
    at[size + 2] = '\n';
}

void resp_write_simple(struct resp_buf *b, const char *s)
{
    write_line(b, '+', s, strlen(s));
}

void resp_write_error(struct resp_buf *b, const char *msg)
{
    write_line(b, '-', msg, strlen(msg));
}

void resp_write_errorf(struct resp_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *at = n < 0 ? NULL : buf_reserve(b, (size_t)n + 3);
    if (at) {
        at[0] = '-';
        vsnprintf(at + 1, (size_t)n + 1, fmt, again);
        for (int i = 1; i <= n; i++)
            at[i] = at[i] == '\r' || at[i] == '\n' ? ' ' : at[i];
        at[n + 1] = '\r';
        at[n + 2] = '\n';
    } else if (n < 0) {
        resp_write_error(b, "ERR error message could not be formatted");
    }
    va_end(again);
}

const char *resp_show(char *out, size_t out_size, const void *data, size_t size)
{
    ASSERT(out_size > 0);
    ASSERT(data != NULL || size == 0);
    const unsigned char *p = data;
    size_t used = 0;
    for (size_t i = 0; i < size; i++) {
        char piece[8];
        size_t n;
        if (p[i] == '\\') {
            memcpy(piece, "\\\\", 2);
            n = 2;
        } else if (p[i] >= 0x20 && p[i] < 0x7f) {
            piece[0] = (char)p[i];
            n = 1;
        } else {
            snprintf(piece, sizeof(piece), "\\x%02x", p[i]);
            n = 4;
        }
        if (used + n > out_size - 1)
            break;
        memcpy(out + used, piece, n);
        used += n;
    }
    out[used] = '\0';
    return out;
}

void resp_write_integer(struct resp_buf *b, int64_t value)
{
    /* -(INT64_MIN) does not fit an int64; as a uint64 it does. */
    uint64_t magnitude = value < 0 ? 0u - (uint64_t)value : (uint64_t)value;
    write_number_line(b, ':', value < 0, magnitude);
}

void resp_write_bulk(struct resp_buf *b, const void *data, size_t size)
{
    write_count(b, '$', size);
    buf_append(b, data, size);
    buf_append(b, "\r\n", 2);
}

void resp_write_null(struct resp_buf *b)
{
    ASSERT(b->proto == 2 || b->proto == 3);
    if (b->proto == 3)
        buf_append(b, "_\r\n", 3);
    else
        buf_append(b, "$-1\r\n", 5);
}

void resp_write_null_array(struct resp_buf *b)
{
    ASSERT(b->proto == 2 || b->proto == 3);
    if (b->proto == 3)
        buf_append(b, "_\r\n", 3);
    else
        buf_append(b, "*-1\r\n", 5);
}

void resp_write_array(struct resp_buf *b, size_t count)
{
    write_count(b, '*', count);
}

void resp_write_map(struct resp_buf *b, size_t pair_count)
{
    ASSERT(b->proto == 2 || b->proto == 3);
    ASSERT(pair_count <= SIZE_MAX / 2);
    if (b->proto == 3)
        write_count(b, '%', pair_count);
    else
        write_count(b, '*', pair_count * 2);
}

void resp_write_set(struct resp_buf *b, size_t count)
{
    ASSERT(b->proto == 2 || b->proto == 3);
    write_count(b, b->proto == 3 ? '~' : '*', count);
}

void resp_write_push(struct resp_buf *b, size_t count)
{
    ASSERT(b->proto == 2 || b->proto == 3);
    write_count(b, b->proto == 3 ? '>' : '*', count);
}

/* The shortest "%.*g" text that reads back as the same double. */
static size_t double_text(double value, char *text, size_t size)
{
    if (isnan(value))
        return (size_t)snprintf(text, size, "nan");
    if (isinf(value))
        return (size_t)snprintf(text, size, value > 0 ? "inf" : "-inf");
    int n = 0;
    for (int precision = 1; precision <= 17; precision++) {
        n = snprintf(text, size, "%.*g", precision, value);
        if (strtod(text, NULL) == value)
            break;
    }
    ASSERT(n > 0 && (size_t)n < size);
    return (size_t)n;
}

void resp_write_double(struct resp_buf *b, double value)
{
    ASSERT(b->proto == 2 || b->proto == 3);
    char text[40];
    size_t n = double_text(value, text, sizeof(text));
    if (b->proto == 3)
        write_line(b, ',', text, n);
    else
        resp_write_bulk(b, text, n);
}

void resp_write_boolean(struct resp_buf *b, bool value)
{
    ASSERT(b->proto == 2 || b->proto == 3);
    if (b->proto == 3)
        buf_append(b, value ? "#t\r\n" : "#f\r\n", 4);
    else
        buf_append(b, value ? ":1\r\n" : ":0\r\n", 4);
}

void resp_write_verbatim(struct resp_buf *b, const char *format,
                         const void *data, size_t size)
{
    ASSERT(b->proto == 2 || b->proto == 3);
    ASSERT(strlen(format) == 3);
    if (b->proto == 2) {
        resp_write_bulk(b, data, size);
        return;
    }
    write_count(b, '=', add_saturated(size, 4));
    buf_append(b, format, 3);
    buf_append(b, ":", 1);
    buf_append(b, data, size);
    buf_append(b, "\r\n", 2);
}

void resp_write_command(struct resp_buf *b, uint32_t argc,
                        const struct resp_arg *argv)
{
    ASSERT(argc > 0);
    write_count(b, '*', argc);
    for (uint32_t i = 0; i < argc; i++)
        resp_write_bulk(b, argv[i].ptr, argv[i].size);
}

void resp_write_raw(struct resp_buf *b, const void *data, size_t size)
{
    buf_append(b, data, size);
}

/* ------------------------------------------------------------------------ */
/* Reply parser.                                                            */

struct reply_frame {
    uint64_t left; /* elements of this aggregate still to come */
    uint32_t node; /* the aggregate's node, if stored */
    bool is_attribute;
};

struct reply_parse {
    const char *buf;
    size_t size;
    size_t pos;
    const struct resp_reply_limits *limits;
    struct resp_reply *reply;
    struct cohort_err *err;
    uint32_t node_count;
    uint32_t depth;
    uint32_t attribute_depth; /* attribute frames open: store nothing */
    struct reply_frame stack[RESP_DEPTH_LIMIT];
};

/* What a value's header said beyond its node. */
struct value_shape {
    bool is_aggregate;
    bool is_attribute;
    uint64_t elements;
};

/* NEED_MORE inside the current value, which ends at value_end or later; the
 * values the open aggregates still expect come after it. */
static enum resp_result reply_need_more(struct reply_parse *rp,
                                        size_t value_end)
{
    size_t wanted = value_end > rp->size ? value_end : rp->size + 1;
    for (uint32_t d = 0; d < rp->depth; d++) {
        const struct reply_frame *f = &rp->stack[d];
        uint64_t rest = f->left - 1 + (f->is_attribute ? 1 : 0);
        size_t rest_size = rest > SIZE_MAX ? SIZE_MAX : (size_t)rest;
        wanted =
            add_saturated(wanted, mul_saturated(rest_size, VALUE_SIZE_MIN));
    }
    rp->reply->size_wanted = wanted;
    return RESP_NEED_MORE;
}

static bool big_number_valid(const char *s, size_t len)
{
    size_t i = len > 0 && s[0] == '-' ? 1 : 0;
    if (i == len)
        return false;
    for (; i < len; i++) {
        if (!is_digit(s[i]))
            return false;
    }
    return true;
}

static bool double_parse(const char *s, size_t len, double *value)
{
    if (len == 0 || len > DOUBLE_TEXT_MAX || is_space(s[0]))
        return false;
    char text[DOUBLE_TEXT_MAX + 1];
    memcpy(text, s, len);
    text[len] = '\0';
    char *end = NULL;
    *value = strtod(text, &end);
    return end == text + len;
}

/* Check a line's text by its type and fill the node. */
static enum resp_result reply_line_value(struct reply_parse *rp, char type,
                                         const char *s, size_t len,
                                         struct resp_node *node)
{
    node->type = (enum resp_type)type;
    switch (type) {
    case '#':
        if (len != 1 || (s[0] != 't' && s[0] != 'f'))
            return protocol_error(rp->err, "invalid boolean");
        node->integer = s[0] == 't';
        return RESP_COMPLETE;
    case '_':
        if (len != 0)
            return protocol_error(rp->err, "invalid null");
        return RESP_COMPLETE;
    case ',':
        if (!double_parse(s, len, &node->dbl))
            return protocol_error(rp->err, "invalid double");
        break;
    case '(':
        if (!big_number_valid(s, len))
            return protocol_error(rp->err, "invalid big number");
        break;
    default:
        break;
    }
    node->str = s;
    node->len = len;
    return RESP_COMPLETE;
}

/* "+", "-", "(", ",", "#" and "_": one text line, checked per type. */
static enum resp_result reply_line(struct reply_parse *rp,
                                   struct resp_node *node)
{
    char type = rp->buf[rp->pos];
    size_t max = rp->limits->bulk_size_max;
    if (type == ',')
        max = DOUBLE_TEXT_MAX;
    else if (type == '#')
        max = 1;
    else if (type == '_')
        max = 0;
    size_t len = 0;
    const char *s = rp->buf + rp->pos + 1;
    switch (text_line(rp->buf, rp->size, rp->pos + 1, max, &len)) {
    case LINE_NEED_MORE:
        return reply_need_more(rp, rp->size + 1);
    case LINE_TOO_LONG:
        if (type == '+' || type == '-' || type == '(') {
            err_set(rp->err, -COHORT_ETOOBIG,
                    "Protocol error: reply line exceeds limit %zu bytes", max);
            return RESP_ERROR;
        }
        /* A boolean, null or double this long is no such thing: the check
         * below rejects it by its length alone. */
        len = max + 1;
        break;
    case LINE_BAD:
        return protocol_error(rp->err, "missing CRLF after reply line");
    case LINE_OK:
        break;
    }
    enum resp_result r = reply_line_value(rp, type, s, len, node);
    if (r == RESP_COMPLETE)
        rp->pos += 1 + len + 2;
    return r;
}

static enum resp_result reply_integer(struct reply_parse *rp,
                                      struct resp_node *node)
{
    size_t p = rp->pos + 1;
    enum line_status line = number_line(rp->buf, rp->size, &p, &node->integer);
    if (line == LINE_NEED_MORE)
        return reply_need_more(rp, rp->size + 1);
    if (line != LINE_OK)
        return protocol_error(rp->err, "invalid integer");
    node->type = RESP_TYPE_INTEGER;
    rp->pos = p;
    return RESP_COMPLETE;
}

/* "$", "!" and "=": a length, the bytes, CRLF. "$-1" is RESP2's null. */
static enum resp_result reply_bulk(struct reply_parse *rp,
                                   struct resp_node *node)
{
    char type = rp->buf[rp->pos];
    size_t p = rp->pos + 1;
    int64_t len = 0;
    enum line_status line = number_line(rp->buf, rp->size, &p, &len);
    if (line == LINE_NEED_MORE)
        return reply_need_more(rp, rp->size + 1);
    if (line != LINE_OK || len < -1 || (len == -1 && type != '$'))
        return protocol_error(rp->err, "invalid bulk length");
    if (len == -1) {
        node->type = RESP_TYPE_NULL;
        rp->pos = p;
        return RESP_COMPLETE;
    }
    if ((uint64_t)len > rp->limits->bulk_size_max) {
        err_set(rp->err, -COHORT_ETOOBIG,
                "Protocol error: bulk length %" PRId64 " exceeds limit %zu",
                len, rp->limits->bulk_size_max);
        return RESP_ERROR;
    }
    size_t n = (size_t)len;
    line = payload_end(rp->buf, rp->size, p, n);
    if (line == LINE_BAD)
        return protocol_error(rp->err, "missing CRLF after bulk string");
    if (line == LINE_NEED_MORE)
        return reply_need_more(rp, add_saturated(p, add_saturated(n, 2)));
    node->type = (enum resp_type)type;
    node->str = rp->buf + p;
    node->len = n;
    if (type == '=') {
        if (n < 4 || node->str[3] != ':')
            return protocol_error(rp->err, "invalid verbatim string");
        memcpy(node->format, node->str, 3);
        node->format[3] = '\0';
        node->str += 4;
        node->len -= 4;
    }
    rp->pos = p + n + 2;
    return RESP_COMPLETE;
}

/* "*", "%", "~", ">" and "|": a count; the elements follow. "*-1" is RESP2's
 * null array. */
static enum resp_result reply_aggregate(struct reply_parse *rp,
                                        struct resp_node *node,
                                        struct value_shape *shape)
{
    char type = rp->buf[rp->pos];
    size_t p = rp->pos + 1;
    int64_t count = 0;
    enum line_status line = number_line(rp->buf, rp->size, &p, &count);
    if (line == LINE_NEED_MORE)
        return reply_need_more(rp, rp->size + 1);
    if (line != LINE_OK || count < -1 || (count == -1 && type != '*'))
        return protocol_error(rp->err, "invalid multibulk length");
    rp->pos = p;
    if (count == -1) {
        node->type = RESP_TYPE_NULL;
        return RESP_COMPLETE;
    }
    if ((uint64_t)count > rp->limits->element_count_max) {
        err_set(rp->err, -COHORT_ETOOBIG,
                "Protocol error: aggregate length %" PRId64
                " exceeds limit %" PRIu64,
                count, rp->limits->element_count_max);
        return RESP_ERROR;
    }
    if (rp->depth + 1 > rp->limits->depth_max) {
        err_set(rp->err, -COHORT_ETOOBIG,
                "Protocol error: nesting depth exceeds limit %" PRIu32,
                rp->limits->depth_max);
        return RESP_ERROR;
    }
    bool pairs = type == '%' || type == '|';
    node->type = (enum resp_type)type;
    node->len = (size_t)count;
    shape->is_aggregate = true;
    shape->is_attribute = type == '|';
    shape->elements = (uint64_t)count * (pairs ? 2 : 1);
    return RESP_COMPLETE;
}

static enum resp_result reply_value(struct reply_parse *rp,
                                    struct resp_node *node,
                                    struct value_shape *shape)
{
    if (rp->pos >= rp->size)
        return reply_need_more(rp, rp->pos + VALUE_SIZE_MIN);
    char type = rp->buf[rp->pos];
    switch (type) {
    case '+':
    case '-':
    case '(':
    case ',':
    case '#':
    case '_':
        return reply_line(rp, node);
    case ':':
        return reply_integer(rp, node);
    case '$':
    case '!':
    case '=':
        return reply_bulk(rp, node);
    case '*':
    case '%':
    case '~':
    case '>':
    case '|':
        return reply_aggregate(rp, node, shape);
    default: {
        char got[8];
        byte_text(type, got);
        err_set(rp->err, -COHORT_EPROTO,
                "Protocol error: unknown reply type '%s'", got);
        return RESP_ERROR;
    }
    }
}

/* A value (not an attribute) ended: close the aggregates it completes.
 * Returns true when the top-level value is complete. */
static bool reply_value_done(struct reply_parse *rp)
{
    while (rp->depth > 0) { /* at most RESP_DEPTH_LIMIT rounds */
        struct reply_frame *f = &rp->stack[rp->depth - 1];
        ASSERT(f->left > 0);
        f->left--;
        if (f->left > 0)
            return false;
        rp->depth--;
        if (f->is_attribute) {
            /* The annotated value is still to come. */
            ASSERT(rp->attribute_depth > 0);
            rp->attribute_depth--;
            return false;
        }
        if (rp->attribute_depth == 0 && f->node < rp->reply->node_capacity)
            rp->reply->nodes[f->node].next = rp->node_count;
    }
    return true;
}

/* Store the node (unless inside an attribute) and open its aggregate. */
static enum resp_result reply_place(struct reply_parse *rp,
                                    const struct resp_node *node,
                                    const struct value_shape *shape)
{
    uint32_t index = rp->node_count;
    if (rp->attribute_depth == 0 && !shape->is_attribute) {
        if (index == UINT32_MAX)
            return protocol_error(rp->err, "too many reply elements");
        if (index < rp->reply->node_capacity) {
            rp->reply->nodes[index] = *node;
            rp->reply->nodes[index].next = index + 1;
        }
        rp->node_count++;
    }
    if (shape->is_aggregate && shape->elements > 0) {
        ASSERT(rp->depth < RESP_DEPTH_LIMIT);
        struct reply_frame *f = &rp->stack[rp->depth++];
        f->left = shape->elements;
        f->node = index;
        f->is_attribute = shape->is_attribute;
        if (shape->is_attribute)
            rp->attribute_depth++;
    }
    return RESP_COMPLETE;
}

enum resp_result resp_reply_parse(const char *buf, size_t size,
                                  const struct resp_reply_limits *limits,
                                  struct resp_reply *reply,
                                  struct cohort_err *err)
{
    ASSERT(limits->depth_max >= 1);
    ASSERT(limits->depth_max <= RESP_DEPTH_LIMIT);
    ASSERT(reply->nodes != NULL || reply->node_capacity == 0);
    ASSERT(buf != NULL || size == 0);
    reply->node_count = 0;
    reply->consumed = 0;
    reply->size_wanted = 0;
    struct reply_parse rp = {
        .buf = buf, .size = size, .limits = limits, .reply = reply, .err = err};
    for (;;) { /* each value consumes at least VALUE_SIZE_MIN bytes */
        struct resp_node node;
        memset(&node, 0, sizeof(node));
        struct value_shape shape = {false, false, 0};
        size_t before = rp.pos;
        enum resp_result r = reply_value(&rp, &node, &shape);
        if (r != RESP_COMPLETE)
            return r;
        ASSERT(rp.pos >= before + VALUE_SIZE_MIN);
        r = reply_place(&rp, &node, &shape);
        if (r != RESP_COMPLETE)
            return r;
        bool opened = shape.is_aggregate && shape.elements > 0;
        if (!opened && !shape.is_attribute && reply_value_done(&rp))
            break;
    }
    ASSERT(rp.depth == 0);
    ASSERT(rp.node_count > 0);
    reply->node_count = rp.node_count;
    if (rp.node_count > reply->node_capacity)
        return RESP_NEED_SPACE;
    reply->consumed = rp.pos;
    return RESP_COMPLETE;
}

bool resp_arg_is(const struct resp_arg *arg, const char *word)
{
    if (strlen(word) != arg->size)
        return false;
    for (size_t i = 0; i < arg->size; i++) {
        uint8_t b = (uint8_t)arg->ptr[i];
        if (b >= 'A' && b <= 'Z')
            b = (uint8_t)(b - 'A' + 'a');
        if (b != (uint8_t)word[i])
            return false;
    }
    return true;
}
