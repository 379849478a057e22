/* Tests of bench/request: the requests the load generator sends parse as
 * the commands they mean (with the server's own request parser), and
 * replies are classified as the engine needs (retry vs error vs ok). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench/request.h"

static const struct resp_limits limits = {16, 1u << 30, 1u << 16};

/* Header + value + CRLF as the engine sends them, parsed back. */
static void parse_request(enum bench_op op, uint64_t key, size_t value_size,
                          struct resp_arg *argv, uint32_t *argc, char **wire)
{
    char header[BENCH_HEADER_MAX];
    size_t n = bench_request_header(header, op, key, value_size);
    assert_true(n > 0 && n <= BENCH_HEADER_MAX);
    size_t size = n + (bench_op_has_value(op) ? value_size + 2 : 0);
    char *buf = malloc(size + 1);
    memcpy(buf, header, n);
    if (bench_op_has_value(op)) {
        memset(buf + n, 'v', value_size);
        memcpy(buf + n + value_size, "\r\n", 2);
    }
    struct resp_request req = {.argv = argv, .arg_capacity = 4};
    struct cohort_err err;
    assert_int_equal(resp_request_parse(buf, size, &limits, &req, &err),
                     RESP_COMPLETE);
    assert_int_equal(req.consumed, size);
    assert_false(req.is_inline);
    *argc = req.argc;
    *wire = buf;
}

static void set_parses_as_set_key_value(void **state)
{
    (void)state;
    const size_t sizes[] = {0, 1, 100, 65536, 1048576};
    const uint64_t keys[] = {0, 9, 10, 12345, UINT64_MAX};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
            struct resp_arg argv[4];
            uint32_t argc = 0;
            char *wire = NULL;
            parse_request(BENCH_OP_SET, keys[k], sizes[s], argv, &argc, &wire);
            assert_int_equal(argc, 3);
            assert_int_equal(argv[0].size, 3);
            assert_memory_equal(argv[0].ptr, "SET", 3);
            char key[32];
            snprintf(key, sizeof(key), "k%llu", (unsigned long long)keys[k]);
            assert_int_equal(argv[1].size, strlen(key));
            assert_memory_equal(argv[1].ptr, key, strlen(key));
            assert_int_equal(argv[2].size, sizes[s]);
            free(wire);
        }
    }
}

static void get_readonly_and_ping_parse(void **state)
{
    (void)state;
    struct resp_arg argv[4];
    uint32_t argc = 0;
    char *wire = NULL;
    parse_request(BENCH_OP_GET, 777, 100, argv, &argc, &wire);
    assert_int_equal(argc, 2);
    assert_memory_equal(argv[0].ptr, "GET", 3);
    assert_memory_equal(argv[1].ptr, "k777", 4);
    free(wire);
    parse_request(BENCH_OP_READONLY, 0, 0, argv, &argc, &wire);
    assert_int_equal(argc, 1);
    assert_memory_equal(argv[0].ptr, "READONLY", 8);
    free(wire);
    parse_request(BENCH_OP_PING, 0, 0, argv, &argc, &wire);
    assert_int_equal(argc, 1);
    assert_memory_equal(argv[0].ptr, "PING", 4);
    free(wire);
}

static enum bench_reply classify(enum bench_op op, const char *wire)
{
    static const struct resp_reply_limits rl = {8, 1u << 20, 1024};
    struct resp_node nodes[8];
    struct resp_reply reply = {.nodes = nodes, .node_capacity = 8};
    struct cohort_err err;
    assert_int_equal(resp_reply_parse(wire, strlen(wire), &rl, &reply, &err),
                     RESP_COMPLETE);
    return bench_reply_classify(op, &nodes[0]);
}

