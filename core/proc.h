/* proc.h: what proc.c (one process, exec.run) shares with procs.c (many
 * at once, exec.many): the child's side of the fork, and whether a stopped
 * process group is gone. */
#ifndef PROVISION_PROC_H
#define PROVISION_PROC_H

#include <sys/types.h>

typedef struct proc_child {
    const char *const *argv;   /* argv[0] looked up in PATH */
    const char *const *env;    /* NULL, or extra KEY=VALUE entries */
    const char *cwd;           /* cwdfd's path, for the message */
    int cwdfd;                 /* -1: inherit the working folder */
    int in, out, err;          /* become 0, 1 and 2; in -1: /dev/null */
    int report;                /* why it could not start ("exec prog: why"), close-on-exec */
} proc_child;

/* In the child, after fork: its own session (its own process group, and no
 * controlling terminal), its descriptors, then exec; never returns. */
__attribute__((noreturn)) void proc_exec_child(const proc_child *c);

/* Has one of the n process groups a member that is not a zombie? (pgs[i]
 * <= 0: none there) */
int proc_groups_alive(const pid_t *pgs, size_t n);

/* a pidfd for pid (close-on-exec), or -1 where the kernel has none */
int proc_pidfd(pid_t pid);

#endif
