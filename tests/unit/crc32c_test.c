/* Known-answer tests for CRC-32C (RFC 3720 appendix B.4 and the classic
 * "123456789" check value), and agreement of the hardware and table paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/crc32c.h"

static void check_value_of_123456789_is_e3069283(void **state)
{
    (void)state;
    assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c_sw(0, "123456789", 9), 0xE3069283u);
}

static void rfc3720_vectors_match(void **state)
{
    (void)state;
    uint8_t buf[32];
    memset(buf, 0, sizeof(buf));
    assert_int_equal(crc32c(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xff, sizeof(buf));
    assert_int_equal(crc32c(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    assert_int_equal(crc32c(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)(31 - i);
    assert_int_equal(crc32c(0, buf, 32), 0x113FDB5Cu);
}

static void empty_input_leaves_crc_unchanged(void **state)
{
    (void)state;
    assert_int_equal(crc32c(0, "", 0), 0);
    assert_int_equal(crc32c(0x12345678u, "", 0), 0x12345678u);
}

static void incremental_equals_one_shot(void **state)
{
    (void)state;
    const char *text = "the quick brown fox jumps over the lazy dog, twice";
    size_t n = strlen(text);
    uint32_t whole = crc32c(0, text, n);
    for (size_t split = 0; split <= n; split++) {
        uint32_t part = crc32c(crc32c(0, text, split), text + split, n - split);
        assert_int_equal(part, whole);
    }
}

static void hardware_and_table_agree_at_every_length_and_alignment(void **s)
{
    (void)s;
    uint8_t buf[300];
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < sizeof(buf); i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (uint8_t)x;
    }
    for (size_t off = 0; off < 8; off++)
        for (size_t len = 0; len + off <= sizeof(buf); len += 7)
            assert_int_equal(crc32c(0, buf + off, len),
                             crc32c_sw(0, buf + off, len));
}

static void one_flipped_bit_changes_the_checksum(void **state)
{
    (void)state;
    uint8_t buf[64] = {0};
    uint32_t clean = crc32c(0, buf, sizeof(buf));
    for (size_t bit = 0; bit < sizeof(buf) * 8; bit++) {
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_not_equal(crc32c(0, buf, sizeof(buf)), clean);
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(check_value_of_123456789_is_e3069283),
        cmocka_unit_test(rfc3720_vectors_match),
        cmocka_unit_test(empty_input_leaves_crc_unchanged),
        cmocka_unit_test(incremental_equals_one_shot),
        cmocka_unit_test(
            hardware_and_table_agree_at_every_length_and_alignment),
        cmocka_unit_test(one_flipped_bit_changes_the_checksum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
