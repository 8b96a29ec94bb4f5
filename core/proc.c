/* proc.c: run one process from an argv (never a shell string), capture its
 * output (stdout and stderr interleaved, the tail kept when it is large),
 * feed it optional input, stop it on timeout or when we are interrupted.
 * The child runs in its own process group so that a timeout stops its
 * children too. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "core.h"
#include "tree.h"
#include "signals.h"

typedef struct { char *p; size_t len, cap, max; } tailbuf;

static void tail_add(tailbuf *b, const char *s, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        char *np = realloc(b->p, cap + 1);
        if (!np) return;   /* keep what we have */
        b->p = np; b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    if (b->len > b->max && b->len - b->max > b->max) {   /* keep the tail, amortized */
        memmove(b->p, b->p + b->len - b->max, b->max);
        b->len = b->max;
    }
}

/* pid's exit status as an exit code: the code, or 128 + the signal */
static int exit_code(int st)
{
    return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 1;
}

/* Has process group pg a member that is not a zombie? A killed member whose
 * parent is gone is a zombie until init reaps it, which can take a while
 * (kill(-pg, 0) still finds it). Without /proc: any member at all. */
static int group_alive(pid_t pg)
{
    if (kill(-pg, 0) < 0 && errno == ESRCH) return 0;
    DIR *d = opendir("/proc");
    if (!d) return 1;
    int alive = 0;
    struct dirent *e;
    while (!alive && (e = readdir(d)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0) continue;
        buf[n] = '\0';
        const char *p = strrchr(buf, ')');   /* the name may hold anything */
        char state;
        int ppid, pgrp;
        if (p && sscanf(p + 1, " %c %d %d", &state, &ppid, &pgrp) == 3
            && pgrp == pg && state != 'Z' && state != 'X')
            alive = 1;
    }
    closedir(d);
    return alive;
}

/* Stop the child's whole process group: SIGTERM, up to 2 s for every
 * member to go, then SIGKILL for whoever is left (a member that ignores
 * SIGTERM outlives its leader), and up to 1 s more for them to die.
 * *leader_done: the leader was reaped already; it is reaped here otherwise. */
static void stop_child(pid_t pid, int *leader_done)
{
    kill(-pid, SIGTERM);
    kill(-pid, SIGCONT);   /* a stopped member (SIGTTIN: it read the terminal) acts on it */
    for (int i = 0; i < 40; i++) {   /* 2 s to go quietly */
        provision_signals_alive();   /* waiting, not stuck: the watchdog holds off */
        if (!*leader_done && waitpid(pid, NULL, WNOHANG) != 0) *leader_done = 1;
        if (*leader_done && !group_alive(pid)) break;
        usleep(50000);
    }
    if (kill(-pid, 0) == 0) kill(-pid, SIGKILL);   /* zombies ignore it */
    if (!*leader_done) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        *leader_done = 1;
    }
    for (int i = 0; i < 20 && group_alive(pid); i++) { provision_signals_alive(); usleep(50000); }
    provision_signals_child(0);
}

static int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);   /* close-on-exec always */
#else
    (void)pid;
    return -1;
#endif
}

