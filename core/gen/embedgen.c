/* embedgen: turns the files under lua/ into a C include that the core's
 * module searcher reads (core/embed.c). Usage: embedgen lua/a/b.lua ... > x.inc
 * Module name: the path less "lua/" and ".lua", "/" -> "." ("x/init" -> "x").
 * Each file is compiled here and embedded as Lua bytecode (with its debug
 * information, so errors still name lua/provision/x.lua:LINE): a run then
 * skips parsing ~4,000 lines of Lua, about 4 ms. The bytecode comes from the
 * same liblua5.4 the binary links, so the two always agree. */
#include <stdio.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>

static int write_chunk(lua_State *L, const void *p, size_t sz, void *ud)
{
    (void)L;
    const unsigned char *b = p;
    int *col = ud;
    for (size_t i = 0; i < sz; i++)
        printf("%s%d,", (*col)++ % 24 == 0 ? "\n" : "", b[i]);
    return 0;
}

static void modname(const char *path, char *out, size_t n)
{
    const char *p = strncmp(path, "lua/", 4) == 0 ? path + 4 : path;
    snprintf(out, n, "%s", p);
    size_t len = strlen(out);
    if (len > 4 && strcmp(out + len - 4, ".lua") == 0) out[len -= 4] = '\0';
    if (len > 5 && strcmp(out + len - 5, "/init") == 0) out[len -= 5] = '\0';
    for (char *c = out; *c; c++) if (*c == '/') *c = '.';
}

int main(int argc, char **argv)
{
    lua_State *L = luaL_newstate();
    if (!L) return 1;
    for (int i = 1; i < argc; i++) {
        char chunkname[600];
        snprintf(chunkname, sizeof chunkname, "@%s", argv[i]);
        FILE *f = fopen(argv[i], "rb");
        if (!f) { perror(argv[i]); return 1; }
        static char src[1 << 20];
        size_t n = fread(src, 1, sizeof src, f);
        fclose(f);
        if (n == sizeof src) { fprintf(stderr, "%s: too large\n", argv[i]); return 1; }
        if (luaL_loadbufferx(L, src, n, chunkname, "t") != LUA_OK) {
            fprintf(stderr, "embedgen: %s\n", lua_tostring(L, -1));
            return 1;
        }
        printf("static const char lua_src_%d[] = {", i);
        int col = 0;
        lua_dump(L, write_chunk, &col, 0);
        lua_pop(L, 1);
        printf("0};\n");
    }
    lua_close(L);
    printf("static const struct embedded_lua embedded_lua[] = {\n");
    for (int i = 1; i < argc; i++) {
        char name[512];
        modname(argv[i], name, sizeof name);
        printf("  {\"%s\", \"@%s\", lua_src_%d, sizeof lua_src_%d - 1},\n", name, argv[i], i, i);
    }
    printf("  {NULL, NULL, NULL, 0}\n};\n");
    return 0;
}
