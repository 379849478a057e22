/* crc32c — CRC-32C (Castagnoli, reflected polynomial 0x82F63B78).
 *
 * The software path is slicing-by-8 over tables built once; the hardware path
 * uses the SSE4.2 crc32 instruction, chosen at the first call by cpuid. Both
 * paths are checked against each other and against the RFC 3720 vectors in
 * tests/unit/crc32c_test.c. */
#include "common/crc32c.h"

#include <stdbool.h>
#include <string.h>

#include "common/assert.h"

#define CRC32C_POLY 0x82F63B78u

static uint32_t table[8][256];
static bool table_ready;

static void table_build(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = table[0][n];
        for (int k = 1; k < 8; k++) {
            c = table[0][c & 0xff] ^ (c >> 8);
            table[k][n] = c;
        }
    }
    table_ready = true;
}

uint32_t crc32c_sw(uint32_t crc, const void *data, size_t size)
{
    if (!table_ready)
        table_build();
    const uint8_t *p = data;
    crc = ~crc;
    while (size && ((uintptr_t)p & 7)) {
        crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        size--;
    }
    while (size >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        word ^= crc; /* little-endian hosts only; see the static_assert */
        crc = table[7][word & 0xff] ^ table[6][(word >> 8) & 0xff] ^
              table[5][(word >> 16) & 0xff] ^ table[4][(word >> 24) & 0xff] ^
              table[3][(word >> 32) & 0xff] ^ table[2][(word >> 40) & 0xff] ^
              table[1][(word >> 48) & 0xff] ^ table[0][word >> 56];
        p += 8;
        size -= 8;
    }
    while (size--)
        crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "crc32c_sw's word loop assumes a little-endian host");

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t
crc32c_hw(uint32_t crc, const void *data, size_t size)
{
    const uint8_t *p = data;
    uint64_t c = ~crc;
    while (size && ((uintptr_t)p & 7)) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
        size--;
    }
    while (size >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = __builtin_ia32_crc32di(c, word);
        p += 8;
        size -= 8;
    }
    while (size--)
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
    return ~(uint32_t)c;
}
#endif

uint32_t crc32c(uint32_t crc, const void *data, size_t size)
{
#if defined(__x86_64__)
    static int has_hw = -1;
    if (has_hw < 0) {
        __builtin_cpu_init();
        has_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    }
    if (has_hw)
        return crc32c_hw(crc, data, size);
#endif
    return crc32c_sw(crc, data, size);
}
