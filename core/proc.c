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
#include "proc.h"

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

/* A killed member whose parent is gone is a zombie until init reaps it,
 * which can take a while (kill(-pg, 0) still finds it): /proc tells. Without
 * /proc: any member at all. */
int proc_groups_alive(const pid_t *pgs, size_t n)
{
    int some = 0;
    for (size_t i = 0; i < n && !some; i++)
        some = pgs[i] > 0 && !(kill(-pgs[i], 0) < 0 && errno == ESRCH);
    if (!some) return 0;
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
        ssize_t len = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (len <= 0) continue;
        buf[len] = '\0';
        const char *p = strrchr(buf, ')');   /* the name may hold anything */
        char state;
        int ppid, pgrp;
        if (!p || sscanf(p + 1, " %c %d %d", &state, &ppid, &pgrp) != 3 || state == 'Z' || state == 'X')
            continue;
        for (size_t i = 0; i < n && !alive; i++) alive = pgs[i] > 0 && pgrp == pgs[i];
    }
    closedir(d);
    return alive;
}

static int group_alive(pid_t pg) { return proc_groups_alive(&pg, 1); }

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

int proc_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);   /* close-on-exec always */
#else
    (void)pid;
    return -1;
#endif
}

/* The child, after fork: its own session (its own process group, which
 * stop_child signals, and no controlling terminal, so a program that would
 * ask for a password on /dev/tty (sudo, ssh) fails at once instead of
 * stopping for ever on SIGTTIN in a background group), its stdin, output
 * and working folder, then exec. Why it could not start goes to c->report. */
void proc_exec_child(const proc_child *c)
{
    setsid();
    signal(SIGINT, SIG_DFL); signal(SIGTERM, SIG_DFL); signal(SIGPIPE, SIG_DFL);
    struct sigaction hup;   /* ignored from the start (nohup): it stays so */
    if (sigaction(SIGHUP, NULL, &hup) == 0 && hup.sa_handler != SIG_IGN) signal(SIGHUP, SIG_DFL);
    if (c->in >= 0) dup2(c->in, 0);
    else {
        /* not inherited by the program: closed once it is stdin */
        int nul = open("/dev/null", O_RDONLY);
        if (nul > 0) { dup2(nul, 0); close(nul); }
    }
    dup2(c->out, 1);
    dup2(c->err, 2);
    const char *why = "chdir";
    if (c->cwdfd >= 0 && fchdir(c->cwdfd) < 0) goto fail;
    if (c->env) for (const char *const *e = c->env; *e; e++) putenv((char *)*e);
    why = "exec";
    execvp(c->argv[0], (char *const *)c->argv);
fail:;
    int e = errno;
    dprintf(c->report, "%s %s: %s", why, why[0] == 'c' ? c->cwd : c->argv[0], strerror(e));
    _exit(127);
}

static void close_pair(int p[2])
{
    if (p[0] >= 0) close(p[0]);
    if (p[1] >= 0) close(p[1]);
}

/* the pipes and the fork: 0 with the child running (*pid; its output on
 * out[0], its input on in[1] when there is input, its exec error pipe on
 * errp[0]), or -1 with r->error set and nothing left open */
static int fork_child(const provision_proc_opts *o, provision_proc_result *r, pid_t *pid,
                      int out[2], int in[2], int errp[2])
{
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
    out[0] = out[1] = in[0] = in[1] = errp[0] = errp[1] = -1;
    const char *what = "pipe";
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 || (o->input && pipe2(in, O_CLOEXEC) < 0))
        goto fail;
    what = "fork";
    *pid = fork();
    if (*pid < 0) goto fail;
    if (*pid == 0) {
        proc_child c = { o->argv, o->env, o->cwd, cwdfd, in[0], out[1], out[1], errp[1] };
        proc_exec_child(&c);
    }
    close(out[1]); close(errp[1]);
    out[1] = errp[1] = -1;
    if (in[0] >= 0) { close(in[0]); in[0] = -1; }
    if (cwdfd >= 0) close(cwdfd);
    return 0;
fail:
    snprintf(r->error, sizeof r->error, "%s: %s", what, strerror(errno));
    close_pair(out); close_pair(errp); close_pair(in);
    if (cwdfd >= 0) close(cwdfd);
    return -1;
}

/* Start the child: 0 once its exec worked (*out_rd: its output, *in_wr:
 * its input or -1), or -1 with r->error set, the child reaped and nothing
 * left open. */
static int start_child(const provision_proc_opts *o, provision_proc_result *r, pid_t *pid, int *out_rd, int *in_wr)
{
    int out[2], in[2], errp[2];
    if (fork_child(o, r, pid, out, in, errp) < 0) return -1;
    /* no setpgid(pid, pid) here: made first, it would make setsid fail. The
     * child's setsid comes before its exec, which the read below waits for. */
    provision_signals_child(*pid);   /* a second signal kills the group (signals.c) */

    /* Did exec work? The error pipe closes on exec (CLOEXEC) or carries why not. */
    char ebuf[200];
    ssize_t en;
    while ((en = read(errp[0], ebuf, sizeof ebuf - 1)) < 0 && errno == EINTR) {}
    close(errp[0]);
    if (en > 0) {
        ebuf[en] = '\0';
        snprintf(r->error, sizeof r->error, "%s", ebuf);
        waitpid(*pid, NULL, 0);
        provision_signals_child(0);
        close(out[0]);
        if (in[1] >= 0) close(in[1]);
        return -1;
    }
    *out_rd = out[0];
    *in_wr = in[1];
    return 0;
}

