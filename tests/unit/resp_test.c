/* The RESP codec: request parser, reply writer, reply parser. Every parse
 * runs on an exact-size heap copy of its input, so a read past the end shows
 * up under ASan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/resp.h"

#define ARGV_MAX 16
#define NODES_MAX 64

static const struct resp_limits limits = {
    .arg_count_max = 1024,
    .bulk_size_max = 1048576,
    .inline_size_max = 65536,
};

static const struct resp_reply_limits reply_limits = {
    .depth_max = RESP_DEPTH_LIMIT,
    .bulk_size_max = 1048576,
    .element_count_max = 1000000,
};

/* An exact-size heap copy, so ASan sees any read past the end. */
static char *copy_of(const char *data, size_t size)
{
    char *p = malloc(size ? size : 1);
    assert_non_null(p);
    if (size)
        memcpy(p, data, size);
    return p;
}

struct request_out {
    enum resp_result result;
    struct resp_request req;
    struct resp_arg argv[ARGV_MAX];
    struct cohort_err err;
};

/* Parse one request from a copy of data; buf keeps the copy (argv points
 * into it) until the caller frees it. */
static char *parse_request(const char *data, size_t size,
                           const struct resp_limits *lim, uint32_t capacity,
                           struct request_out *out)
{
    char *buf = copy_of(data, size);
    memset(out, 0, sizeof(*out));
    err_clear(&out->err);
    out->req.argv = out->argv;
    out->req.arg_capacity = capacity;
    out->result = resp_request_parse(buf, size, lim, &out->req, &out->err);
    return buf;
}

static void assert_arg(const struct resp_arg *arg, const char *text)
{
    assert_int_equal(arg->size, strlen(text));
    assert_memory_equal(arg->ptr, text, arg->size);
}

static void expect_request_error(const char *data, size_t size,
                                 const struct resp_limits *lim,
                                 const char *message, int code)
{
    struct request_out out;
    char *buf = parse_request(data, size, lim, ARGV_MAX, &out);
    assert_int_equal(out.result, RESP_ERROR);
    assert_string_equal(out.err.message, message);
    assert_int_equal(out.err.code, code);
    free(buf);
}

#define REQUEST_ERROR(text, message)                                           \
    expect_request_error(text, sizeof(text) - 1, &limits, message,             \
                         -COHORT_EPROTO)

static void shown_bytes_are_escaped_and_bounded(void **state)
{
    (void)state;
    char out[32];
    assert_string_equal(resp_show(out, sizeof(out), "a\0b\r\n\\\x80z", 8),
                        "a\\x00b\\x0d\\x0a\\\\\\x80z");
    assert_string_equal(resp_show(out, sizeof(out), NULL, 0), "");
    /* Cut to out_size - 1 characters, whole escapes only. */
    assert_string_equal(resp_show(out, 6, "abcdefgh", 8), "abcde");
    assert_string_equal(resp_show(out, 6, "abc\0", 4), "abc");
    assert_string_equal(resp_show(out, 1, "abc", 3), "");
}

static void parses_pipelined_commands_one_at_a_time(void **state)
{
    (void)state;
    const char stream[] = "*1\r\n$4\r\nPING\r\n"
                          "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n"
                          "GET k\r\n";
    size_t size = sizeof(stream) - 1;
    char *buf = copy_of(stream, size);
    struct resp_arg argv[ARGV_MAX];
    struct resp_request req = {.argv = argv, .arg_capacity = ARGV_MAX};
    struct cohort_err err;
    size_t at = 0;

    assert_int_equal(resp_request_parse(buf, size, &limits, &req, &err),
                     RESP_COMPLETE);
    assert_int_equal(req.argc, 1);
    assert_int_equal(req.consumed, 14);
    assert_false(req.is_inline);
    assert_arg(&argv[0], "PING");
    at += req.consumed;

    assert_int_equal(
        resp_request_parse(buf + at, size - at, &limits, &req, &err),
        RESP_COMPLETE);
    assert_int_equal(req.argc, 3);
    assert_arg(&argv[0], "SET");
    assert_arg(&argv[1], "k");
    assert_arg(&argv[2], "hello");
    /* Zero-copy: the arguments point into the buffer. */
    assert_ptr_equal(argv[2].ptr, buf + at + 24);
    at += req.consumed;

    assert_int_equal(
        resp_request_parse(buf + at, size - at, &limits, &req, &err),
        RESP_COMPLETE);
    assert_true(req.is_inline);
    assert_int_equal(req.argc, 2);
    assert_arg(&argv[0], "GET");
    assert_arg(&argv[1], "k");
    at += req.consumed;
    assert_int_equal(at, size);

    assert_int_equal(resp_request_parse(buf + at, 0, &limits, &req, &err),
                     RESP_NEED_MORE);
    assert_int_equal(req.size_wanted, 1);
    free(buf);
}

