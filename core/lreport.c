/* lreport.c: what report.lua writes through: the step line (its hot
 * path), stdout's buffer, and --json's claim on stdout.
 *
 *   _core.step_line(file, i, of_n, name, name_width, label, took, detail, changes)
 *
 * writes a step's line as Report:step words it, then each change line
 * indented six spaces, into file's buffer (io.stdout, a luaL_Stream):
 *
 *   "[" i of_n    padded to #of_n * 2 - 1 ("[12/140]" in "[12/140]     ")
 *   " " name      padded to name_width
 *   " " label     (its status, painted and padded already)
 *   " " took      right-aligned in 6 ("12ms")
 *   "  " detail   (when detail is a non-empty string)
 *   "\n", then "      " line "\n" for each string of changes (nil: none)
 *
 * No Lua string is made: a plan of 142,000 steps writes 142,000 of these,
 * and built in Lua each was a dozen strings to intern and collect. The
 * caller keeps the paths this cannot take (colour, secrets to mask). A
 * write error is left to the stream (as file:write's result is left). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "core.h"

static void spaces(FILE *f, long n)
{
    for (; n > 0; n--) putc_unlocked(' ', f);
}

static int core_step_line(lua_State *L)
{
    luaL_Stream *p = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
    if (p->closef == NULL) return luaL_error(L, "attempt to use a closed file");
    FILE *f = p->f;
    lua_Integer i = luaL_checkinteger(L, 2);
    size_t of_len, name_len, label_len, took_len, detail_len = 0;
    const char *of_n = luaL_checklstring(L, 3, &of_len);
    const char *name = luaL_checklstring(L, 4, &name_len);
    lua_Integer name_width = luaL_checkinteger(L, 5);
    const char *label = luaL_checklstring(L, 6, &label_len);
    const char *took = luaL_checklstring(L, 7, &took_len);
    const char *detail = luaL_optlstring(L, 8, NULL, &detail_len);
    int changes = !lua_isnoneornil(L, 9);
    if (changes) luaL_checktype(L, 9, LUA_TTABLE);

    char num[32];
    int n = snprintf(num, sizeof num, "[" LUA_INTEGER_FMT, (LUAI_UACINT)i);
    fwrite_unlocked(num, 1, (size_t)n, f);
    fwrite_unlocked(of_n, 1, of_len, f);
    spaces(f, (long)(of_len * 2 - 1) - (long)(n + of_len));
    putc_unlocked(' ', f);
    fwrite_unlocked(name, 1, name_len, f);
    spaces(f, (long)name_width - (long)name_len);
    putc_unlocked(' ', f);
    fwrite_unlocked(label, 1, label_len, f);
    putc_unlocked(' ', f);
    spaces(f, 6 - (long)took_len);
    fwrite_unlocked(took, 1, took_len, f);
    if (detail_len > 0) {
        fwrite_unlocked("  ", 1, 2, f);
        fwrite_unlocked(detail, 1, detail_len, f);
    }
    putc_unlocked('\n', f);
    if (changes) {
        lua_Integer count = luaL_len(L, 9);
        for (lua_Integer k = 1; k <= count; k++) {
            size_t len;
            int t = lua_rawgeti(L, 9, k);
            if (t != LUA_TSTRING && t != LUA_TNUMBER)   /* (what table.concat takes) */
                return luaL_error(L, "step_line: change line %d is a %s, not a string", (int)k, luaL_typename(L, -1));
            const char *s = lua_tolstring(L, -1, &len);
            fwrite_unlocked("      ", 1, 6, f);
            fwrite_unlocked(s, 1, len, f);
            putc_unlocked('\n', f);
            lua_pop(L, 1);
        }
    }
    return 0;
}

/* Output held by report.lua sits in a stdio buffer of BUFFER bytes, given
 * by us: glibc gives a pipe or a file 4 KiB, and takes no size without a
 * buffer of the caller's (so Lua's file:setvbuf cannot set one). A plan of
 * 142,000 files, 25 MB of lines, was 6,000 writes and as many wake-ups of
 * the reader. */
enum { BUFFER = 1 << 16 };

/* f fully buffered in a buffer of ours, kept in *buf (NULL: none given,
 * stdio's own stays) */
static void own_buffer(FILE *f, char **buf)
{
    if (*buf || !(*buf = malloc(BUFFER))) return;
    if (setvbuf(f, *buf, _IOFBF, BUFFER) != 0) { free(*buf); *buf = NULL; }
}

/* buffer_stdout(): stdout's buffer, flushed first, becomes ours. Once a
 * process: never freed (stdout lives to exit). */
static int core_buffer_stdout(lua_State *L)
{
    static char *buf;
    (void)L;
    if (!buf) fflush(stdout);
    own_buffer(stdout, &buf);
    return 0;
}

static char *claimed_buf;   /* the buffer of claim_stdout's file */

/* the io library's close for the file claim_stdout makes (and its
 * buffer, which fclose leaves: it is ours) */
static int claimed_close(lua_State *L)
{
    luaL_Stream *p = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
    int ok = fclose(p->f) == 0;
    free(claimed_buf);
    claimed_buf = NULL;
    return luaL_fileresult(L, ok, NULL);
}

/* claim_stdout() -> file: an io library file on a private descriptor for
 * what was stdout, which from now on is stderr. With --json, stdout must
 * hold the events alone: print() in a custom step, and any child process
 * that inherits fd 1, end up on stderr instead. The file is stdio's, with
 * a buffer of ours (report.lua holds step events there, as it holds text
 * lines in stdout's), so that exit() flushes it, os.exit in recipe code
 * too. Once a process (report.lua keeps it). */
static int core_claim_stdout(lua_State *L)
{
    fflush(stdout);
    luaL_Stream *p = (luaL_Stream *)lua_newuserdatauv(L, sizeof(luaL_Stream), 0);
    p->closef = NULL;   /* (closed, until it is open) */
    luaL_setmetatable(L, LUA_FILEHANDLE);
    int fd = fcntl(1, F_DUPFD_CLOEXEC, 3);
    if (fd < 0 || dup2(2, 1) < 0) {
        if (fd >= 0) close(fd);
        return luaL_fileresult(L, 0, "stdout");
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int e = errno;
        close(fd);
        errno = e;
        return luaL_fileresult(L, 0, "stdout");
    }
    own_buffer(f, &claimed_buf);
    p->f = f;
    p->closef = claimed_close;
    return 1;
}

void provision_open_report(lua_State *L)
{
    lua_pushcfunction(L, core_step_line);
    lua_setfield(L, -2, "step_line");
    lua_pushcfunction(L, core_buffer_stdout);
    lua_setfield(L, -2, "buffer_stdout");
    lua_pushcfunction(L, core_claim_stdout);
    lua_setfield(L, -2, "claim_stdout");
}
