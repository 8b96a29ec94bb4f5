/* signals.h: what proc.c and procs.c tell signals.c. */
#ifndef PROVISION_SIGNALS_H
#define PROVISION_SIGNALS_H

#include <stdatomic.h>
#include <stddef.h>
#include <sys/types.h>

/* The process group of the program being run (0: none). A second SIGINT,
 * SIGTERM or SIGHUP, which ends provision at once, SIGKILLs that group
 * first: it is not in our process group, so it would be left running. So
 * does the watchdog when it stops a stuck run. */
void provision_signals_child(pid_t pgid);

/* The same for the process groups of many programs at once (procs.c): n
 * slots, each a group's id or 0, kept up to date by the caller. Pushed
 * before the first one starts, popped (the last pushed) once all are
 * reaped; they nest. */
typedef struct provision_signal_groups {
    atomic_int *pg;
    size_t n;
    const struct provision_signal_groups *prev;   /* signals.c's */
} provision_signal_groups;
void provision_signals_push_groups(provision_signal_groups *g);
void provision_signals_pop_groups(const provision_signal_groups *g);

/* A sign of life for the watchdog from a bounded wait that polls nothing
 * (stopping a program takes up to 3 s after an interrupt). */
void provision_signals_alive(void);

#endif