static void partial_command_needs_more_and_consumes_nothing(void **state)
{
    (void)state;
    const char *commands[] = {
        "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n",
        "SET key value\r\n",
        "SET \"a b\" 'c'\r\n",
        /* Empty arguments make size_wanted's lower bound exact. */
        "*3\r\n$0\r\n\r\n$0\r\n\r\n$0\r\n\r\n",
    };
    for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
        size_t size = strlen(commands[c]);
        for (size_t cut = 0; cut < size; cut++) {
            struct request_out out;
            char *buf =
                parse_request(commands[c], cut, &limits, ARGV_MAX, &out);
            assert_int_equal(out.result, RESP_NEED_MORE);
            assert_int_equal(out.req.consumed, 0);
            assert_true(out.req.size_wanted > cut);
            assert_true(out.req.size_wanted <= size);
            /* Nothing was written: the prefix is as it came. */
            assert_memory_equal(buf, commands[c], cut);
            free(buf);
        }
        struct request_out out;
        free(parse_request(commands[c], size, &limits, ARGV_MAX, &out));
        assert_int_equal(out.result, RESP_COMPLETE);
        assert_int_equal(out.req.consumed, size);
        assert_int_equal(out.req.argc, 3);
    }
}

/* What a connection would see for a stream that arrives in the given
 * pieces: each command as "argc:arg,arg;" and a final "E:message" or
 * "left:N". */
static void request_transcript(const char *stream, size_t size,
                               const size_t *cuts, size_t cut_count, char *out,
                               size_t out_max)
{
    size_t used = 0;
    size_t pending = 0; /* stream[start, start + pending) is buffered */
    size_t start = 0;
    out[0] = '\0';
    for (size_t piece = 0; piece <= cut_count; piece++) {
        size_t end = piece < cut_count ? cuts[piece] : size;
        pending = end - start;
        for (;;) {
            struct request_out r;
            char *buf =
                parse_request(stream + start, pending, &limits, ARGV_MAX, &r);
            if (r.result == RESP_ERROR) {
                snprintf(out + used, out_max - used, "E:%s", r.err.message);
                free(buf);
                return;
            }
            assert_int_not_equal(r.result, RESP_NEED_SPACE);
            if (r.result == RESP_NEED_MORE) {
                free(buf);
                break;
            }
            used +=
                (size_t)snprintf(out + used, out_max - used, "%u:", r.req.argc);
            for (uint32_t i = 0; i < r.req.argc; i++)
                used += (size_t)snprintf(out + used, out_max - used, "%.*s,",
                                         (int)r.argv[i].size, r.argv[i].ptr);
            used += (size_t)snprintf(out + used, out_max - used, ";");
            assert_true(used < out_max);
            start += r.req.consumed;
            pending -= r.req.consumed;
            free(buf);
        }
    }
    snprintf(out + used, out_max - used, "left:%zu", pending);
}

static void every_split_point_gives_the_same_parse(void **state)
{
    (void)state;
    const char *streams[] = {
        "*2\r\n$4\r\nECHO\r\n$11\r\nhello world\r\n"
        "PING\r\n"
        "*0\r\n"
        "SET 'it\\'s' \"tab\\there\\x41\" plain\n"
        "*1\r\n$0\r\n\r\n"
        "\r\n"
        "*3\r\n$3\r\nDEL\r\n$1\r\na\r\n$1\r\nb\r\n"
        "GET partial",
        "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$3\r\nabcXY",
        "PING\r\nSET \"unbalanced\r\n",
    };
    char whole[1024];
    char split[1024];
    for (size_t s = 0; s < sizeof(streams) / sizeof(streams[0]); s++) {
        size_t size = strlen(streams[s]);
        request_transcript(streams[s], size, NULL, 0, whole, sizeof(whole));
        for (size_t cut = 0; cut <= size; cut++) {
            request_transcript(streams[s], size, &cut, 1, split, sizeof(split));
            assert_string_equal(split, whole);
        }
        /* One byte at a time. */
        size_t cuts[512];
        assert_true(size <= 512);
        for (size_t i = 0; i < size; i++)
            cuts[i] = i;
        request_transcript(streams[s], size, cuts, size, split, sizeof(split));
        assert_string_equal(split, whole);
    }
    /* And the transcripts say what they should. */
    request_transcript(streams[1], strlen(streams[1]), NULL, 0, whole,
                       sizeof(whole));
    assert_string_equal(whole,
                        "1:PING,;E:Protocol error: missing CRLF after bulk "
                        "string");
    request_transcript(streams[0], strlen(streams[0]), NULL, 0, whole,
                       sizeof(whole));
    assert_string_equal(whole, "2:ECHO,hello world,;1:PING,;0:;"
                               "4:SET,it's,tab\thereA,plain,;1:,;0:;"
                               "3:DEL,a,b,;left:11");
}

static void inline_command_splits_on_whitespace(void **state)
{
    (void)state;
    const char text[] = "  SET\tkey   value \r\n";
    struct request_out out;
    char *buf = parse_request(text, sizeof(text) - 1, &limits, ARGV_MAX, &out);
    assert_int_equal(out.result, RESP_COMPLETE);
    assert_true(out.req.is_inline);
    assert_int_equal(out.req.consumed, sizeof(text) - 1);
    assert_int_equal(out.req.argc, 3);
    assert_arg(&out.argv[0], "SET");
    assert_arg(&out.argv[1], "key");
    assert_arg(&out.argv[2], "value");
    free(buf);

    /* A bare LF ends the line too, as redis-cli and telnet may send. */
    buf = parse_request("PING\nPING\n", 10, &limits, ARGV_MAX, &out);
    assert_int_equal(out.result, RESP_COMPLETE);
    assert_int_equal(out.req.consumed, 5);
    assert_int_equal(out.req.argc, 1);
    assert_arg(&out.argv[0], "PING");
    free(buf);
}

