/* signals.c: SIGINT and SIGTERM ask the run to stop. The handler only sets a
 * flag and a Lua hook (as lua.c's laction does); the hook raises "interrupted"
 * at the next Lua instruction, C code that blocks polls provision_interrupted().
 * A second signal while the first is being handled kills the process, and
 * the process group of the program it was running (proc.c). */
#include <string.h>
#include "core.h"
#include "signals.h"

static volatile sig_atomic_t interrupted;
static volatile sig_atomic_t child_pgid;   /* see signals.h */

void provision_signals_child(pid_t pgid) { child_pgid = (sig_atomic_t)pgid; }
static lua_State *signal_L;

static void stop_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted");
}

static void on_signal(int sig)
{
    if (interrupted) {   /* second time: give up at once */
        pid_t pg = (pid_t)child_pgid;
        if (pg > 0) kill(-pg, SIGKILL);   /* not left behind, orphaned */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    interrupted = sig;
    if (signal_L)
        lua_sethook(signal_L, stop_hook,
                    LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

void provision_signals_install(lua_State *L)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    signal_L = L;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* --timeout: a deadline for the current step. Blocking C code sees it as
 * an interruption (provision_interrupted); Lua code is stopped by a count
 * hook that raises "timed out". */
static double deadline;

static void deadline_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    if (deadline > 0 && provision_now() > deadline) {
        lua_sethook(L, NULL, 0, 0);
        luaL_error(L, "timed out (--timeout)");
    }
}

void provision_set_deadline(lua_State *L, double at)
{
    deadline = at;
    if (at > 0) lua_sethook(L, deadline_hook, LUA_MASKCOUNT, 10000);
    else if (!interrupted) lua_sethook(L, NULL, 0, 0);
}

int provision_timed_out(void) { return deadline > 0 && provision_now() > deadline; }

int provision_interrupted(void) { return interrupted != 0 || provision_timed_out(); }
int provision_signal_number(void) { return interrupted; }
