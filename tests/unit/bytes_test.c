/* Little-endian encoding and the bounds-checked cursor/writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/bytes.h"

static void integers_are_written_little_endian(void **state)
{
    (void)state;
    uint8_t b[8];
    put_u16(b, 0x0102);
    assert_int_equal(b[0], 0x02);
    assert_int_equal(b[1], 0x01);
    put_u32(b, 0x01020304u);
    assert_memory_equal(b, "\x04\x03\x02\x01", 4);
    put_u64(b, 0x0102030405060708ull);
    assert_memory_equal(b, "\x08\x07\x06\x05\x04\x03\x02\x01", 8);
}

static void get_reverses_put_at_extremes(void **state)
{
    (void)state;
    uint8_t b[8];
    const uint64_t v64[] = {0,
                            1,
                            0x7fffffffffffffffull,
                            UINT64_MAX,
                            0x8000000000000000ull,
                            0xdeadbeefcafef00dull};
    for (size_t i = 0; i < sizeof(v64) / sizeof(v64[0]); i++) {
        put_u64(b, v64[i]);
        assert_true(get_u64(b) == v64[i]);
        put_u32(b, (uint32_t)v64[i]);
        assert_int_equal(get_u32(b), (uint32_t)v64[i]);
        put_u16(b, (uint16_t)v64[i]);
        assert_int_equal(get_u16(b), (uint16_t)v64[i]);
    }
}

static void cursor_fails_past_the_end_and_stays_failed(void **state)
{
    (void)state;
    const uint8_t data[5] = {1, 0, 0, 0, 9};
    struct cursor c = cursor_make(data, sizeof(data));
    assert_int_equal(cursor_u32(&c), 1);
    assert_true(c.ok);
    assert_int_equal(cursor_u16(&c), 0); /* only one byte left */
    assert_false(c.ok);
    assert_int_equal(cursor_u8(&c), 0); /* stays failed */
    assert_false(c.ok);
}

static void writer_refuses_to_overflow(void **state)
{
    (void)state;
    uint8_t buf[12];
    memset(buf, 0xaa, sizeof(buf));
    struct writer w = writer_make(buf, 10);
    writer_u64(&w, 7);
    assert_true(w.ok);
    writer_u32(&w, 5); /* needs 4, has 2 */
    assert_false(w.ok);
    assert_int_equal(buf[8], 0xaa);
    assert_int_equal(buf[10], 0xaa);
    struct cursor c = cursor_make(buf, 8);
    assert_true(cursor_u64(&c) == 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(integers_are_written_little_endian),
        cmocka_unit_test(get_reverses_put_at_extremes),
        cmocka_unit_test(cursor_fails_past_the_end_and_stays_failed),
        cmocka_unit_test(writer_refuses_to_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
