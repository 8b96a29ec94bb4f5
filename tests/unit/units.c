/* Unit tests of core/units.c: durations and sizes as recipes write them,
 * good and bad. Data-driven: input -> expected (or rejected). */
#include <math.h>
#include <stdio.h>
#include "units.h"

static int failures;

static void duration(const char *in, int ok, double want)
{
    double got = -1;
    int rc = provision_parse_duration(in, &got);
    if (ok ? (rc == 0 && fabs(got - want) < 1e-9) : rc != 0)
        printf("PASS duration \"%s\"\n", in ? in : "(null)");
    else {
        printf("FAIL duration \"%s\": rc=%d got %g, want %s %g\n", in ? in : "(null)", rc, got,
               ok ? "ok" : "rejected", want);
        failures++;
    }
}

static void size(const char *in, int ok, double want)
{
    double got = -1;
    int rc = provision_parse_size(in, &got);
    if (ok ? (rc == 0 && got == want) : rc != 0)
        printf("PASS size \"%s\"\n", in ? in : "(null)");
    else {
        printf("FAIL size \"%s\": rc=%d got %.0f, want %s %.0f\n", in ? in : "(null)", rc, got,
               ok ? "ok" : "rejected", want);
        failures++;
    }
}

int main(void)
{
    duration("90", 1, 90);
    duration("1.5s", 1, 1.5);
    duration("250ms", 1, 0.25);
    duration("5m", 1, 300);
    duration("2h", 1, 7200);
    duration("1d", 1, 86400);
    duration("1h30m", 1, 5400);
    duration("1m30s", 1, 90);
    duration("0", 1, 0);
    duration("  10s", 1, 10);
    duration("", 0, 0);
    duration(NULL, 0, 0);
    duration("s", 0, 0);
    duration("-5s", 0, 0);
    duration("5x", 0, 0);
    duration("5m30", 0, 0);     /* a bare number only alone */
    duration("1.5.5s", 0, 0);
    duration("10 s", 0, 0);
    duration("nan", 0, 0);
    duration("inf", 0, 0);
    duration("99999999999999s", 0, 0);

    size("512", 1, 512);
    size("512B", 1, 512);
    size("4GiB", 1, 4294967296.0);
    size("10GB", 1, 1e10);
    size("1.5M", 1, 1500000);
    size("1.5MiB", 1, 1572864);
    size("2 KiB", 1, 2048);
    size("1k", 1, 1000);
    size("1TiB", 1, 1099511627776.0);
    size("0", 1, 0);
    size("", 0, 0);
    size(NULL, 0, 0);
    size("GiB", 0, 0);
    size("-1GiB", 0, 0);
    size("4gib", 0, 0);
    size("4 GiB extra", 0, 0);
    size("4XB", 0, 0);
    size("1e30", 0, 0);
    size("inf", 0, 0);
    size("0x10GiB", 0, 0);    /* strtod would read hex and exponents: refused */
    size("1e3", 0, 0);
    duration("0x10m", 0, 0);
    duration("1e3s", 0, 0);

    printf("%s units: %d failure%s\n", failures ? "#" : "#", failures, failures == 1 ? "" : "s");
    return failures ? 1 : 0;
}
