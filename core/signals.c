/* signals.c: how a run stops. SIGINT, SIGTERM and SIGHUP (a remote run
 * whose ssh session hangs up) set a flag; so does EOF on stdin once
 * provision_interrupt_on_stdin_eof() asked for it (the remote side: its
 * controller went away). --timeout sets a deadline for the current step (or
 * the recipe's load). Lua code meets either as an error raised by a count
 * hook ("interrupted", "timed out"); blocking C code polls
 * provision_interrupted() and gives up.
 *
 * The hook raises only while the shield is down. The runner keeps it up
 * around its own bookkeeping (reporting, saving the state) and lowers it
 * only while it runs recipe and resource code; cleanup that must finish
 * after an interrupt (a <close> handler) raises it again (lcore.c: shield,
 * shielded, exposed, guard). Recipe code may catch the error with pcall
 * and go on: once raised, the hook runs at every instruction, so the first
 * one after the pcall raises it again.
 *
 * A count hook costs a call at every Lua instruction whatever its count
 * (Lua 5.4 counts in luaG_traceexec): 13% of a no-op run. So it is on only
 * while the shield is down and there is something to watch for: a deadline
 * (--timeout; the recipe's load has one too, so a coroutine it makes
 * inherits the hook) or a signal (the handler sets it on the main thread,
 * as lua.c does). A coroutine made with no hook, spinning when a signal
 * comes, is left to the watchdog.
 *
 * The watchdog ends the process when the deadline has passed or a signal
 * came and the main thread has shown no sign of life (a hook run, a poll
 * of provision_interrupted()) for GRACE seconds: in one long C call (a
 * backtracking string.find) it sees neither. It never touches the Lua
 * state. It is a thread, started only when there is something to watch: a
 * thread from the start costs 1.7% of a no-op run (glibc's malloc takes
 * its locks once a second thread exists). A --timeout starts it; after a
 * signal, the main thread starts it when it notices, and if it never does,
 * a SIGALRM GRACE later stops the run.
 *
 * A second signal while the first is being handled kills the process, and
 * the process groups of the programs it was running (proc.c, procs.c); one
 * that comes within 100 ms of the first is the same request delivered
 * twice, not a second press: `timeout` sends its signal to the child and
 * then to the child's process group, and a shell's `kill` of a job may do
 * the same. Stdin's EOF is no press at all: a signal after it is still the
 * first.
 *
 * SIGHUP ignored from the start (nohup) stays ignored. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include "core.h"
#include "signals.h"

#define HOOK_EVERY 10000   /* instructions between two runs of the hook */
#define GRACE 2.0          /* seconds without a sign of life before the watchdog acts */
#define TICK_NS 100000000L /* the watchdog's period */

static atomic_int interrupted;            /* the signal that came, 0: none */
static _Atomic double interrupted_at;     /* provision_now() of the first one */
static _Atomic double pressed_at;         /* of the first signal (stdin's EOF is none), 0: none */
static atomic_ulong beat_at_signal;       /* the heartbeat then */
static atomic_int child_pgid;             /* see signals.h */
static _Atomic(const provision_signal_groups *) groups;   /* the last pushed */
static atomic_int by_stdin;               /* the interrupt was stdin's EOF */
static atomic_int stdin_watched;          /* its thread was started */
static _Atomic double deadline;           /* provision_now() time, 0: none */
static _Atomic double timeout_len;        /* its --timeout, for the message */
static atomic_ulong heartbeat;            /* signs of life of the main thread */
static atomic_int watching;               /* the watchdog thread runs */
static pthread_t main_thread;
static lua_State *main_L;
static int shield;                        /* main thread only, as is Lua */

/* what runs, for the message: the main thread writes the buffer not in
 * use, then flips which one is */
static char what_runs[2][160];
static atomic_int what_cur;

void provision_signals_child(pid_t pgid) { atomic_store(&child_pgid, (int)pgid); }

void provision_signals_push_groups(provision_signal_groups *g)
{
    g->prev = atomic_load(&groups);
    atomic_store(&groups, g);
}

void provision_signals_pop_groups(const provision_signal_groups *g) { atomic_store(&groups, g->prev); }

void provision_signals_alive(void) { atomic_fetch_add_explicit(&heartbeat, 1, memory_order_relaxed); }

static void start_watchdog(void);

static void stop_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    provision_signals_alive();
    if (atomic_load(&interrupted)) start_watchdog();
    const char *why = shield ? NULL : atomic_load(&interrupted) ? "interrupted"
                    : provision_timed_out() ? "timed out (--timeout)" : NULL;
    int every = why ? 1 : HOOK_EVERY;
    if (lua_gethookcount(L) != every) lua_sethook(L, stop_hook, LUA_MASKCOUNT, every);
    if (why) luaL_error(L, "%s", why);
}

