/* proc.c: run one process from an argv (never a shell string), capture its
 * output (stdout and stderr interleaved, the tail kept when it is large),
 * feed it optional input, stop it on timeout or when we are interrupted.
 * The child runs in its own process group so that a timeout stops its
 * children too. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "core.h"

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

static void stop_child(pid_t pid)
{
    kill(-pid, SIGTERM);
    for (int i = 0; i < 40; i++) {   /* 2 s to go quietly */
        if (waitpid(pid, NULL, WNOHANG) != 0) return;
        usleep(50000);
    }
    kill(-pid, SIGKILL);
}

int provision_proc_run(const provision_proc_opts *o, provision_proc_result *r)
{
    memset(r, 0, sizeof *r);
    int out[2], in[2] = { -1, -1 }, errp[2];
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        snprintf(r->error, sizeof r->error, "pipe: %s", strerror(errno));
        return -1;
    }
    if (o->input && pipe2(in, O_CLOEXEC) < 0) {
        snprintf(r->error, sizeof r->error, "pipe: %s", strerror(errno));
        close(out[0]); close(out[1]); close(errp[0]); close(errp[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(r->error, sizeof r->error, "fork: %s", strerror(errno));
        close(out[0]); close(out[1]); close(errp[0]); close(errp[1]);
        if (in[0] >= 0) { close(in[0]); close(in[1]); }
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
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
        if (o->cwd && chdir(o->cwd) < 0) goto fail;
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
    setpgid(pid, pid);

    /* Did exec work? The error pipe closes on exec (CLOEXEC) or carries why not. */
    char ebuf[200];
    ssize_t en;
    while ((en = read(errp[0], ebuf, sizeof ebuf - 1)) < 0 && errno == EINTR) {}
    close(errp[0]);
    if (en > 0) {
        ebuf[en] = '\0';
        snprintf(r->error, sizeof r->error, "%s", ebuf);
        waitpid(pid, NULL, 0);
        close(out[0]);
        if (in[1] >= 0) close(in[1]);
        return -1;
    }

    tailbuf buf = { NULL, 0, 0, o->capture_max ? o->capture_max : (1 << 20) };
    size_t in_off = 0;
    if (in[1] >= 0) fcntl(in[1], F_SETFL, O_NONBLOCK);
    double deadline = o->timeout > 0 ? provision_now() + o->timeout : 0;
    int open_out = 1;
    while (open_out) {
        struct pollfd fds[2] = { { out[0], POLLIN, 0 }, { in[1], POLLOUT, 0 } };
        int nfds = in[1] >= 0 ? 2 : 1;
        int pr = poll(fds, (nfds_t)nfds, 100);
        if (provision_interrupted()) { r->interrupted = 1; break; }
        if (deadline && provision_now() > deadline) { r->timed_out = 1; break; }
        if (pr <= 0) continue;
        if (fds[0].revents) {
            char chunk[16384];
            ssize_t n = read(out[0], chunk, sizeof chunk);
            if (n > 0) {
                tail_add(&buf, chunk, (size_t)n);
                if (o->passthrough) { ssize_t w = write(2, chunk, (size_t)n); (void)w; }
            } else if (n == 0 || errno != EINTR) open_out = 0;
        }
        if (nfds == 2 && fds[1].revents) {
            ssize_t n = write(in[1], o->input + in_off, o->input_len - in_off);
            if (n > 0) in_off += (size_t)n;
            if (n < 0 && errno != EAGAIN && errno != EINTR) in_off = o->input_len;
            if (in_off >= o->input_len) { close(in[1]); in[1] = -1; }
        }
    }
    if (in[1] >= 0) close(in[1]);
    close(out[0]);
    int st = 0;
    if (r->timed_out || r->interrupted) {
        stop_child(pid);
        st = 0;
        waitpid(pid, &st, 0);
        r->status = r->timed_out ? 124 : 130;
    } else {
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
        r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
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
