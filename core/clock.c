/* clock.c: monotonic time and an interruptible sleep. */
#include <time.h>
#include <errno.h>
#include "core.h"

double provision_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void provision_sleep(double seconds)
{
    double end = provision_now() + seconds;
    while (!provision_interrupted()) {
        double left = end - provision_now();
        if (left <= 0) break;
        if (left > 0.05) left = 0.05;   /* wake up to notice a signal */
        struct timespec ts = { (time_t)left, (long)((left - (time_t)left) * 1e9) };
        nanosleep(&ts, NULL);
    }
}