/* A running child, while its output is collected. The leader's exit ends
 * the run, not the end of its output: a program that closes its output
 * keeps running (and under the timeout), and one that leaves a background
 * process holding the pipe (a daemon it started) is done when it exits.
 * Its output is then read until EOF, a quiet DRAIN_QUIET or DRAIN_MAX in
 * all. A pidfd wakes the poll when the leader exits; without one (an old
 * kernel) the poll wakes every 20 ms. */
#define DRAIN_QUIET 0.2
#define DRAIN_MAX 2.0

typedef struct {
    pid_t pid;
    int out, in, pidfd;        /* -1: closed (in: none, or all written) */
    size_t in_off;
    int open_out, leader_done, status;
    double deadline, exited_at, last_data;
    tailbuf buf;
} child_io;

/* has the leader exited? Reaped then, and the drain begins */
static void reap_leader(child_io *c)
{
    if (c->leader_done) return;
    pid_t w = waitpid(c->pid, &c->status, WNOHANG);
    if (w == c->pid || (w < 0 && errno == ECHILD)) {
        c->leader_done = 1;
        c->exited_at = c->last_data = provision_now();
        provision_signals_child(0);   /* what is left of the group stays */
        if (c->pidfd >= 0) { close(c->pidfd); c->pidfd = -1; }
    }
}

/* is the wait over (drained, interrupted, timed out)? */
static int wait_is_over(child_io *c, provision_proc_result *r)
{
    if (c->leader_done) {
        double now = provision_now();
        return !c->open_out || now - c->last_data >= DRAIN_QUIET || now - c->exited_at >= DRAIN_MAX
               || provision_interrupted();
    }
    if (provision_interrupted()) { r->interrupted = 1; return 1; }
    if (c->deadline && provision_now() > c->deadline) { r->timed_out = 1; return 1; }
    return 0;
}

/* one poll: what the child wrote read, what it is to read written */
static void pump(child_io *c, const provision_proc_opts *o)
{
    struct pollfd fds[3];
    nfds_t nfds = 0;
    int io = -1, ii = -1;
    if (c->open_out) { io = (int)nfds; fds[nfds++] = (struct pollfd){ c->out, POLLIN, 0 }; }
    if (c->in >= 0) { ii = (int)nfds; fds[nfds++] = (struct pollfd){ c->in, POLLOUT, 0 }; }
    if (c->pidfd >= 0) fds[nfds++] = (struct pollfd){ c->pidfd, POLLIN, 0 };
    int wait_ms = c->leader_done ? 50 : c->pidfd >= 0 ? 100 : 20;
    if (poll(fds, nfds, wait_ms) <= 0) return;
    if (io >= 0 && fds[io].revents) {
        char chunk[16384];
        ssize_t n = read(c->out, chunk, sizeof chunk);
        if (n > 0) {
            tail_add(&c->buf, chunk, (size_t)n);
            c->last_data = provision_now();
            if (o->passthrough) { ssize_t w = write(2, chunk, (size_t)n); (void)w; }
        } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) c->open_out = 0;
    }
    if (ii >= 0 && fds[ii].revents) {
        ssize_t n = write(c->in, o->input + c->in_off, o->input_len - c->in_off);
        if (n > 0) c->in_off += (size_t)n;
        if (n < 0 && errno != EAGAIN && errno != EINTR) c->in_off = o->input_len;
        if (c->in_off >= o->input_len) { close(c->in); c->in = -1; }
    }
}

int provision_proc_run(const provision_proc_opts *o, provision_proc_result *r)
{
    memset(r, 0, sizeof *r);
    child_io c;
    memset(&c, 0, sizeof c);
    if (start_child(o, r, &c.pid, &c.out, &c.in) < 0) return -1;
    c.buf.max = o->capture_max ? o->capture_max : (1 << 20);
    if (c.in >= 0) fcntl(c.in, F_SETFL, O_NONBLOCK);
    c.deadline = o->timeout > 0 ? provision_now() + o->timeout : 0;
    c.pidfd = proc_pidfd(c.pid);
    c.open_out = 1;
    for (;;) {
        reap_leader(&c);
        if (wait_is_over(&c, r)) break;
        pump(&c, o);
    }
    if (c.in >= 0) close(c.in);
    close(c.out);   /* a background process still writing gets EPIPE */
    if (c.pidfd >= 0) close(c.pidfd);
    if (r->timed_out || r->interrupted) {
        stop_child(c.pid, &c.leader_done);
        r->status = r->timed_out ? 124 : 130;
    } else {
        r->status = exit_code(c.status);
    }
    tailbuf *buf = &c.buf;
    if (buf->len > buf->max) {
        memmove(buf->p, buf->p + buf->len - buf->max, buf->max);
        buf->len = buf->max;
    }
    if (!buf->p) buf->p = calloc(1, 1);
    else buf->p[buf->len] = '\0';
    r->output = buf->p;
    r->output_len = buf->len;
    return 0;
}
