/* Connections per address: counts go up and down per address, IPv4-mapped
 * IPv6 counts as IPv4, unknown families are not counted, and the table
 * stays consistent through growth and many deletions (checked against a
 * plain array). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "server/addr_count.h"

static struct addr_key v4(uint32_t host_order)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(host_order);
    struct addr_key k;
    addr_key_from((const struct sockaddr *)&sa, &k);
    return k;
}

static void counts_per_address(void **state)
{
    (void)state;
    struct addr_counts t;
    addr_counts_init(&t);
    struct addr_key a = v4(0x7f000001), b = v4(0x7f000002);
    assert_int_equal(addr_counts_get(&t, &a), 0);
    assert_int_equal(addr_counts_add(&t, &a), 1);
    assert_int_equal(addr_counts_add(&t, &a), 2);
    assert_int_equal(addr_counts_add(&t, &b), 1);
    assert_int_equal(addr_counts_get(&t, &a), 2);
    addr_counts_remove(&t, &a);
    assert_int_equal(addr_counts_get(&t, &a), 1);
    addr_counts_remove(&t, &a);
    assert_int_equal(addr_counts_get(&t, &a), 0);
    assert_int_equal(t.used, 1);
    addr_counts_deinit(&t);
}

static void mapped_ipv6_is_ipv4_and_other_families_are_not_counted(void **s)
{
    (void)s;
    struct addr_counts t;
    addr_counts_init(&t);
    struct sockaddr_in6 sa6;
    memset(&sa6, 0, sizeof(sa6));
    sa6.sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, "::ffff:127.0.0.1", &sa6.sin6_addr),
                     1);
    struct addr_key mapped, plain = v4(0x7f000001);
    addr_key_from((const struct sockaddr *)&sa6, &mapped);
    assert_int_equal(addr_counts_add(&t, &plain), 1);
    assert_int_equal(addr_counts_add(&t, &mapped), 2);
    assert_int_equal(inet_pton(AF_INET6, "::1", &sa6.sin6_addr), 1);
    struct addr_key loop6;
    addr_key_from((const struct sockaddr *)&sa6, &loop6);
    assert_int_equal(addr_counts_add(&t, &loop6), 1);
    struct sockaddr unix_like = {.sa_family = AF_UNIX};
    struct addr_key none;
    addr_key_from(&unix_like, &none);
    assert_int_equal(addr_counts_add(&t, &none), 0);
    addr_counts_remove(&t, &none); /* not counted: nothing happens */
    assert_int_equal(t.used, 2);
    addr_counts_deinit(&t);
}

/* Many addresses, added and removed in a scrambled order, against a model. */
static void table_matches_a_model_through_growth_and_deletion(void **state)
{
    (void)state;
    enum { N = 3000 };
    static uint32_t model[N];
    memset(model, 0, sizeof(model));
    struct addr_counts t;
    addr_counts_init(&t);
    uint64_t x = 88172645463325252ull;
    for (int step = 0; step < 200000; step++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint32_t i = (uint32_t)(x % N);
        struct addr_key k = v4(0x0a000000u + i);
        if (model[i] > 0 && (x >> 32) % 3 == 0) {
            addr_counts_remove(&t, &k);
            model[i]--;
        } else {
            assert_int_equal(addr_counts_add(&t, &k), ++model[i]);
        }
    }
    uint32_t present = 0;
    for (uint32_t i = 0; i < N; i++) {
        struct addr_key k = v4(0x0a000000u + i);
        assert_int_equal(addr_counts_get(&t, &k), model[i]);
        present += model[i] > 0;
    }
    assert_int_equal(t.used, present);
    assert_true(t.used * 2 <= t.capacity);
    for (uint32_t i = 0; i < N; i++) {
        struct addr_key k = v4(0x0a000000u + i);
        while (model[i] > 0) {
            addr_counts_remove(&t, &k);
            model[i]--;
        }
    }
    assert_int_equal(t.used, 0);
    addr_counts_deinit(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counts_per_address),
        cmocka_unit_test(
            mapped_ipv6_is_ipv4_and_other_families_are_not_counted),
        cmocka_unit_test(table_matches_a_model_through_growth_and_deletion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
