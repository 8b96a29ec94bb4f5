/* core.h: what the core offers the modules (modules/NAME.c) and main. */
#ifndef PROVISION_CORE_H
#define PROVISION_CORE_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>
#include <lua.h>
#include <lauxlib.h>

/* Lua stack balance checks for stack-heavy C (as mpv's player/lua.c):
 *     STACK_ENTER(L);  ...  STACK_LEAVE(L, 1);   (one value left pushed)
 * checked in the sanitizer build (make SANITIZE=..., -DPROVISION_STACK_CHECK),
 * nothing otherwise. Only on a normal return: a raise leaves early. */
#ifdef PROVISION_STACK_CHECK
#include <assert.h>
#define STACK_ENTER(L) int stack_top_ = lua_gettop(L); (void)stack_top_
#define STACK_LEAVE(L, pushed) assert(lua_gettop(L) == stack_top_ + (pushed))
#else
#define STACK_ENTER(L) ((void)0)
#define STACK_LEAVE(L, pushed) ((void)0)
#endif

/* Exit codes: the CLI contract (DESIGN.md). */
enum {
    EXIT_OK = 0,          /* success; plan: nothing to change */
    EXIT_FAILED = 1,      /* a step failed */
    EXIT_USAGE = 2,       /* usage or recipe error, nothing changed */
    EXIT_PENDING = 3,     /* plan found pending changes */
    EXIT_INTERRUPTED = 130
};

/* signals.c: SIGINT/SIGTERM/SIGHUP set a flag, --timeout a deadline; Lua
 * code is stopped by a hook while the shield is down; long C operations
 * poll provision_interrupted() and give up cleanly (a poll also tells the
 * watchdog the main thread is alive). */
void provision_signals_install(lua_State *L);   /* L: the main thread */
int provision_interrupted(void);     /* a signal came, or the step's deadline passed */
int provision_signal_number(void);   /* the signal that came, or 0 */
/* what interrupted the run ("SIGINT", ..., "stdin closed (the controller
 * went away)"), or NULL */
const char *provision_interrupt_cause(void);
/* From now on EOF on stdin (or a read error) interrupts the run as SIGTERM
 * does; what a thread reads from stdin is dropped. 0, or an errno. */
int provision_interrupt_on_stdin_eof(void);
/* the current step must end within seconds (<= 0: no deadline); kind and
 * name (each may be NULL) say what runs in the watchdog's message: step 'x' */
void provision_set_deadline(double seconds, const char *kind, const char *name);
int provision_timed_out(void);
/* up (1): the hook does not raise; down (0): it does, in thread L. Returns
 * the previous setting. */
int provision_shield(lua_State *L, int on);

/* clock.c */
double provision_now(void);          /* monotonic seconds */
void provision_sleep(double seconds); /* returns early when interrupted */

/* atomicio.c: write a whole file atomically: temp file beside path, fsync,
 * rename, fsync of the folder; the folder reached as tree.h says. mode < 0
 * keeps the existing file's mode when that file is ours (else 0644). uid / gid >= 0: the temp file is given that owner
 * before the rename, so the file never appears with another one (-1: the
 * process's). Returns 0, or -1 with errno set and a message in err. */
int provision_write_atomic(const char *path, const void *data, size_t len,
                           int mode, int uid, int gid, char *err, size_t errlen);
/* the same, the temp file named temp (beside path) rather than a random
 * name: a caller that recorded the name first can remove what a killed
 * run left */
int provision_write_atomic_as(const char *path, const void *data, size_t len, int mode, int uid, int gid,
                              const char *temp, char *err, size_t errlen);
/* the same for name in the folder dfd (shown: its path, for messages) */
int provision_write_atomic_at(int dfd, const char *name, const char *shown, const void *data, size_t len,
                              int mode, int uid, int gid, const char *temp, char *err, size_t errlen);
/* The same, saying when the write is to be on disk (issue 19):
 *   WRITE_SYNC_NOW    the temp file fsync'd before the rename, the folder
 *                     after it (what provision_write_atomic_at does);
 *   WRITE_SYNC_DATA   the temp file fsync'd before the rename (after a power
 *                     failure the name holds the old content or the new,
 *                     whole); the rename itself is on disk at the next
 *                     provision_sync_written;
 *   WRITE_SYNC_LATER  no fsync at all: content and rename are on disk at the
 *                     next provision_sync_written (for a name where nothing
 *                     was: after a power failure before it, the name may be
 *                     missing, or hold a file of ours not whole, never
 *                     another content that was there).
 * Other processes see the old file or the new one whole, whichever it is:
 * the temp file and the rename stay. When the filesystem cannot be noted
 * for later (too many filesystems in one run), it is WRITE_SYNC_NOW. */
enum { WRITE_SYNC_NOW = 0, WRITE_SYNC_DATA = 1, WRITE_SYNC_LATER = 2 };
int provision_write_atomic_sync(int dfd, const char *name, const char *shown, const void *data, size_t len,
                                int mode, int uid, int gid, const char *temp, int sync, char *err, size_t errlen);
/* Everything written with WRITE_SYNC_DATA or WRITE_SYNC_LATER since the last
 * call on disk: one syncfs per filesystem written to. 0, or -1 with errno
 * and "PATH: why" in err (PATH: a file written on the filesystem that
 * failed). A failure is kept: every later call fails the same way (the
 * kernel reports a writeback error once; what it lost is not known to be
 * on disk, ever). */
