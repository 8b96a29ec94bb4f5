/* procs.c: many processes at once, for exec.many (a fleet's controller runs
 * ssh to every host). Each job runs from an argv (never a shell string) in
 * its own session and process group, as proc.c's one does, with its own
 * stdin, stdout and stderr pipes. One poll(2) loop drives them all on
 * nonblocking pipes: input is written while output is read, so no job
 * waits on another, and no thread is needed. At most forks leaders run at
 * once; jobs start in order. Every line of output goes to on_line as it
 * comes: each stream in order, a line longer than LINE_MAX_LEN in pieces
 * of that size, a last line without its newline at the end.
 *
 * A job ends as exec.run's does (proc.c): its leader has exited and its
 * output is drained: EOF on both pipes, DRAIN_QUIET without data, or
 * DRAIN_MAX after the exit (a daemon it started may hold the pipes). Its
 * stdin is closed once the input is written, or with hold_stdin when the
 * leader exits. A job that closes its stdin early makes the write fail
 * with EPIPE (signals.c ignores SIGPIPE): the rest of its input is dropped.
 *
 * Interrupted (provision_interrupted(): a signal, --timeout's deadline,
 * stdin's EOF on the remote side): no job starts any more; every stdin is
 * closed at once, so a remote run sees EOF and stops at a safe point;
 * output is still read and delivered for grace seconds; then the groups
 * still running get SIGTERM, and SIGKILL KILL_AFTER later. An on_line that
 * asks to stop gets the same at once, with no further calls. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "core.h"
#include "proc.h"
#include "signals.h"

#define LINE_MAX_LEN ((size_t)1 << 20)   /* a longer line goes out in pieces this long */
#define CHUNK 65536                      /* one read */
#define DRAIN_QUIET 0.2
#define DRAIN_MAX 2.0
#define KILL_AFTER 2.0                   /* from SIGTERM to SIGKILL */
#define GONE_AFTER 1.0                   /* from SIGKILL to giving up on the group */

enum { PENDING, RUNNING, DRAINING, DONE };   /* RUNNING: its leader is alive */
enum { OUT, ERR, IN, PIDFD };                /* what a pollfd is */

typedef struct { char *p; size_t len, cap; } linebuf;

typedef struct {
    int state;
    pid_t pid;
    int pidfd, in, out[2];     /* out[OUT], out[ERR]; -1: closed */
    size_t in_off;
    linebuf lb[2];             /* the line not yet complete, per stream */
    int wstatus, termed;       /* termed: its group got SIGTERM */
    double started, exited, last_data;
} job_io;

typedef struct {
    provision_procs_job *jobs;
    const provision_procs_opts *o;
    size_t n, next, running, open;   /* next: the first not started; open: started, not DONE */
    job_io *io;
    atomic_int *pg;                  /* the groups a second signal kills (signals.h) */
    pid_t *termed_pg;                /* the groups that got SIGTERM */
    size_t ntermed;
    struct pollfd *pfd;
    size_t *who;                     /* pfd[k] is job who[k]'s kind[k] */
    int *kind;
    int stopped;                     /* on_line asked to stop */
    double stop_at, term_at, kill_at;   /* 0: not yet */
} procs;

static void deliver(procs *p, size_t i, int s, const char *line, size_t len)
{
    if (p->stopped || !p->o->on_line) return;
    if (p->o->on_line(p->o->ud, i, s + 1, line, len) != 0) p->stopped = 1;
}

/* b holds new bytes from `from` on: each complete line goes out, a line
 * over LINE_MAX_LEN in pieces, at eof the rest too; what is left moves to
 * the front (at most LINE_MAX_LEN bytes) */
static void flush_lines(procs *p, size_t i, int s, size_t from, int eof)
{
    linebuf *b = &p->io[i].lb[s];
    size_t at = 0;
    const char *nl;
    while (from < b->len && (nl = memchr(b->p + from, '\n', b->len - from)) != NULL) {
        size_t end = (size_t)(nl - b->p);
        for (; end - at > LINE_MAX_LEN; at += LINE_MAX_LEN) deliver(p, i, s, b->p + at, LINE_MAX_LEN);
        deliver(p, i, s, b->p + at, end - at);
        at = from = end + 1;
    }
    /* more than LINE_MAX_LEN and no newline: one exactly that long may
     * still be a whole line, its newline in the next read */
    while (b->len - at > LINE_MAX_LEN || (eof && b->len > at)) {
        size_t k = b->len - at < LINE_MAX_LEN ? b->len - at : LINE_MAX_LEN;
        deliver(p, i, s, b->p + at, k);
        at += k;
    }
    if (at) {
        memmove(b->p, b->p + at, b->len - at);
        b->len -= at;
    }
}