int provision_proc_run(const provision_proc_opts *o, provision_proc_result *r)
{
    memset(r, 0, sizeof *r);
    int out[2], in[2] = { -1, -1 }, errp[2];
    /* the working folder, reached as core/tree.h says (not through a link
     * of another user's), entered by its descriptor in the child */
    int cwdfd = -1;
    if (o->cwd) {
        char terr[TREE_ERR];
        cwdfd = tree_open(o->cwd, O_PATH | O_DIRECTORY, 1, terr, sizeof terr);
        if (cwdfd < 0) {
            snprintf(r->error, sizeof r->error, "chdir %.230s", terr);
            return -1;
        }
    }
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        snprintf(r->error, sizeof r->error, "pipe: %s", strerror(errno));
        if (cwdfd >= 0) close(cwdfd);
        return -1;
    }
    if (o->input && pipe2(in, O_CLOEXEC) < 0) {
        snprintf(r->error, sizeof r->error, "pipe: %s", strerror(errno));
        close(out[0]); close(out[1]); close(errp[0]); close(errp[1]);
        if (cwdfd >= 0) close(cwdfd);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(r->error, sizeof r->error, "fork: %s", strerror(errno));
        close(out[0]); close(out[1]); close(errp[0]); close(errp[1]);
        if (in[0] >= 0) { close(in[0]); close(in[1]); }
        if (cwdfd >= 0) close(cwdfd);
        return -1;
    }
    if (pid == 0) {
        /* its own session: its own process group (stop_child signals the
         * group), and no controlling terminal, so a program that would ask
         * for a password on /dev/tty (sudo, ssh) fails at once instead of
         * stopping for ever on SIGTTIN in a background group */
        setsid();
        signal(SIGINT, SIG_DFL); signal(SIGTERM, SIG_DFL); signal(SIGPIPE, SIG_DFL);
        if (in[0] >= 0) dup2(in[0], 0);
        else {
            /* not inherited by the program: closed once it is stdin */
            int nul = open("/dev/null", O_RDONLY);
            if (nul > 0) { dup2(nul, 0); close(nul); }
        }
        dup2(out[1], 1);
        dup2(out[1], 2);
        const char *why = "chdir";
        if (cwdfd >= 0 && fchdir(cwdfd) < 0) goto fail;
        if (o->env) for (const char *const *e = o->env; *e; e++) putenv((char *)*e);
        why = "exec";
        execvp(o->argv[0], (char *const *)o->argv);
    fail:;
        int e = errno;
        dprintf(errp[1], "%s %s: %s", why, why[0] == 'c' ? o->cwd : o->argv[0], strerror(e));
        _exit(127);
    }
    close(out[1]); close(errp[1]);
    if (in[0] >= 0) close(in[0]);
    if (cwdfd >= 0) close(cwdfd);
    /* no setpgid(pid, pid) here: made first, it would make setsid fail. The
     * child's setsid comes before its exec, which the read below waits for. */
    provision_signals_child(pid);   /* a second signal kills the group (signals.c) */

    /* Did exec work? The error pipe closes on exec (CLOEXEC) or carries why not. */
    char ebuf[200];
    ssize_t en;
    while ((en = read(errp[0], ebuf, sizeof ebuf - 1)) < 0 && errno == EINTR) {}
    close(errp[0]);
    if (en > 0) {
        ebuf[en] = '\0';
        snprintf(r->error, sizeof r->error, "%s", ebuf);
        waitpid(pid, NULL, 0);
        provision_signals_child(0);
        close(out[0]);
        if (in[1] >= 0) close(in[1]);
        return -1;
    }

    tailbuf buf = { NULL, 0, 0, o->capture_max ? o->capture_max : (1 << 20) };
    size_t in_off = 0;
    if (in[1] >= 0) fcntl(in[1], F_SETFL, O_NONBLOCK);
    double deadline = o->timeout > 0 ? provision_now() + o->timeout : 0;
    /* The leader's exit ends the run, not the end of its output: a program
     * that closes its output keeps running (and under the timeout), and one
     * that leaves a background process holding the pipe (a daemon it
     * started) is done when it exits. Its output is then read until EOF, a
     * quiet DRAIN_QUIET or DRAIN_MAX in all. A pidfd wakes the poll when the
     * leader exits; without one (an old kernel) the poll wakes every 20 ms. */
    const double DRAIN_QUIET = 0.2, DRAIN_MAX = 2.0;
    int pidfd = open_pidfd(pid);
    int open_out = 1, leader_done = 0, st = 0;
    double exited_at = 0, last_data = 0;
    for (;;) {
        if (!leader_done) {
            pid_t w = waitpid(pid, &st, WNOHANG);
            if (w == pid || (w < 0 && errno == ECHILD)) {
                leader_done = 1;
                exited_at = last_data = provision_now();
                provision_signals_child(0);   /* what is left of the group stays */
                if (pidfd >= 0) { close(pidfd); pidfd = -1; }
            }
        }
        if (leader_done) {
            double now = provision_now();
            if (!open_out || now - last_data >= DRAIN_QUIET || now - exited_at >= DRAIN_MAX
                || provision_interrupted())
                break;
        } else {
            if (provision_interrupted()) { r->interrupted = 1; break; }
            if (deadline && provision_now() > deadline) { r->timed_out = 1; break; }
        }
        struct pollfd fds[3];
        nfds_t nfds = 0;
        int io = -1, ii = -1;
        if (open_out) { io = (int)nfds; fds[nfds++] = (struct pollfd){ out[0], POLLIN, 0 }; }
        if (in[1] >= 0) { ii = (int)nfds; fds[nfds++] = (struct pollfd){ in[1], POLLOUT, 0 }; }
        if (pidfd >= 0) fds[nfds++] = (struct pollfd){ pidfd, POLLIN, 0 };
        int wait_ms = leader_done ? 50 : pidfd >= 0 ? 100 : 20;
        int pr = poll(fds, nfds, wait_ms);
        if (pr <= 0) continue;
        if (io >= 0 && fds[io].revents) {
            char chunk[16384];
            ssize_t n = read(out[0], chunk, sizeof chunk);
            if (n > 0) {
                tail_add(&buf, chunk, (size_t)n);
                last_data = provision_now();
                if (o->passthrough) { ssize_t w = write(2, chunk, (size_t)n); (void)w; }
            } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) open_out = 0;
        }
        if (ii >= 0 && fds[ii].revents) {
            ssize_t n = write(in[1], o->input + in_off, o->input_len - in_off);
            if (n > 0) in_off += (size_t)n;
            if (n < 0 && errno != EAGAIN && errno != EINTR) in_off = o->input_len;
            if (in_off >= o->input_len) { close(in[1]); in[1] = -1; }
        }
    }
    if (in[1] >= 0) close(in[1]);
    close(out[0]);   /* a background process still writing gets EPIPE */
    if (pidfd >= 0) close(pidfd);
    if (r->timed_out || r->interrupted) {
        stop_child(pid, &leader_done);
        r->status = r->timed_out ? 124 : 130;
    } else {
        r->status = exit_code(st);
    }
    if (buf.len > buf.max) {
        memmove(buf.p, buf.p + buf.len - buf.max, buf.max);
        buf.len = buf.max;
    }
    if (!buf.p) buf.p = calloc(1, 1);
    else buf.p[buf.len] = '\0';
    r->output = buf.p;
    r->output_len = buf.len;
    return 0;
}
