/* units.c: durations ("90", "1.5s", "250ms", "5m", "1h30m") and sizes
 * ("512", "4GiB", "10GB", "1.5M") as people write them in recipes.
 * Exposed to Lua by lcore.c; a parser of outside input, so fuzzed. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "units.h"

/* Returns 0 and *out in seconds, or -1 on anything malformed. */
int provision_parse_duration(const char *s, double *out)
{
    double total = 0;
    int parts = 0;
    if (!s) return -1;
    while (isspace((unsigned char)*s)) s++;
    if (!*s) return -1;
    while (*s) {
        size_t span = strspn(s, "0123456789.");
        char *end;
        double v = strtod(s, &end);
        /* strtod also reads hex ("0x10m") and exponents ("1e3s"): not units people write */
        if (span == 0 || end != s + span || !isfinite(v) || v < 0) return -1;
        s = end;
        double unit;
        if (strncmp(s, "ms", 2) == 0) { unit = 0.001; s += 2; }
        else if (*s == 's') { unit = 1; s++; }
        else if (*s == 'm') { unit = 60; s++; }
        else if (*s == 'h') { unit = 3600; s++; }
        else if (*s == 'd') { unit = 86400; s++; }
        else if (*s == '\0' && parts == 0) unit = 1;   /* a bare number: seconds */
        else return -1;
        total += v * unit;
        parts++;
        if (parts > 8) return -1;
    }
    if (!isfinite(total) || total > 1e12) return -1;
    *out = total;
    return 0;
}

/* Returns 0 and *out in bytes, or -1. K/M/G/T are powers of 1000 with B or
 * alone as in "10GB"; KiB/MiB/GiB/TiB are powers of 1024. */
int provision_parse_size(const char *s, double *out)
{
    if (!s) return -1;
    while (isspace((unsigned char)*s)) s++;
    if (!isdigit((unsigned char)*s)) return -1;
    size_t span = strspn(s, "0123456789.");
    char *end;
    double v = strtod(s, &end);
    if (end != s + span || !isfinite(v) || v < 0) return -1;
    s = end;
    while (*s == ' ') s++;
    static const struct { const char *suffix; double mult; } units[] = {
        { "", 1 }, { "B", 1 },
        { "K", 1e3 }, { "KB", 1e3 }, { "k", 1e3 }, { "kB", 1e3 }, { "KiB", 1024.0 },
        { "M", 1e6 }, { "MB", 1e6 }, { "MiB", 1048576.0 },
        { "G", 1e9 }, { "GB", 1e9 }, { "GiB", 1073741824.0 },
        { "T", 1e12 }, { "TB", 1e12 }, { "TiB", 1099511627776.0 },
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(s, units[i].suffix) == 0) {
            double r = v * units[i].mult;
            if (!isfinite(r) || r > 9.0e18) return -1;
            *out = floor(r);
            return 0;
        }
    }
    return -1;
}