/* room for one more read: 0, or -1 when memory ran out */
static int lb_room(linebuf *b)
{
    if (b->cap - b->len >= CHUNK) return 0;
    size_t cap = b->cap ? b->cap * 2 : 2 * CHUNK;
    while (cap - b->len < CHUNK) cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) return -1;
    b->p = np;
    b->cap = cap;
    return 0;
}

static void lb_free(linebuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static void close_fd(int *fd)
{
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

/* the end of a stream: its last line goes out */
static void close_out(procs *p, size_t i, int s)
{
    job_io *io = &p->io[i];
    if (io->out[s] < 0) return;
    flush_lines(p, i, s, io->lb[s].len, 1);
    close_fd(&io->out[s]);
}

static void read_out(procs *p, size_t i, int s)
{
    job_io *io = &p->io[i];
    linebuf *b = &io->lb[s];
    if (lb_room(b) < 0) flush_lines(p, i, s, b->len, 1);   /* no memory: what it holds goes out as it is */
    ssize_t n = read(io->out[s], b->p + b->len, CHUNK);
    if (n > 0) {
        size_t from = b->len;
        b->len += (size_t)n;
        io->last_data = provision_now();
        flush_lines(p, i, s, from, 0);
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        close_out(p, i, s);
    }
}

static void write_in(procs *p, size_t i)
{
    job_io *io = &p->io[i];
    const provision_procs_job *j = &p->jobs[i];
    ssize_t n = write(io->in, j->input + io->in_off, j->input_len - io->in_off);
    if (n > 0) io->in_off += (size_t)n;
    if (n < 0 && errno != EAGAIN && errno != EINTR) {   /* EPIPE: it closed its stdin */
        io->in_off = j->input_len;
        close_fd(&io->in);
    } else if (io->in_off >= j->input_len && !j->hold_stdin) {
        close_fd(&io->in);
    }
}

/* a job that could not start: why into its error (what NULL: set
 * already), its pipes closed */
static void spawn_failed(procs *p, size_t i, const char *what, int e, int *fds, int nfds)
{
    provision_procs_job *j = &p->jobs[i];
    if (what) snprintf(j->error, sizeof j->error, "%s: %s: %s", j->argv[0], what, strerror(e));
    for (int k = 0; k < nfds; k++) close_fd(&fds[k]);
    lb_free(&p->io[i].lb[OUT]);
    lb_free(&p->io[i].lb[ERR]);
    p->io[i].state = DONE;
}

/* Did exec work? The report pipe closes on exec (close-on-exec) or
 * carries why not: 0, or -1 with the job's error set and the child reaped. */
static int exec_worked(procs *p, size_t i, int report, pid_t pid)
{
    char msg[200];
    ssize_t m;
    while ((m = read(report, msg, sizeof msg - 1)) < 0 && errno == EINTR) {}
    close(report);
    if (m <= 0) return 0;
    msg[m] = '\0';
    /* proc.c's child says "exec prog: why", as exec.run does; a job says "prog: why" */
    snprintf(p->jobs[i].error, sizeof p->jobs[i].error, "%s", strncmp(msg, "exec ", 5) == 0 ? msg + 5 : msg);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    return -1;
}

/* start job i: RUNNING, or DONE with its error set */
static void spawn(procs *p, size_t i)
{
    provision_procs_job *j = &p->jobs[i];
    job_io *io = &p->io[i];
    int fds[8] = { -1, -1, -1, -1, -1, -1, -1, -1 };   /* in, out, err, report: read end, write end */
    int *in = fds, *out = fds + 2, *err = fds + 4, *rep = fds + 6;
    if (lb_room(&io->lb[OUT]) < 0 || lb_room(&io->lb[ERR]) < 0) { spawn_failed(p, i, "buffer", ENOMEM, fds, 8); return; }
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0
        || ((j->input || j->hold_stdin) && pipe2(in, O_CLOEXEC) < 0)) {
        spawn_failed(p, i, "pipe", errno, fds, 8);
        return;
    }
    pid_t pid = fork();
    if (pid < 0) { spawn_failed(p, i, "fork", errno, fds, 8); return; }
    if (pid == 0) {
        proc_child c = { j->argv, j->env, NULL, -1, in[0], out[1], err[1], rep[1] };
        proc_exec_child(&c);
    }
    atomic_store(&p->pg[i], (int)pid);   /* its own group (setsid), from here a second signal's too */
    close_fd(&in[0]); close_fd(&out[1]); close_fd(&err[1]); close_fd(&rep[1]);
    int report = rep[0];
    rep[0] = -1;
    if (exec_worked(p, i, report, pid) < 0) {
        atomic_store(&p->pg[i], 0);
        spawn_failed(p, i, NULL, 0, fds, 8);   /* the error is exec's */
        return;
    }
    io->pid = pid;
    io->in = in[1];
    io->out[OUT] = out[0];
    io->out[ERR] = err[0];
    if (io->in >= 0) fcntl(io->in, F_SETFL, O_NONBLOCK);
    fcntl(io->out[OUT], F_SETFL, O_NONBLOCK);
    fcntl(io->out[ERR], F_SETFL, O_NONBLOCK);
    io->pidfd = proc_pidfd(pid);
    io->started = provision_now();
    io->state = RUNNING;
    p->running++;
    p->open++;
    if (io->in >= 0 && j->input_len == 0 && !j->hold_stdin) close_fd(&io->in);   /* input = "" */
}

/* leaders that exited: reaped, their jobs DRAINING */
static void reap(procs *p, double now)
{
    for (size_t i = 0; i < p->next; i++) {
        job_io *io = &p->io[i];
        if (io->state != RUNNING) continue;
        pid_t w = waitpid(io->pid, &io->wstatus, WNOHANG);
        if (w == 0 || (w < 0 && errno == EINTR)) continue;
        if (w < 0) {   /* reaped by someone else (SIGCHLD ignored): how it ended is lost */
            snprintf(p->jobs[i].error, sizeof p->jobs[i].error, "%s: waitpid: %s", p->jobs[i].argv[0], strerror(errno));
            io->wstatus = -1;
        }
        io->state = DRAINING;
        io->exited = io->last_data = now;
        p->running--;
        close_fd(&io->pidfd);
        close_fd(&io->in);   /* the job ended: a held stdin too */
        if (!io->termed) atomic_store(&p->pg[i], 0);   /* what is left of its group stays (a daemon it started) */
    }
}

/* DRAINING jobs whose output is drained: DONE, their result set */
static void finish_drained(procs *p, double now)
{
    for (size_t i = 0; i < p->next; i++) {
        job_io *io = &p->io[i];
        if (io->state != DRAINING) continue;
        int open = io->out[OUT] >= 0 || io->out[ERR] >= 0;
        if (open && now - io->last_data < DRAIN_QUIET && now - io->exited < DRAIN_MAX) continue;
        close_out(p, i, OUT);
        close_out(p, i, ERR);
        lb_free(&io->lb[OUT]);
        lb_free(&io->lb[ERR]);
        provision_procs_job *j = &p->jobs[i];
        if (io->wstatus != -1 && WIFEXITED(io->wstatus)) j->status = WEXITSTATUS(io->wstatus);
        else if (io->wstatus != -1 && WIFSIGNALED(io->wstatus)) j->signal = WTERMSIG(io->wstatus);
        j->seconds = io->exited - io->started;
        io->state = DONE;
        p->open--;
    }
}

/* interrupted, or on_line asked to stop: no job starts any more, and every
 * stdin is closed (a remote run sees EOF) */
static void begin_stop(procs *p, double now)
{
    p->stop_at = now;
    for (size_t i = p->next; i < p->n; i++) {
        p->jobs[i].not_started = 1;
        p->io[i].state = DONE;
    }
    p->next = p->n;
    for (size_t i = 0; i < p->n; i++) {
        if (p->io[i].state == RUNNING) p->jobs[i].interrupted = 1;
        close_fd(&p->io[i].in);
    }
}

/* after the grace, SIGTERM to the groups whose leader still runs; after
 * KILL_AFTER more, SIGKILL */
static void escalate(procs *p, double now)
{
    double grace = p->stopped ? 0 : p->o->grace;
    if (!p->term_at && now >= p->stop_at + grace) {
        p->term_at = now;
        for (size_t i = 0; i < p->n; i++) {
            job_io *io = &p->io[i];
            if (io->state != RUNNING) continue;
            kill(-io->pid, SIGTERM);
            kill(-io->pid, SIGCONT);   /* a stopped member (SIGTTIN) acts on it */
            io->termed = 1;
            p->termed_pg[p->ntermed++] = io->pid;
        }
    } else if (p->ntermed && !p->kill_at && now >= p->term_at + KILL_AFTER) {
        p->kill_at = now;
        for (size_t k = 0; k < p->ntermed; k++) kill(-p->termed_pg[k], SIGKILL);
    }
}

/* every job DONE, and every group that got SIGTERM gone (a member that
 * ignores it outlives its leader), or given GONE_AFTER since SIGKILL */
static int settled(procs *p, double now)
{
    if (p->next < p->n || p->open > 0) return 0;
    if (!p->ntermed || !proc_groups_alive(p->termed_pg, p->ntermed)) return 1;
    return p->kill_at && now >= p->kill_at + GONE_AFTER;
}

static void watch(procs *p, nfds_t *k, int fd, short events, size_t i, int kind)
{
    p->pfd[*k] = (struct pollfd){ fd, events, 0 };
    p->who[*k] = i;
    p->kind[*k] = kind;
    (*k)++;
}

/* one poll: what the jobs wrote read and delivered, their input written */
static void pump(procs *p)
{
    nfds_t k = 0;
    int wait_ms = p->stop_at ? 50 : 100;
    for (size_t i = 0; i < p->next; i++) {
        job_io *io = &p->io[i];
        if (io->state != RUNNING && io->state != DRAINING) continue;
        for (int s = OUT; s <= ERR; s++) if (io->out[s] >= 0) watch(p, &k, io->out[s], POLLIN, i, s);
        if (io->in >= 0 && io->in_off < p->jobs[i].input_len) watch(p, &k, io->in, POLLOUT, i, IN);
        if (io->state == DRAINING && wait_ms > 50) wait_ms = 50;   /* DRAIN_QUIET */
        if (io->state == RUNNING && io->pidfd >= 0) watch(p, &k, io->pidfd, POLLIN, i, PIDFD);
        else if (io->state == RUNNING) wait_ms = 20;   /* no pidfd (an old kernel): look often */
    }
    if (poll(p->pfd, k, wait_ms) <= 0) return;
    for (nfds_t m = 0; m < k; m++) {
        if (!p->pfd[m].revents) continue;
        size_t i = p->who[m];
        int kind = p->kind[m];
        if ((kind == OUT || kind == ERR) && p->io[i].out[kind] >= 0) read_out(p, i, kind);
        else if (kind == IN && p->io[i].in >= 0) write_in(p, i);
        /* PIDFD: reap() sees to it */
    }
}

static void procs_free(procs *p)
{
    for (size_t i = 0; p->io && i < p->n; i++) {   /* all closed by now; a guard */
        close_fd(&p->io[i].in);
        close_fd(&p->io[i].out[OUT]);
        close_fd(&p->io[i].out[ERR]);
        close_fd(&p->io[i].pidfd);
        lb_free(&p->io[i].lb[OUT]);
        lb_free(&p->io[i].lb[ERR]);
    }
    free(p->io); free(p->pg); free(p->termed_pg); free(p->pfd); free(p->who); free(p->kind);
}

static int procs_alloc(procs *p, size_t n)
{
    p->io = calloc(n, sizeof *p->io);
    p->pg = calloc(n, sizeof *p->pg);
    p->termed_pg = calloc(n, sizeof *p->termed_pg);
    p->pfd = calloc(4 * n, sizeof *p->pfd);   /* at most stdout, stderr, stdin, pidfd each */
    p->who = calloc(4 * n, sizeof *p->who);
    p->kind = calloc(4 * n, sizeof *p->kind);
    if (!p->io || !p->pg || !p->termed_pg || !p->pfd || !p->who || !p->kind) {
        procs_free(p);
        errno = ENOMEM;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        job_io *io = &p->io[i];
        io->pidfd = io->in = io->out[OUT] = io->out[ERR] = -1;
        atomic_init(&p->pg[i], 0);
    }
    return 0;
}

int provision_procs_run(provision_procs_job *jobs, size_t n, const provision_procs_opts *o)
{
    for (size_t i = 0; i < n; i++) {
        provision_procs_job *j = &jobs[i];
        j->status = -1;
        j->signal = j->interrupted = j->not_started = 0;
        j->seconds = 0;
        j->error[0] = '\0';
    }
    procs p;
    memset(&p, 0, sizeof p);
    p.jobs = jobs;
    p.n = n;
    p.o = o;
    if (n == 0) return 0;
    if (n > ((size_t)-1) / (4 * sizeof(struct pollfd)) || procs_alloc(&p, n) < 0) { errno = ENOMEM; return -1; }
    provision_signal_groups reg = { p.pg, n, NULL };
    provision_signals_push_groups(&reg);
    size_t forks = o->forks ? o->forks : n;
    for (;;) {
        double now = provision_now();
        /* a poll of the flag is also a sign of life for the watchdog */
        if (!p.stop_at && (provision_interrupted() || p.stopped)) begin_stop(&p, now);
        else provision_signals_alive();
        while (!p.stop_at && p.next < n && p.running < forks && !provision_interrupted()) spawn(&p, p.next++);
        now = provision_now();
        reap(&p, now);
        finish_drained(&p, now);
        if (p.stop_at) escalate(&p, now);
        if (settled(&p, now)) break;
        pump(&p);
    }
    provision_signals_pop_groups(&reg);
    procs_free(&p);
    return p.stopped ? 1 : 0;
}
