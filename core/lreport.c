/* lreport.c: report.lua's hot path, the step line.
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
#include <stdio.h>
#include <stdlib.h>
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

/* buffer_stdout(size): stdout fully buffered in size bytes, its buffer
 * flushed first. (Lua's file:setvbuf cannot: glibc takes no size without a
 * buffer of the caller's, and gives a pipe 4 KiB: a plan of 142,000 files,
 * 25 MB of lines, was 6,000 writes and as many wake-ups of the reader.)
 * Once a process: the buffer is never freed (stdout lives to exit). */
static int core_buffer_stdout(lua_State *L)
{
    static char *buf;
    lua_Integer size = luaL_checkinteger(L, 1);
    luaL_argcheck(L, size >= 1024 && size <= (1 << 24), 1, "a size from 1 KiB to 16 MiB");
    if (buf) return 0;
    fflush(stdout);
    buf = malloc((size_t)size);
    if (buf && setvbuf(stdout, buf, _IOFBF, (size_t)size) != 0) { free(buf); buf = NULL; }
    return 0;
}

void provision_open_report(lua_State *L)
{
    lua_pushcfunction(L, core_step_line);
    lua_setfield(L, -2, "step_line");
    lua_pushcfunction(L, core_buffer_stdout);
    lua_setfield(L, -2, "buffer_stdout");
}
