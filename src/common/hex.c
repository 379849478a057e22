#include "common/hex.h"

int hex_digit(char c, bool upper)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (upper && c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool hex_decode(const char *hex, size_t hex_size, bool upper, uint8_t *out,
                size_t size)
{
    if (hex_size != 2 * size)
        return false;
    for (size_t i = 0; i < size; i++) {
        int hi = hex_digit(hex[2 * i], upper);
        int lo = hex_digit(hex[2 * i + 1], upper);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

void hex_encode(const uint8_t *bytes, size_t size, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < size; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * size] = '\0';
}