static void inline_quotes_follow_redis_rules(void **state)
{
    (void)state;
    const char text[] = "SET \"a b\" 'it\\'s' \"\\x41\\n\\\"\" x\"y z\"\r\n";
    struct request_out out;
    char *buf = parse_request(text, sizeof(text) - 1, &limits, ARGV_MAX, &out);
    assert_int_equal(out.result, RESP_COMPLETE);
    assert_int_equal(out.req.argc, 5);
    assert_arg(&out.argv[0], "SET");
    assert_arg(&out.argv[1], "a b");
    assert_arg(&out.argv[2], "it's");
    assert_arg(&out.argv[3], "A\n\"");
    /* A quote may open inside a token; the closing one must end it. */
    assert_arg(&out.argv[4], "xy z");
    free(buf);

    REQUEST_ERROR("SET \"abc\r\n",
                  "Protocol error: unbalanced quotes in request");
    REQUEST_ERROR("SET 'abc\r\n",
                  "Protocol error: unbalanced quotes in request");
    REQUEST_ERROR("SET \"a\"b\r\n",
                  "Protocol error: unbalanced quotes in request");
    buf = parse_request("ECHO \"\"\r\n", 9, &limits, ARGV_MAX, &out);
    assert_int_equal(out.result, RESP_COMPLETE);
    assert_int_equal(out.req.argc, 2);
    assert_arg(&out.argv[1], "");
    free(buf);
}

