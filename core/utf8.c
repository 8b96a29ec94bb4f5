/* utf8.c: is a byte string well-formed UTF-8 (what JSON, and so the state
 * and --json, can hold)? No overlong forms, no surrogates, nothing past
 * U+10FFFF. */
#include <stddef.h>
#include "core.h"

int provision_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str, *end = s + len;
    while (s < end) {
        unsigned c = *s;
        size_t n;
        unsigned min;
        if (c < 0x80) { s++; continue; }
        if (c >= 0xC2 && c <= 0xDF) { n = 1; min = 0x80; c &= 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { n = 2; min = 0x800; c &= 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { n = 3; min = 0x10000; c &= 0x07; }
        else return 0;
        if ((size_t)(end - s) <= n) return 0;
        for (size_t i = 1; i <= n; i++) {
            if ((s[i] & 0xC0) != 0x80) return 0;
            c = (c << 6) | (s[i] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
        s += n + 1;
    }
    return 1;
}