int provision_shield(lua_State *L, int on)
{
    int was = shield;
    shield = on;
    if (on) lua_sethook(L, NULL, 0, 0);
    else if (atomic_load(&interrupted) || atomic_load(&deadline) > 0)
        lua_sethook(L, stop_hook, LUA_MASKCOUNT, HOOK_EVERY);
    return was;
}

/* ---- the watchdog: async-signal-safe from here to start_watchdog (the
 * SIGALRM handler runs it too) */

static size_t put(char *buf, size_t at, size_t cap, const char *s)
{
    while (*s && at + 1 < cap) buf[at++] = *s++;
    buf[at] = '\0';
    return at;
}

/* n in decimal, at least width digits */
static size_t put_uint(char *buf, size_t at, size_t cap, unsigned long n, int width)
{
    char d[24];
    int k = 0;
    do { d[k++] = (char)('0' + n % 10); n /= 10; } while (n && k < 20);
    while (k < width) d[k++] = '0';
    while (k && at + 1 < cap) buf[at++] = d[--k];
    buf[at] = '\0';
    return at;
}

/* seconds as the report writes them: "2s", "0.5s", "1m30s", "2h05m" */
static size_t put_secs(char *buf, size_t at, size_t cap, double s)
{
    unsigned long ds = (unsigned long)(s * 10 + 0.5), t = ds / 10;
    if (t >= 3600) {
        at = put_uint(buf, at, cap, t / 3600, 1);
        at = put(buf, at, cap, "h");
        at = put_uint(buf, at, cap, t / 60 % 60, 2);
        return put(buf, at, cap, "m");
    }
    if (t >= 60) {
        at = put_uint(buf, at, cap, t / 60, 1);
        at = put(buf, at, cap, "m");
        at = put_uint(buf, at, cap, t % 60, 2);
        return put(buf, at, cap, "s");
    }
    at = put_uint(buf, at, cap, t, 1);
    if (ds % 10) { at = put(buf, at, cap, "."); at = put_uint(buf, at, cap, ds % 10, 1); }
    return put(buf, at, cap, "s");
}

/* what stopped the run, for messages */
static const char *cause(int sig)
{
    if (atomic_load(&by_stdin)) return "stdin closed (the controller went away)";
    return sig == SIGINT ? "SIGINT" : sig == SIGHUP ? "SIGHUP" : "SIGTERM";
}

/* SIGKILL to the groups of the programs running (not in our process group:
 * they would be left running) */
static void kill_children(void)
{
    pid_t pg = (pid_t)atomic_load(&child_pgid);
    if (pg > 0) kill(-pg, SIGKILL);
    for (const provision_signal_groups *g = atomic_load(&groups); g; g = g->prev)
        for (size_t i = 0; i < g->n; i++)
            if ((pg = (pid_t)atomic_load(&g->pg[i])) > 0) kill(-pg, SIGKILL);
}

/* The main thread is stuck: say so, take its programs along, and exit
 * without touching what it holds (no atexit, no stdio flush). */
static void stop_stuck(int sig, double since, double now)
{
    char line[400];
    const char *what = what_runs[atomic_load(&what_cur)];
    size_t n = put(line, 0, sizeof line, "provision: ");
    n = put(line, n, sizeof line, what[0] ? what : "the run");
    n = put(line, n, sizeof line, " is stuck in a call that cannot be interrupted (");
    if (sig) {
        n = put(line, n, sizeof line, cause(sig));
        n = put(line, n, sizeof line, atomic_load(&by_stdin) ? " " : " came ");
    } else {
        n = put(line, n, sizeof line, "--timeout ");
        n = put_secs(line, n, sizeof line, atomic_load(&timeout_len));
        n = put(line, n, sizeof line, " passed ");
    }
    n = put_secs(line, n, sizeof line, (double)(long)(now - since));
    n = put(line, n, sizeof line, " ago); stopping\n");
    ssize_t w = write(2, line, n);
    (void)w;
    kill_children();
    _exit(sig ? EXIT_INTERRUPTED : EXIT_FAILED);
}

/* a signal came GRACE ago and the main thread has not started the
 * watchdog: it has not run a hook or polled since */
static void on_alarm(int sig)
{
    (void)sig;
    int e = errno;
    if (!atomic_load(&watching) && atomic_load(&heartbeat) == atomic_load(&beat_at_signal))
        stop_stuck(atomic_load(&interrupted), atomic_load(&interrupted_at), provision_now());
    errno = e;
}

static void *watchdog(void *arg)
{
    (void)arg;
    unsigned long seen = atomic_load(&heartbeat);
    double alive_at = provision_now();
    for (;;) {
        struct timespec ts = { 0, TICK_NS };
        nanosleep(&ts, NULL);
        double now = provision_now(), dl = atomic_load(&deadline);
        unsigned long b = atomic_load_explicit(&heartbeat, memory_order_relaxed);
        if (b != seen) { seen = b; alive_at = now; }
        int sig = atomic_load(&interrupted);
        double since = sig ? atomic_load(&interrupted_at) : dl > 0 && now > dl ? dl : 0;
        if (since > 0 && now - (since > alive_at ? since : alive_at) >= GRACE)
            stop_stuck(sig, since, now);
    }
    return NULL;
}

