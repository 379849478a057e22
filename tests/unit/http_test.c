/* Tests of runtime/http's request parser: what a GET looks like, and every
 * way a stranger's bytes are refused (the bounds on size and header count,
 * bodies, methods, versions, bad syntax) without reading past the buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/http.h"

static enum http_parse parse(const char *text, struct http_request *req)
{
    /* A heap copy of exactly the text's bytes: ASan sees any overread. */
    size_t n = strlen(text);
    char *copy = malloc(n ? n : 1);
    memcpy(copy, text, n);
    enum http_parse rc = http_request_parse(copy, n, req);
    free(copy);
    return rc;
}

static void a_get_gives_its_path_without_the_query(void **state)
{
    (void)state;
    struct http_request req;
    const char *text = "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n"
                       "Accept: */*\r\n\r\n";
    assert_int_equal(parse(text, &req), HTTP_PARSE_DONE);
    assert_int_equal(req.method, HTTP_GET);
    assert_string_equal(req.path, "/metrics");
    assert_int_equal(req.header_count, 2);
    assert_int_equal(req.head_size, strlen(text));
}

static void head_and_bare_lf_lines_and_http10_are_accepted(void **state)
{
    (void)state;
    struct http_request req;
    assert_int_equal(parse("HEAD / HTTP/1.0\n\n", &req), HTTP_PARSE_DONE);
    assert_int_equal(req.method, HTTP_HEAD);
    assert_string_equal(req.path, "/");
}

static void every_prefix_of_a_head_asks_for_more(void **state)
{
    (void)state;
    const char *text = "GET /status.json HTTP/1.1\r\nHost: x\r\n\r\n";
    struct http_request req;
    for (size_t n = 0; n < strlen(text); n++) {
        char *copy = malloc(n + 1);
        memcpy(copy, text, n);
        assert_int_equal(http_request_parse(copy, n, &req), HTTP_PARSE_MORE);
        free(copy);
    }
}

static void a_head_over_the_limit_is_too_big(void **state)
{
    (void)state;
    size_t n = HTTP_HEAD_MAX + 10;
    char *big = malloc(n);
    memset(big, 'a', n);
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    struct http_request req;
    assert_int_equal(http_request_parse(big, n, &req), HTTP_PARSE_TOO_BIG);
    /* Exactly at the limit without an end: no more will be read. */
    assert_int_equal(http_request_parse(big, HTTP_HEAD_MAX, &req),
                     HTTP_PARSE_TOO_BIG);
    assert_int_equal(http_request_parse(big, HTTP_HEAD_MAX - 1, &req),
                     HTTP_PARSE_MORE);
    free(big);
}

static void too_many_headers_are_too_big(void **state)
{
    (void)state;
    char text[4096] = "GET / HTTP/1.1\r\n";
    for (unsigned i = 0; i <= HTTP_HEADERS_MAX; i++)
        strcat(text, "A: b\r\n");
    strcat(text, "\r\n");
    struct http_request req;
    assert_int_equal(parse(text, &req), HTTP_PARSE_TOO_BIG);
}

static void bodies_and_transfer_encodings_are_refused(void **state)
{
    (void)state;
    struct http_request req;
    assert_int_equal(
        parse("GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", &req),
        HTTP_PARSE_BAD);
    assert_int_equal(
        parse("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &req),
        HTTP_PARSE_BAD);
    assert_int_equal(parse("GET / HTTP/1.1\r\ncontent-length: 0\r\n\r\n", &req),
                     HTTP_PARSE_DONE);
}

static void other_methods_and_versions_get_their_status(void **state)
{
    (void)state;
    struct http_request req;
    assert_int_equal(parse("POST / HTTP/1.1\r\n\r\n", &req), HTTP_PARSE_METHOD);
    assert_int_equal(parse("GET / HTTP/2.0\r\n\r\n", &req), HTTP_PARSE_VERSION);
    assert_int_equal(parse("GET / FOO/1.1\r\n\r\n", &req), HTTP_PARSE_BAD);
}

static void malformed_heads_are_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\r\n\r\n",
        "GET\r\n\r\n",
        "GET / \r\n\r\n",
        "GET  / HTTP/1.1\r\n\r\n",
        "GET http://x/ HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1 x\r\n\r\n",
        "G@T / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nNo colon\r\n\r\n",
        "GET / HTTP/1.1\r\n: empty name\r\n\r\n",
        "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
        "GET / HTTP/1.1\r\nA: b\x01\r\n\r\n",
        "GET /a\x7f HTTP/1.1\r\n\r\n",
    };
    struct http_request req;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (parse(bad[i], &req) != HTTP_PARSE_BAD)
            fail_msg("accepted: %s", bad[i]);
}

static void a_nul_byte_in_the_head_is_bad(void **state)
{
    (void)state;
    const char text[] = "GET / HTTP/1.1\r\nA: b\0c\r\n\r\n";
    struct http_request req;
    assert_int_equal(http_request_parse(text, sizeof(text) - 1, &req),
                     HTTP_PARSE_BAD);
}

static void a_path_too_long_to_serve_is_not_found(void **state)
{
    (void)state;
    char text[HTTP_PATH_MAX + 64] = "GET /";
    memset(text + 5, 'p', HTTP_PATH_MAX);
    strcpy(text + 5 + HTTP_PATH_MAX, " HTTP/1.1\r\n\r\n");
    struct http_request req;
    assert_int_equal(parse(text, &req), HTTP_PARSE_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_get_gives_its_path_without_the_query),
        cmocka_unit_test(head_and_bare_lf_lines_and_http10_are_accepted),
        cmocka_unit_test(every_prefix_of_a_head_asks_for_more),
        cmocka_unit_test(a_head_over_the_limit_is_too_big),
        cmocka_unit_test(too_many_headers_are_too_big),
        cmocka_unit_test(bodies_and_transfer_encodings_are_refused),
        cmocka_unit_test(other_methods_and_versions_get_their_status),
        cmocka_unit_test(malformed_heads_are_bad),
        cmocka_unit_test(a_nul_byte_in_the_head_is_bad),
        cmocka_unit_test(a_path_too_long_to_serve_is_not_found),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