static void replies_are_classified(void **state)
{
    (void)state;
    assert_int_equal(classify(BENCH_OP_SET, "+OK\r\n"), BENCH_REPLY_OK);
    assert_int_equal(classify(BENCH_OP_GET, "$3\r\nabc\r\n"), BENCH_REPLY_OK);
    assert_int_equal(classify(BENCH_OP_GET, "$-1\r\n"), BENCH_REPLY_OK);
    assert_int_equal(classify(BENCH_OP_READONLY, "+OK\r\n"), BENCH_REPLY_OK);
    assert_int_equal(classify(BENCH_OP_PING, "+PONG\r\n"), BENCH_REPLY_OK);
    assert_int_equal(classify(BENCH_OP_SET, "-TRYAGAIN view change\r\n"),
                     BENCH_REPLY_RETRY);
    assert_int_equal(classify(BENCH_OP_GET, "-MOVED 12 10.0.0.1:7001\r\n"),
                     BENCH_REPLY_RETRY);
    assert_int_equal(classify(BENCH_OP_SET, "-UNKNOWN maybe applied\r\n"),
                     BENCH_REPLY_RETRY);
    assert_int_equal(classify(BENCH_OP_SET, "-LOADING\r\n"), BENCH_REPLY_RETRY);
    assert_int_equal(classify(BENCH_OP_SET, "-ERR value is too big\r\n"),
                     BENCH_REPLY_ERROR);
    /* A word that merely starts like a retry word is not one. */
    assert_int_equal(classify(BENCH_OP_SET, "-TRYAGAINX no\r\n"),
                     BENCH_REPLY_ERROR);
    assert_int_equal(classify(BENCH_OP_SET, "+QUEUED\r\n"), BENCH_REPLY_WRONG);
    assert_int_equal(classify(BENCH_OP_GET, ":1\r\n"), BENCH_REPLY_WRONG);
    assert_int_equal(classify(BENCH_OP_PING, "+OK\r\n"), BENCH_REPLY_WRONG);
}

static void exec_parses_as_cohort_exec_of_five_incrs(void **state)
{
    (void)state;
    char header[BENCH_HEADER_MAX];
    size_t n = bench_request_header(header, BENCH_OP_EXEC, UINT64_MAX - 2, 0);
    assert_true(n <= BENCH_HEADER_MAX);
    assert_false(bench_op_has_value(BENCH_OP_EXEC));
    struct resp_arg argv[32];
    struct resp_limits big = {32, 1u << 20, 1u << 16};
    struct resp_request req = {.argv = argv, .arg_capacity = 32};
    struct cohort_err err;
    assert_int_equal(resp_request_parse(header, n, &big, &req, &err),
                     RESP_COMPLETE);
    assert_int_equal(req.consumed, n);
    assert_int_equal(req.argc, 18);
    assert_memory_equal(argv[0].ptr, "COHORT.EXEC", 11);
    assert_memory_equal(argv[2].ptr, "5", 1);
    /* The last key wraps around: k<2^64-1>, then k0 and k1. */
    assert_int_equal(argv[17].size, 2);
    assert_memory_equal(argv[17].ptr, "k1", 2);
    assert_memory_equal(argv[5].ptr, "k18446744073709551613", 21);
    assert_int_equal(
        classify(BENCH_OP_EXEC, "*5\r\n:1\r\n:1\r\n:1\r\n:1\r\n:1\r\n"),
        BENCH_REPLY_OK);
    assert_int_equal(classify(BENCH_OP_EXEC, "*-1\r\n"), BENCH_REPLY_WRONG);
}

/* PUBLISH: its header, the value after it, and a count for a reply. */
static void publish_is_a_channel_then_the_value(void **state)
{
    (void)state;
    char header[BENCH_HEADER_MAX];
    size_t n = bench_request_header(header, BENCH_OP_PUBLISH, 7, 3);
    assert_int_equal(n, strlen("*3\r\n$7\r\nPUBLISH\r\n$2\r\nk7\r\n$3\r\n"));
    assert_memory_equal(header, "*3\r\n$7\r\nPUBLISH\r\n$2\r\nk7\r\n$3\r\n", n);
    assert_true(bench_op_has_value(BENCH_OP_PUBLISH));
    assert_int_equal(classify(BENCH_OP_PUBLISH, ":100\r\n"), BENCH_REPLY_OK);
    assert_int_equal(classify(BENCH_OP_PUBLISH, "+OK\r\n"), BENCH_REPLY_WRONG);
    assert_int_equal(classify(BENCH_OP_EXEC, "-EXECABORT x\r\n"),
                     BENCH_REPLY_ERROR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(set_parses_as_set_key_value),
        cmocka_unit_test(get_readonly_and_ping_parse),
        cmocka_unit_test(replies_are_classified),
        cmocka_unit_test(exec_parses_as_cohort_exec_of_five_incrs),
        cmocka_unit_test(publish_is_a_channel_then_the_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