/* main thread only */
static void start_watchdog(void)
{
    if (atomic_load(&watching)) return;
    atomic_store(&watching, 1);
    /* signals stay with the main thread: its blocking calls see EINTR */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t t;
    if (pthread_create(&t, NULL, watchdog, NULL) == 0) pthread_detach(t);
    else atomic_store(&watching, 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* The run is interrupted from now on: the flag, the hook on the main
 * thread, the alarm in case it never notices. Async-signal-safe. */
static void mark_interrupted(int sig)
{
    atomic_store(&interrupted_at, provision_now());   /* clock_gettime: async-signal-safe */
    atomic_store(&beat_at_signal, atomic_load(&heartbeat));
    atomic_store(&interrupted, sig);
    /* lua_sethook may be called from a signal handler (lua.c's laction);
     * with the shield up the hook only runs */
    if (main_L) lua_sethook(main_L, stop_hook, LUA_MASKCOUNT, 1);
    if (!atomic_load(&watching)) {   /* glibc's alarm() is this setitimer */
        struct itimerval it = { { 0, 0 }, { (time_t)GRACE, 100000 } };
        setitimer(ITIMER_REAL, &it, NULL);
    }
}

static void on_signal(int sig, siginfo_t *info, void *uc)
{
    (void)uc;
    int e = errno;
    if (info && info->si_code == SI_TKILL && info->si_pid == getpid()) {
        /* from stdin_watch: it wakes the main thread's blocking call */
        if (!atomic_load(&interrupted)) { atomic_store(&by_stdin, 1); mark_interrupted(sig); }
        errno = e;
        return;
    }
    double first = atomic_load(&pressed_at);
    if (first > 0) {   /* second time: give up at once */
        if (provision_now() - first < 0.1) { errno = e; return; }   /* the same one */
        kill_children();   /* not left behind, orphaned */
        signal(sig, SIG_DFL);
        raise(sig);
        errno = e;
        return;
    }
    atomic_store(&pressed_at, provision_now());
    if (!atomic_load(&interrupted)) mark_interrupted(sig);
    errno = e;
}

/* The remote side's stdin: bytes are dropped; EOF (or an error) interrupts
 * the run as SIGTERM does, through the handler on the main thread, so that
 * its blocking call returns (EINTR) and the hook is set where it runs. */
static void *stdin_watch(void *arg)
{
    (void)arg;
    char buf[4096];
    for (;;) {
        ssize_t n = read(0, buf, sizeof buf);
        if (n > 0 || (n < 0 && errno == EINTR)) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {   /* a non-blocking stdin */
            struct pollfd p = { 0, POLLIN, 0 };
            poll(&p, 1, -1);
            continue;
        }
        break;
    }
    pthread_kill(main_thread, SIGTERM);
    return NULL;
}

int provision_interrupt_on_stdin_eof(void)
{
    if (atomic_exchange(&stdin_watched, 1)) return 0;
    /* signals stay with the main thread */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t t;
    int e = pthread_create(&t, NULL, stdin_watch, NULL);
    if (e == 0) pthread_detach(t);
    else atomic_store(&stdin_watched, 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return e;
}

const char *provision_interrupt_cause(void)
{
    int sig = atomic_load(&interrupted);
    return sig ? cause(sig) : NULL;
}

void provision_signals_install(lua_State *L)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO;   /* no SA_RESTART: a blocking call returns, EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct sigaction hup;
    if (sigaction(SIGHUP, NULL, &hup) == 0 && hup.sa_handler != SIG_IGN) sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    main_thread = pthread_self();
    main_L = L;
}

void provision_set_deadline(double seconds, const char *kind, const char *name)
{
    /* per step: two copies, not a formatted string */
    int next = !atomic_load(&what_cur);
    char *p = what_runs[next], *end = p + sizeof what_runs[next] - 3;
    for (const char *s = kind; s && *s && p < end; ) *p++ = *s++;
    if (kind && name && p < end) *p++ = ' ';
    if (name) {
        *p++ = '\'';
        for (const char *s = name; *s && p < end; ) *p++ = *s++;
        *p++ = '\'';
    }
    *p = '\0';
    atomic_store(&what_cur, next);
    atomic_store(&timeout_len, seconds);
    atomic_store(&deadline, seconds > 0 ? provision_now() + seconds : 0);
    if (seconds > 0 && pthread_equal(pthread_self(), main_thread)) start_watchdog();
}

int provision_timed_out(void)
{
    double dl = atomic_load(&deadline);
    return dl > 0 && provision_now() > dl;
}

int provision_interrupted(void)
{
    int sig = atomic_load(&interrupted);
    if (pthread_equal(pthread_self(), main_thread)) {
        provision_signals_alive();
        if (sig) start_watchdog();
    }
    return sig != 0 || provision_timed_out();
}

int provision_signal_number(void) { return atomic_load(&interrupted); }