static void bulk_over_limit_is_an_error_naming_the_limit(void **state)
{
    (void)state;
    /* The header alone decides: the 2 MiB never has to arrive. */
    const char text[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2097152\r\n";
    expect_request_error(
        text, sizeof(text) - 1, &limits,
        "Protocol error: bulk length 2097152 exceeds limit 1048576 "
        "(max-value-size)",
        -COHORT_ETOOBIG);
    /* Exactly at the limit is fine. */
    struct resp_limits small = {
        .arg_count_max = 8, .bulk_size_max = 4, .inline_size_max = 64};
    struct request_out out;
    free(parse_request("*1\r\n$4\r\nabcd\r\n", 14, &small, ARGV_MAX, &out));
    assert_int_equal(out.result, RESP_COMPLETE);
    expect_request_error("*1\r\n$5\r\nabcde\r\n", 15, &small,
                         "Protocol error: bulk length 5 exceeds limit 4 "
                         "(max-value-size)",
                         -COHORT_ETOOBIG);
    expect_request_error("ECHO abcde\r\n", 12, &small,
                         "Protocol error: inline argument of 5 bytes exceeds "
                         "limit 4 (max-value-size)",
                         -COHORT_ETOOBIG);
}

static void refused_bulk_says_where_the_rest_of_the_command_is(void **state)
{
    (void)state;
    /* SET k <2 MiB> EX: the value's bytes begin right after its header, and
     * one argument follows it; a caller can skip them and go on. */
    const char text[] = "*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$2097152\r\nxx";
    struct request_out out;
    char *buf = parse_request(text, sizeof(text) - 1, &limits, ARGV_MAX, &out);
    assert_int_equal(out.result, RESP_ERROR);
    assert_int_equal(out.req.bulk_size_refused, 2097152);
    assert_int_equal(out.req.bulk_refused_at, sizeof(text) - 1 - 2);
    assert_int_equal(out.req.bulk_refused_args_after, 1);
    free(buf);
    /* Other errors leave the fields at zero. */
    buf = parse_request("*1\r\n$abc\r\n", 11, &limits, ARGV_MAX, &out);
    assert_int_equal(out.result, RESP_ERROR);
    assert_int_equal(out.req.bulk_size_refused, 0);
    assert_int_equal(out.req.bulk_refused_args_after, 0);
    free(buf);
}

static void too_many_arguments_is_an_error(void **state)
{
    (void)state;
    expect_request_error("*1025\r\n", 7, &limits,
                         "Protocol error: multibulk length 1025 exceeds limit "
                         "1024 (max-arguments)",
                         -COHORT_ETOOBIG);
    struct resp_limits small = {
        .arg_count_max = 2, .bulk_size_max = 64, .inline_size_max = 64};
    expect_request_error("SET k v\r\n", 9, &small,
                         "Protocol error: inline argument count exceeds "
                         "limit 2 (max-arguments)",
                         -COHORT_ETOOBIG);
    struct request_out out;
    free(parse_request("GET k\r\n", 7, &small, ARGV_MAX, &out));
    assert_int_equal(out.result, RESP_COMPLETE);
}

static void too_big_inline_request_is_an_error(void **state)
{
    (void)state;
    struct resp_limits small = {
        .arg_count_max = 8, .bulk_size_max = 64, .inline_size_max = 8};
    struct request_out out;
    /* Eight bytes and no LF yet: it may still end in time. */
    free(parse_request("ECHO abc", 8, &small, ARGV_MAX, &out));
    assert_int_equal(out.result, RESP_NEED_MORE);
    free(parse_request("ECHO abc\n", 9, &small, ARGV_MAX, &out));
    assert_int_equal(out.result, RESP_COMPLETE);
    const char *message = "Protocol error: too big inline request, exceeds "
                          "limit 8 (max-inline-size)";
    expect_request_error("ECHO abcd", 9, &small, message, -COHORT_ETOOBIG);
    expect_request_error("ECHO abcd\r\n", 11, &small, message, -COHORT_ETOOBIG);
}

static void negative_and_overflowing_lengths_are_errors(void **state)
{
    (void)state;
    const char *mbulk = "Protocol error: invalid multibulk length";
    const char *bulk = "Protocol error: invalid bulk length";
    REQUEST_ERROR("*-2\r\n", mbulk);
    REQUEST_ERROR("*-9223372036854775808\r\n", mbulk);
    REQUEST_ERROR("*9223372036854775808\r\n", mbulk);
    REQUEST_ERROR("*99999999999999999999\r\n", mbulk);
    REQUEST_ERROR("*123456789012345678901234567890", mbulk);
    REQUEST_ERROR("*+1\r\n", mbulk);
    REQUEST_ERROR("*01\r\n", mbulk);
    REQUEST_ERROR("*\r\n", mbulk);
    REQUEST_ERROR("*-\r\n", mbulk);
    REQUEST_ERROR("*1\r\n$-1\r\n", bulk);
    REQUEST_ERROR("*1\r\n$-5\r\n", bulk);
    REQUEST_ERROR("*1\r\n$18446744073709551616\r\n", bulk);
    expect_request_error("*1\r\n$9223372036854775807\r\n", 26, &limits,
                         "Protocol error: bulk length 9223372036854775807 "
                         "exceeds limit 1048576 (max-value-size)",
                         -COHORT_ETOOBIG);
    REQUEST_ERROR("*1\r\n$ 4\r\n", bulk);
    /* Except where Redis takes them: "*0" and "*-1" are empty commands. */
    const char *empties[] = {"*0\r\n", "*-1\r\n", "\r\n", " \t \n"};
    for (size_t i = 0; i < 4; i++) {
        struct request_out out;
        free(parse_request(empties[i], strlen(empties[i]), &limits, ARGV_MAX,
                           &out));
        assert_int_equal(out.result, RESP_COMPLETE);
        assert_int_equal(out.req.argc, 0);
        assert_int_equal(out.req.consumed, strlen(empties[i]));
    }
}

static void missing_crlf_is_an_error(void **state)
{
    (void)state;
    const char *after_bulk = "Protocol error: missing CRLF after bulk string";
    REQUEST_ERROR("*1\r\n$4\r\nPINGxx", after_bulk);
    /* A wrong byte is an error as soon as it arrives. */
    REQUEST_ERROR("*1\r\n$4\r\nPINGx", after_bulk);
    REQUEST_ERROR("*1\r\n$4\r\nPING\rx", after_bulk);
    REQUEST_ERROR("*1\r\n$4\r\nPING\n\r", after_bulk);
    REQUEST_ERROR("*1\n$4\n", "Protocol error: invalid multibulk length");
    REQUEST_ERROR("*1\rx", "Protocol error: invalid multibulk length");
    REQUEST_ERROR("*1\r\n$4\nPING\n", "Protocol error: invalid bulk length");
}

static void unexpected_byte_is_an_error_naming_it(void **state)
{
    (void)state;
    REQUEST_ERROR("*1\r\nPING\r\n", "Protocol error: expected '$', got 'P'");
    expect_request_error("*1\r\n\0", 5, &limits,
                         "Protocol error: expected '$', got '\\x00'",
                         -COHORT_EPROTO);
    REQUEST_ERROR("*2\r\n$1\r\na\r\n:1\r\n",
                  "Protocol error: expected '$', got ':'");
}

static void more_arguments_than_argv_holds_asks_for_space(void **state)
{
    (void)state;
    const char text[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n";
    size_t size = sizeof(text) - 1;
    struct request_out out;
    /* Asked only once the whole command is here. */
    free(parse_request(text, size - 1, &limits, 2, &out));
    assert_int_equal(out.result, RESP_NEED_MORE);
    free(parse_request(text, size, &limits, 2, &out));
    assert_int_equal(out.result, RESP_NEED_SPACE);
    assert_int_equal(out.req.argc, 3);
    assert_int_equal(out.req.consumed, 0);
    free(parse_request(text, size, &limits, 3, &out));
    assert_int_equal(out.result, RESP_COMPLETE);

    /* Inline: nothing is unescaped until argv is big enough. */
    const char line[] = "SET \"a\\x41\" v\r\n";
    char *buf = parse_request(line, sizeof(line) - 1, &limits, 2, &out);
    assert_int_equal(out.result, RESP_NEED_SPACE);
    assert_int_equal(out.req.argc, 3);
    assert_memory_equal(buf, line, sizeof(line) - 1);
    free(buf);
}

/* ------------------------------------------------------------------------ */
/* Writer.                                                                  */

static void assert_buf(struct resp_buf *b, const char *expected)
{
    assert_true(b->ok);
    assert_int_equal(b->size, strlen(expected));
    assert_memory_equal(b->data, expected, b->size);
    resp_buf_consume(b, b->size);
}

static void write_every_type(struct resp_buf *b)
{
    resp_write_simple(b, "OK");
    resp_write_error(b, "ERR no such key");
    resp_write_integer(b, -42);
    resp_write_bulk(b, "v\r\n", 3);
    resp_write_null(b);
    resp_write_null_array(b);
    resp_write_array(b, 2);
    resp_write_map(b, 2);
    resp_write_set(b, 1);
    resp_write_push(b, 3);
    resp_write_double(b, 1.5);
    resp_write_boolean(b, true);
    resp_write_boolean(b, false);
    resp_write_verbatim(b, "txt", "hi", 2);
}

static void writer_renders_each_type_in_resp2_and_resp3(void **state)
{
    (void)state;
    struct resp_buf b;
    resp_buf_init(&b, 2);
    write_every_type(&b);
    assert_buf(&b, "+OK\r\n-ERR no such key\r\n:-42\r\n$3\r\nv\r\n\r\n"
                   "$-1\r\n*-1\r\n*2\r\n*4\r\n*1\r\n*3\r\n$3\r\n1.5\r\n"
                   ":1\r\n:0\r\n$2\r\nhi\r\n");
    b.proto = 3;
    write_every_type(&b);
    assert_buf(&b, "+OK\r\n-ERR no such key\r\n:-42\r\n$3\r\nv\r\n\r\n"
                   "_\r\n_\r\n*2\r\n%2\r\n~1\r\n>3\r\n,1.5\r\n"
                   "#t\r\n#f\r\n=6\r\ntxt:hi\r\n");
    resp_write_integer(&b, INT64_MIN);
    assert_buf(&b, ":-9223372036854775808\r\n");
    resp_write_bulk(&b, "", 0);
    assert_buf(&b, "$0\r\n\r\n");
    resp_write_errorf(&b, "ERR value is %d bytes; limit is %d (%s)", 2097152,
                      1048576, "max-value-size");
    assert_buf(&b, "-ERR value is 2097152 bytes; limit is 1048576 "
                   "(max-value-size)\r\n");
    struct resp_arg argv[] = {{"SET", 3}, {"k", 1}, {"", 0}};
    resp_write_command(&b, 3, argv);
    assert_buf(&b, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    resp_buf_deinit(&b);
}

static void writer_keeps_status_and_error_lines_on_one_line(void **state)
{
    (void)state;
    struct resp_buf b;
    resp_buf_init(&b, 3);
    resp_write_simple(&b, "two\r\nlines");
    resp_write_error(&b, "ERR bad\nthing");
    resp_write_errorf(&b, "ERR %s", "a\r\nb");
    assert_buf(&b, "+two  lines\r\n-ERR bad thing\r\n-ERR a  b\r\n");
    resp_buf_deinit(&b);
}

static void doubles_are_written_as_the_shortest_exact_text(void **state)
{
    (void)state;
    struct resp_buf b;
    resp_buf_init(&b, 3);
    const double values[] = {0.1,           1.0,       -2.5,  1e300,
                             123456789.125, 1.0 / 3.0, 5e-324};
    const char *texts[] = {",0.1\r\n",           ",1\r\n",
                           ",-2.5\r\n",          ",1e+300\r\n",
                           ",123456789.125\r\n", ",0.3333333333333333\r\n",
                           ",5e-324\r\n"};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        resp_write_double(&b, values[i]);
        assert_buf(&b, texts[i]);
    }
    resp_write_double(&b, 1.0 / 0.0);
    resp_write_double(&b, -1.0 / 0.0);
    resp_write_double(&b, 0.0 / 0.0);
    assert_buf(&b, ",inf\r\n,-inf\r\n,nan\r\n");
    b.proto = 2;
    resp_write_double(&b, -1.0 / 0.0);
    assert_buf(&b, "$4\r\n-inf\r\n");
    resp_buf_deinit(&b);
}

static void writer_grows_and_consumes(void **state)
{
    (void)state;
    struct resp_buf b;
    resp_buf_init(&b, 2);
    size_t big = 300000;
    char *value = malloc(big);
    assert_non_null(value);
    memset(value, 'x', big);
    resp_write_simple(&b, "PONG");
    resp_write_bulk(&b, value, big);
    assert_true(b.ok);
    assert_int_equal(b.size, 7 + 9 + big + 2);
    resp_buf_consume(&b, 7);
    assert_memory_equal(b.data, "$300000\r\nxxx", 12);
    resp_buf_consume(&b, b.size);
    assert_int_equal(b.size, 0);
    free(value);
    resp_buf_deinit(&b);
}

static void writer_failure_is_sticky(void **state)
{
    (void)state;
    struct resp_buf b;
    resp_buf_init(&b, 2);
    resp_write_simple(&b, "OK");
    /* A size that cannot be had fails the write and every later one. */
    resp_write_raw(&b, "", SIZE_MAX);
    assert_false(b.ok);
    resp_write_integer(&b, 1);
    assert_false(b.ok);
    assert_int_equal(b.size, 5);
    assert_memory_equal(b.data, "+OK\r\n", 5);
    resp_buf_deinit(&b);
}

/* ------------------------------------------------------------------------ */
/* Reply parser.                                                            */

struct reply_out {
    enum resp_result result;
    struct resp_reply reply;
    struct resp_node nodes[NODES_MAX];
    struct cohort_err err;
};

static char *parse_reply(const char *data, size_t size,
                         const struct resp_reply_limits *lim, uint32_t capacity,
                         struct reply_out *out)
{
    char *buf = copy_of(data, size);
    memset(out, 0, sizeof(*out));
    out->reply.nodes = out->nodes;
    out->reply.node_capacity = capacity;
    out->result = resp_reply_parse(buf, size, lim, &out->reply, &out->err);
    return buf;
}

static void assert_node_str(const struct resp_node *n, enum resp_type type,
                            const char *text)
{
    assert_int_equal(n->type, type);
    assert_int_equal(n->len, strlen(text));
    assert_memory_equal(n->str, text, n->len);
}

static void reply_parser_round_trips_writer_output(void **state)
{
    (void)state;
    for (int proto = 2; proto <= 3; proto++) {
        struct resp_buf b;
        resp_buf_init(&b, proto);
        resp_write_map(&b, 2);
        resp_write_bulk(&b, "name", 4);
        resp_write_bulk(&b, "cohort", 6);
        resp_write_bulk(&b, "members", 7);
        resp_write_array(&b, 4);
        resp_write_integer(&b, 7);
        resp_write_double(&b, 2.5);
        resp_write_boolean(&b, true);
        resp_write_null(&b);
        resp_write_simple(&b, "OK"); /* a second reply, pipelined */
        assert_true(b.ok);

        struct reply_out out;
        char *buf = parse_reply(b.data, b.size, &reply_limits, NODES_MAX, &out);
        assert_int_equal(out.result, RESP_COMPLETE);
        assert_int_equal(out.reply.node_count, 9);
        const struct resp_node *n = out.nodes;
        assert_int_equal(n[0].type,
                         proto == 3 ? RESP_TYPE_MAP : RESP_TYPE_ARRAY);
        assert_int_equal(resp_node_children(&n[0]), 4);
        assert_int_equal(n[0].next, 9);
        assert_node_str(&n[1], RESP_TYPE_BULK, "name");
        assert_node_str(&n[2], RESP_TYPE_BULK, "cohort");
        assert_node_str(&n[3], RESP_TYPE_BULK, "members");
        assert_int_equal(n[1].next, 2);
        assert_int_equal(n[4].type, RESP_TYPE_ARRAY);
        assert_int_equal(n[4].len, 4);
        assert_int_equal(n[4].next, 9);
        assert_int_equal(n[5].type, RESP_TYPE_INTEGER);
        assert_int_equal(n[5].integer, 7);
        if (proto == 3) {
            assert_int_equal(n[6].type, RESP_TYPE_DOUBLE);
            assert_true(n[6].dbl == 2.5);
            assert_int_equal(n[7].type, RESP_TYPE_BOOLEAN);
        } else {
            assert_node_str(&n[6], RESP_TYPE_BULK, "2.5");
            assert_int_equal(n[7].type, RESP_TYPE_INTEGER);
        }
        assert_int_equal(n[7].integer, 1);
        assert_int_equal(n[8].type, RESP_TYPE_NULL);

        size_t first = out.reply.consumed;
        assert_int_equal(first, b.size - 5);
        free(buf);
        buf = parse_reply(b.data + first, b.size - first, &reply_limits,
                          NODES_MAX, &out);
        assert_int_equal(out.result, RESP_COMPLETE);
        assert_node_str(&out.nodes[0], RESP_TYPE_SIMPLE, "OK");
        free(buf);
        resp_buf_deinit(&b);
    }
}

static void reply_parser_reads_every_resp3_type(void **state)
{
    (void)state;
    const char text[] = "*12\r\n"
                        "+OK\r\n"
                        "-ERR bad\r\n"
                        ":-12\r\n"
                        "$0\r\n\r\n"
                        "_\r\n"
                        ",-inf\r\n"
                        "#f\r\n"
                        "!9\r\nSYNTAX no\r\n"
                        "=8\r\nmkd:# hi\r\n"
                        "(-3492890328409238509324850943850943825024385\r\n"
                        "~1\r\n$-1\r\n"
                        "|1\r\n+ttl\r\n:3600\r\n" /* skipped */
                        ">2\r\n+message\r\n*-1\r\n";
    struct reply_out out;
    char *buf =
        parse_reply(text, sizeof(text) - 1, &reply_limits, NODES_MAX, &out);
    assert_int_equal(out.result, RESP_COMPLETE);
    assert_int_equal(out.reply.consumed, sizeof(text) - 1);
    assert_int_equal(out.reply.node_count, 16);
    const struct resp_node *n = out.nodes;
    assert_int_equal(n[0].next, 16);
    assert_node_str(&n[1], RESP_TYPE_SIMPLE, "OK");
    assert_node_str(&n[2], RESP_TYPE_ERROR, "ERR bad");
    assert_int_equal(n[3].integer, -12);
    assert_node_str(&n[4], RESP_TYPE_BULK, "");
    assert_int_equal(n[5].type, RESP_TYPE_NULL);
    assert_int_equal(n[6].type, RESP_TYPE_DOUBLE);
    assert_true(n[6].dbl < -1e308);
    assert_int_equal(n[7].type, RESP_TYPE_BOOLEAN);
    assert_int_equal(n[7].integer, 0);
    assert_node_str(&n[8], RESP_TYPE_BLOB_ERROR, "SYNTAX no");
    assert_node_str(&n[9], RESP_TYPE_VERBATIM, "# hi");
    assert_string_equal(n[9].format, "mkd");
    assert_node_str(&n[10], RESP_TYPE_BIG_NUMBER,
                    "-3492890328409238509324850943850943825024385");
    assert_int_equal(n[11].type, RESP_TYPE_SET);
    assert_int_equal(n[11].next, 13);
    assert_int_equal(n[12].type, RESP_TYPE_NULL);
    assert_int_equal(n[13].type, RESP_TYPE_PUSH);
    assert_int_equal(n[13].next, 16);
    assert_node_str(&n[14], RESP_TYPE_SIMPLE, "message");
    assert_int_equal(n[15].type, RESP_TYPE_NULL);
    free(buf);
}

static void reply_parser_needs_more_on_every_proper_prefix(void **state)
{
    (void)state;
    const char text[] = "%2\r\n+a\r\n*2\r\n:1\r\n$3\r\nxyz\r\n"
                        "|1\r\n+k\r\n+v\r\n=7\r\ntxt:abc\r\n:5\r\n";
    size_t size = sizeof(text) - 1;
    struct reply_out whole;
    free(parse_reply(text, size, &reply_limits, NODES_MAX, &whole));
    assert_int_equal(whole.result, RESP_COMPLETE);
    for (size_t cut = 0; cut < size; cut++) {
        struct reply_out out;
        free(parse_reply(text, cut, &reply_limits, NODES_MAX, &out));
        assert_int_equal(out.result, RESP_NEED_MORE);
        assert_int_equal(out.reply.consumed, 0);
        assert_true(out.reply.size_wanted > cut);
        assert_true(out.reply.size_wanted <= size);
    }
}

static void reply_parser_rejects_excessive_nesting(void **state)
{
    (void)state;
    struct resp_reply_limits lim = reply_limits;
    char text[4 * (RESP_DEPTH_LIMIT + 1) + 8];
    size_t size = 0;
    for (int i = 0; i < RESP_DEPTH_LIMIT; i++)
        size += (size_t)snprintf(text + size, sizeof(text) - size, "*1\r\n");
    size += (size_t)snprintf(text + size, sizeof(text) - size, ":1\r\n");
    struct reply_out out;
    free(parse_reply(text, size, &lim, NODES_MAX, &out));
    assert_int_equal(out.result, RESP_NEED_SPACE);
    assert_int_equal(out.reply.node_count, RESP_DEPTH_LIMIT + 1);

    /* One level deeper than allowed: an error as soon as the header is in. */
    lim.depth_max = RESP_DEPTH_LIMIT - 1;
    free(parse_reply(text, 4 * RESP_DEPTH_LIMIT, &lim, NODES_MAX, &out));
    assert_int_equal(out.result, RESP_ERROR);
    assert_string_equal(out.err.message,
                        "Protocol error: nesting depth exceeds limit 63");
    assert_int_equal(out.err.code, -COHORT_ETOOBIG);
    lim.depth_max = 2;
    free(parse_reply("*1\r\n*0\r\n", 8, &lim, NODES_MAX, &out));
    assert_int_equal(out.result, RESP_COMPLETE);
    free(parse_reply("*1\r\n*1\r\n*0\r\n", 12, &lim, NODES_MAX, &out));
    assert_int_equal(out.result, RESP_ERROR);
    /* Attributes nest too. */
    free(parse_reply("|1\r\n*1\r\n%0\r\n", 12, &lim, NODES_MAX, &out));
    assert_int_equal(out.result, RESP_ERROR);
}

static void reply_parser_rejects_malformed_replies(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *message;
    } cases[] = {
        {"?x\r\n", "unknown reply type '?'"},
        {":abc\r\n", "invalid integer"},
        {":1.5\r\n", "invalid integer"},
        {":99999999999999999999\r\n", "invalid integer"},
        {"#x\r\n", "invalid boolean"},
        {"#tt\r\n", "invalid boolean"},
        {"_x\r\n", "invalid null"},
        {",abc\r\n", "invalid double"},
        {", 1\r\n", "invalid double"},
        {"(12a\r\n", "invalid big number"},
        {"(-\r\n", "invalid big number"},
        {"$-2\r\n", "invalid bulk length"},
        {"!-1\r\n", "invalid bulk length"},
        {"$3\r\nabcd\r\n", "missing CRLF after bulk string"},
        {"=3\r\nabc\r\n", "invalid verbatim string"},
        {"=4\r\ntxt-\r\n", "invalid verbatim string"},
        {"*-2\r\n", "invalid multibulk length"},
        {"%-1\r\n", "invalid multibulk length"},
        {"*1\n", "invalid multibulk length"},
        {"$?\r\n", "invalid bulk length"},
        {"+a\nb\r\n", "missing CRLF after reply line"},
        {"+a\rb\r\n", "missing CRLF after reply line"},
        {"*2\r\n:1\r\n\x01", "unknown reply type '\\x01'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct reply_out out;
        char expected[128];
        snprintf(expected, sizeof(expected), "Protocol error: %s",
                 cases[i].message);
        free(parse_reply(cases[i].text, strlen(cases[i].text), &reply_limits,
                         NODES_MAX, &out));
        assert_int_equal(out.result, RESP_ERROR);
        assert_string_equal(out.err.message, expected);
        assert_int_equal(out.err.code, -COHORT_EPROTO);
    }
}

static void reply_limits_are_errors_not_truncations(void **state)
{
    (void)state;
    struct resp_reply_limits lim = {
        .depth_max = 4, .bulk_size_max = 4, .element_count_max = 3};
    struct reply_out out;
    free(parse_reply("$4\r\nabcd\r\n", 10, &lim, NODES_MAX, &out));
    assert_int_equal(out.result, RESP_COMPLETE);
    free(parse_reply("$5\r\n", 4, &lim, NODES_MAX, &out));
    assert_int_equal(out.result, RESP_ERROR);
    assert_string_equal(out.err.message,
                        "Protocol error: bulk length 5 exceeds limit 4");
    free(parse_reply("+abcde", 6, &lim, NODES_MAX, &out));
    assert_int_equal(out.result, RESP_ERROR);
    assert_int_equal(out.err.code, -COHORT_ETOOBIG);
    free(parse_reply("*4\r\n", 4, &lim, NODES_MAX, &out));
    assert_int_equal(out.result, RESP_ERROR);
    assert_string_equal(out.err.message,
                        "Protocol error: aggregate length 4 exceeds limit 3");
}

static void reply_parser_asks_for_space_for_a_large_tree(void **state)
{
    (void)state;
    const char text[] = "*3\r\n:1\r\n:2\r\n:3\r\n";
    struct reply_out out;
    free(parse_reply(text, sizeof(text) - 2, &reply_limits, 2, &out));
    assert_int_equal(out.result, RESP_NEED_MORE);
    free(parse_reply(text, sizeof(text) - 1, &reply_limits, 2, &out));
    assert_int_equal(out.result, RESP_NEED_SPACE);
    assert_int_equal(out.reply.node_count, 4);
    assert_int_equal(out.reply.consumed, 0);
    free(parse_reply(text, sizeof(text) - 1, &reply_limits, 0, &out));
    assert_int_equal(out.result, RESP_NEED_SPACE);
    free(parse_reply(text, sizeof(text) - 1, &reply_limits, 4, &out));
    assert_int_equal(out.result, RESP_COMPLETE);
    assert_int_equal(out.nodes[3].integer, 3);
}

static void commands_written_by_the_client_parse_back(void **state)
{
    (void)state;
    struct resp_arg argv[] = {{"SET", 3}, {"k\r\n", 3}, {"\0\1", 2}};
    struct resp_buf b;
    resp_buf_init(&b, 3);
    resp_write_command(&b, 3, argv);
    struct request_out out;
    char *buf = parse_request(b.data, b.size, &limits, ARGV_MAX, &out);
    assert_int_equal(out.result, RESP_COMPLETE);
    assert_int_equal(out.req.consumed, b.size);
    assert_int_equal(out.req.argc, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(out.argv[i].size, argv[i].size);
        assert_memory_equal(out.argv[i].ptr, argv[i].ptr, argv[i].size);
    }
    free(buf);
    resp_buf_deinit(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shown_bytes_are_escaped_and_bounded),
        cmocka_unit_test(parses_pipelined_commands_one_at_a_time),
        cmocka_unit_test(partial_command_needs_more_and_consumes_nothing),
        cmocka_unit_test(every_split_point_gives_the_same_parse),
        cmocka_unit_test(inline_command_splits_on_whitespace),
        cmocka_unit_test(inline_quotes_follow_redis_rules),
        cmocka_unit_test(bulk_over_limit_is_an_error_naming_the_limit),
        cmocka_unit_test(refused_bulk_says_where_the_rest_of_the_command_is),
        cmocka_unit_test(too_many_arguments_is_an_error),
        cmocka_unit_test(too_big_inline_request_is_an_error),
        cmocka_unit_test(negative_and_overflowing_lengths_are_errors),
        cmocka_unit_test(missing_crlf_is_an_error),
        cmocka_unit_test(unexpected_byte_is_an_error_naming_it),
        cmocka_unit_test(more_arguments_than_argv_holds_asks_for_space),
        cmocka_unit_test(writer_renders_each_type_in_resp2_and_resp3),
        cmocka_unit_test(writer_keeps_status_and_error_lines_on_one_line),
        cmocka_unit_test(doubles_are_written_as_the_shortest_exact_text),
        cmocka_unit_test(writer_grows_and_consumes),
        cmocka_unit_test(writer_failure_is_sticky),
        cmocka_unit_test(reply_parser_round_trips_writer_output),
        cmocka_unit_test(reply_parser_reads_every_resp3_type),
        cmocka_unit_test(reply_parser_needs_more_on_every_proper_prefix),
        cmocka_unit_test(reply_parser_rejects_excessive_nesting),
        cmocka_unit_test(reply_parser_rejects_malformed_replies),
        cmocka_unit_test(reply_limits_are_errors_not_truncations),
        cmocka_unit_test(reply_parser_asks_for_space_for_a_large_tree),
        cmocka_unit_test(commands_written_by_the_client_parse_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
