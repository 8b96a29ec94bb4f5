/* signals.c: how a run stops. SIGINT and SIGTERM set a flag; --timeout sets
 * a deadline for the current step (or the recipe's load). Lua code meets
 * either as an error raised by a count hook ("interrupted", "timed out");
 * blocking C code polls provision_interrupted() and gives up.
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
 * (--timeout) or a signal (the handler sets it on the main thread, as
 * lua.c does). A coroutine made with no hook, spinning when a signal
 * comes, is not stopped by it.
 *
 * A second signal while the first is being handled kills the process, and
 * the process group of the program it was running (proc.c); one that comes
 * within 100 ms of the first is the same request delivered twice, not a
 * second press: `timeout` sends its signal to the child and then to the
 * child's process group, and a shell's `kill` of a job may do the same. */
#include <stdatomic.h>
#include <string.h>
#include "core.h"
#include "signals.h"

#define HOOK_EVERY 10000   /* instructions between two runs of the hook */

static atomic_int interrupted;            /* the signal that came, 0: none */
static _Atomic double interrupted_at;     /* provision_now() of the first one */
static atomic_int child_pgid;             /* see signals.h */
static _Atomic double deadline;           /* provision_now() time, 0: none */
static lua_State *main_L;
static int shield;                        /* main thread only, as is Lua */

void provision_signals_child(pid_t pgid) { atomic_store(&child_pgid, (int)pgid); }

static void stop_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
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

static void on_signal(int sig)
{
    if (atomic_load(&interrupted)) {   /* second time: give up at once */
        if (provision_now() - atomic_load(&interrupted_at) < 0.1) return;   /* the same one */
        pid_t pg = (pid_t)atomic_load(&child_pgid);
        if (pg > 0) kill(-pg, SIGKILL);   /* not left behind, orphaned */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    atomic_store(&interrupted_at, provision_now());   /* clock_gettime: async-signal-safe */
    atomic_store(&interrupted, sig);
    /* lua_sethook may be called from a signal handler (lua.c's laction);
     * with the shield up the hook only runs */
    if (main_L) lua_sethook(main_L, stop_hook, LUA_MASKCOUNT, 1);
}

void provision_signals_install(lua_State *L)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    main_L = L;
}

void provision_set_deadline(double seconds)
{
    atomic_store(&deadline, seconds > 0 ? provision_now() + seconds : 0);
}

int provision_timed_out(void)
{
    double dl = atomic_load(&deadline);
    return dl > 0 && provision_now() > dl;
}

int provision_interrupted(void) { return atomic_load(&interrupted) != 0 || provision_timed_out(); }

int provision_signal_number(void) { return atomic_load(&interrupted); }
