/* hostport (src/common/hostport.c): "host:port" text split into host and
 * port, the parser shared by the server, the tools and the client library;
 * and client_addr_split(), the client's stricter use of it (port 1..65535).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "client/conn.h"
#include "common/hostport.h"

static void accepted_forms(void **s)
{
    (void)s;
    static const struct {
        const char *text, *host;
        uint16_t port;
    } good[] = {
        {"127.0.0.1:7101", "127.0.0.1", 7101},
        {"[::1]:7101", "::1", 7101},
        {"[fe80::1%eth0]:1", "fe80::1%eth0", 1},
        {"localhost:65535", "localhost", 65535},
        {"h:0", "h", 0},
        {"h:00080", "h", 80},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char host[64];
        uint16_t port = 1234;
        struct cohort_err err = {0};
        assert_int_equal(
            addr_split(good[i].text, host, sizeof(host), &port, &err), 0);
        assert_string_equal(host, good[i].host);
        assert_int_equal(port, good[i].port);
    }
}

/* Each refusal is one line that quotes the text and names the fix. */
static void refusals_say_why(void **s)
{
    (void)s;
    static const struct {
        const char *text, *says;
    } bad[] = {
        {"7101", "has no port"},         {"localhost", "has no port"},
        {":7101", "has no host"},        {"[]:7101", "has no host"},
        {"::1:7101", "[addr]:port"},     {"[::1:7101", "[addr]:port"},
        {"h:", "is not a number"},       {"h:65536", "is not a number"},
        {"h:123456", "is not a number"}, {"h:-1", "is not a number"},
        {"h:80x", "is not a number"},    {"h: 80", "is not a number"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char host[64];
        uint16_t port = 0;
        struct cohort_err err = {0};
        assert_int_equal(
            addr_split(bad[i].text, host, sizeof(host), &port, &err),
            -COHORT_ECONFIG);
        assert_non_null(strstr(err.message, bad[i].says));
        assert_non_null(strstr(err.message, bad[i].text));
        assert_null(strchr(err.message, '\n'));
        /* Without an err to fill, the same answer. */
        assert_int_equal(
            addr_split(bad[i].text, host, sizeof(host), &port, NULL),
            -COHORT_ECONFIG);
    }
    /* A host that does not fit the buffer. */
    char small[4];
    uint16_t port;
    assert_int_equal(addr_split("abcd:1", small, sizeof(small), &port, NULL),
                     -COHORT_ECONFIG);
    assert_int_equal(addr_split("abc:1", small, sizeof(small), &port, NULL), 0);
}

/* The client dials, so port 0 is refused too. */
static void the_client_refuses_port_zero(void **s)
{
    (void)s;
    char host[64];
    uint16_t port = 0;
    assert_true(client_addr_split("[::1]:7001", host, sizeof(host), &port));
    assert_string_equal(host, "::1");
    assert_int_equal(port, 7001);
    assert_true(client_addr_split("h:1", host, sizeof(host), NULL));
    assert_false(client_addr_split("h:0", host, sizeof(host), &port));
    assert_false(client_addr_split("h:99999", host, sizeof(host), &port));
    assert_false(client_addr_split("::1:7001", host, sizeof(host), &port));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepted_forms),
        cmocka_unit_test(refusals_say_why),
        cmocka_unit_test(the_client_refuses_port_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
