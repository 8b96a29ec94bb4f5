/* Fuzz target: provision_parse_duration / provision_parse_size (core/units.c),
 * the parsers of "90s", "1h30m", "4GiB" as written in recipes and on the
 * command line (--timeout).
 *
 * Properties, for any bytes (cut at the first NUL, as a C string would be):
 *   - no crash, no sanitizer report, deterministic;
 *   - an accepted duration is finite, >= 0 and <= 1e12 seconds; an accepted
 *     size is a whole number of bytes, >= 0 and <= 9e18;
 *   - what is accepted can be written back and parsed to the same value:
 *     a duration as "%.17g" seconds (a bare number; unless that takes an
 *     exponent, which people do not write), a size as "%.0f" bytes;
 *   - appending "x" (no unit is spelled so) to an accepted text makes it
 *     rejected: the parsers take the whole text or nothing. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "units.h"

#define CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    char *s = malloc(size + 2);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    size_t n = strlen(s);
    char back[64];
    double a, b;

    int rd = provision_parse_duration(s, &a);
    CHECK(provision_parse_duration(s, &b) == rd, "duration: not deterministic on [%s]", s);
    if (rd == 0) {
        CHECK(isfinite(a) && a >= 0 && a <= 1e12, "duration [%s] -> %.17g out of range", s, a);
        snprintf(back, sizeof back, "%.17g", a);
        CHECK(strchr(back, 'e') || (provision_parse_duration(back, &b) == 0 && b == a),
              "duration [%s] -> %.17g, but [%s] does not parse back to it", s, a, back);
        s[n] = 'x'; s[n + 1] = '\0';
        CHECK(provision_parse_duration(s, &b) != 0, "duration: [%s] accepted with a trailing x", s);
        s[n] = '\0';
    }

    int rs = provision_parse_size(s, &a);
    CHECK(provision_parse_size(s, &b) == rs, "size: not deterministic on [%s]", s);
    if (rs == 0) {
        CHECK(isfinite(a) && a >= 0 && a <= 9.0e18 && a == floor(a), "size [%s] -> %.17g out of range", s, a);
        snprintf(back, sizeof back, "%.0f", a);
        CHECK(provision_parse_size(back, &b) == 0 && b == a,
              "size [%s] -> %.0f, but [%s] does not parse back to it", s, a, back);
        s[n] = 'x'; s[n + 1] = '\0';
        CHECK(provision_parse_size(s, &b) != 0, "size: [%s] accepted with a trailing x", s);
        s[n] = '\0';
    }
    free(s);
    return 0;
}
