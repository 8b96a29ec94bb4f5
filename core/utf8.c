/* utf8.c: is a byte string well-formed UTF-8 (what JSON, and so the state
 * and --json, can hold)? No overlong forms, no surrogates, nothing past
 * U+10FFFF. */
#include <stddef.h>
#include "core.h"

size_t provision_utf8_bad(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str, *end = s + len;
    while (s < end) {
        const unsigned char *at = s;
        unsigned c = *s++;
        if (c < 0x80) continue;
        int more;
        unsigned cp, min;
        if (c >= 0xc2 && c <= 0xdf) { more = 1; cp = c & 0x1f; min = 0x80; }
        else if (c >= 0xe0 && c <= 0xef) { more = 2; cp = c & 0x0f; min = 0x800; }
        else if (c >= 0xf0 && c <= 0xf4) { more = 3; cp = c & 0x07; min = 0x10000; }
        else return (size_t)(at - (const unsigned char *)str);
        if (end - s < more) return (size_t)(at - (const unsigned char *)str);
        while (more--) {
            if ((*s & 0xc0) != 0x80) return (size_t)(at - (const unsigned char *)str);
            cp = (cp << 6) | (*s++ & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return (size_t)(at - (const unsigned char *)str);
    }
    return len;
}


int provision_utf8_valid(const char *s, size_t n) { return provision_utf8_bad(s, n) == n; }
