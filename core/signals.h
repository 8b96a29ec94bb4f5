/* signals.h: what proc.c tells signals.c. */
#ifndef PROVISION_SIGNALS_H
#define PROVISION_SIGNALS_H

#include <sys/types.h>

/* The process group of the program being run (0: none). A second SIGINT or
 * SIGTERM, which ends provision at once, SIGKILLs that group first: it is
 * not in our process group, so it would be left running. So does the
 * watchdog when it stops a stuck run. */
void provision_signals_child(pid_t pgid);

/* A sign of life for the watchdog from a bounded wait that polls nothing
 * (stopping a program takes up to 3 s after an interrupt). */
void provision_signals_alive(void);

#endif