int provision_sync_written(char *err, size_t errlen);
/* how many writes wait for provision_sync_written */
long provision_sync_pending(void);
/* a change made in the folder dirfd (a link, a folder made: no data of its
 * own) left for the next provision_sync_written: its filesystem noted, or
 * else (too many filesystems, the folder not readable) the folder fsync'd
 * now */
void provision_sync_note_dir(int dirfd, const char *shown);
/* write all of data to fd (EINTR retried); 0, or -1 with errno */
int provision_write_all(int fd, const void *data, size_t len);
/* lcore.c: the string argument arg as a path: raises when it holds a NUL
 * byte (C would silently cut "a\0b" to "a"). */
const char *provision_checkpath(lua_State *L, int arg);
/* lcore.c: an operational failure, the one convention (luaL_fileresult's):
 * pushes nil, the message ("what: why"; lua_pushfstring's formats), e (an
 * errno); returns 3 */
__attribute__((format(printf, 3, 4)))
int provision_fail(lua_State *L, int e, const char *fmt, ...);
/* Read a whole file (reached as tree.h says); caller frees. NULL with errno
 * set on failure, and with provision_read, "path: why" in err. */
char *provision_read_file(const char *path, size_t *len);
char *provision_read(const char *path, size_t *len, char *err, size_t errlen);

/* utf8.c: where the first byte that is not well-formed UTF-8 is in s (n
 * bytes: n when all are), and 1 when s is well-formed */
size_t provision_utf8_bad(const char *s, size_t n);
int provision_utf8_valid(const char *s, size_t n);

/* embed.c: the Lua half compiled into the binary, and the built-in C modules. */
void provision_open_builtins(lua_State *L);

/* proc.c: run a process (argv only, never a shell). */
typedef struct provision_proc_opts {
    const char *const *argv;   /* argv[0] looked up in PATH */
    const char *cwd;           /* NULL: inherit */
    const char *const *env;    /* NULL: inherit; else extra KEY=VALUE entries */
    const char *input;         /* NULL: /dev/null on stdin */
    size_t input_len;
    double timeout;            /* seconds; <= 0: none */
    int passthrough;           /* also copy output to stderr as it arrives */
    size_t capture_max;        /* keep at most this much (the tail); 0: 1 MiB */
} provision_proc_opts;

typedef struct provision_proc_result {
    int status;       /* exit code, or 128+signal */
    int timed_out;
    int interrupted;
    char *output;     /* stdout and stderr as they interleaved; caller frees */
    size_t output_len;
    char error[256];  /* set when the process could not be started */
} provision_proc_result;

int provision_proc_run(const provision_proc_opts *o, provision_proc_result *r);

/* procs.c: run many processes at once (argv only), each with its own stdin,
 * stdout and stderr; every line of their output as it comes. */
typedef struct provision_procs_job {
    const char *const *argv;   /* argv[0] looked up in PATH */
    const char *const *env;    /* NULL: inherit; else extra KEY=VALUE entries */
    const char *input;         /* written to its stdin; NULL: none */
    size_t input_len;
    int hold_stdin;            /* stdin stays open after the input until the job ends or an interrupt */
    /* the result */
    int status;                /* exit code; -1: none (a signal, or not started) */
    int signal;                /* the signal that ended it, or 0 */
    int interrupted;           /* it was running when the run was interrupted */
    int not_started;           /* the run was interrupted before its turn */
    double seconds;            /* wall time, from its start to its exit */
    char error[256];           /* "prog: why" when it could not be started */
} provision_procs_job;

/* one line of job i's output (stream 1: stdout, 2: stderr) without its
 * newline; borrowed: copy it. Nonzero: every job is stopped at once, and
 * provision_procs_run returns 1. */
typedef int (*provision_procs_line)(void *ud, size_t i, int stream, const char *line, size_t len);

typedef struct provision_procs_opts {
    size_t forks;              /* at most this many running at once; 0: all */
    double grace;              /* seconds to end after an interrupt, before SIGTERM */
    provision_procs_line on_line;   /* NULL: output dropped */
    void *ud;
} provision_procs_opts;

/* 0 once every job has ended (each one's result set), 1 when on_line asked
 * to stop (every job stopped and reaped), -1 with errno when memory ran out
 * (nothing started) */
int provision_procs_run(provision_procs_job *jobs, size_t n, const provision_procs_opts *o);

/* Every built-in C module (modules/<name>.c): one exported symbol each. */
#define MODULE(n) int luaopen_provision_##n(lua_State *L);
#include "modules.inc"
#undef MODULE
int luaopen_provision_core(lua_State *L);
/* lstate.c: the state folder's functions, into the _core table on the stack */
void provision_open_statedir(lua_State *L);
/* lreport.c: core.step_line (report.lua's step line written in C),
 * core.buffer_stdout and core.claim_stdout */
void provision_open_report(lua_State *L);
void provision_open_diff(lua_State *L);

/* alloc.c: the Lua state's allocator, blocks of up to 32 KiB by size class:
 * init reserves its region (0: it could not, keep Lua's), exit makes
 * every free a no-op (the kernel takes the heap at exit) */
int provision_alloc_init(void);
void provision_alloc_exit(void);
size_t provision_alloc_used(void);   /* the region's bytes handed out so far */
void *provision_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

/* options.c: core.options_plan and core.check_options, the fast path of a
 * resource's options check (into the table at the top) */
void provision_open_options(lua_State *L);
/* the text at idx, a string or a bytes userdata (dir:read(name, "bytes")):
 * raises on anything else */
const char *provision_checkbytes(lua_State *L, int idx, size_t *len);

#endif
