/* embedgen: turns the files under lua/ into a C include that the core's
 * module searcher reads (core/embed.c). Usage: embedgen lua/a/b.lua ... > x.inc
 * Module name: the path less "lua/" and ".lua", "/" -> "." ("x/init" -> "x").
 * Each file is compiled here and embedded as Lua bytecode: a run then
 * skips parsing ~4,000 lines of Lua, about 4 ms. The bytecode keeps the
 * source name and line numbers, so errors still name
 * lua/provision/x.lua:LINE, but not the names of local variables and
 * upvalues (no_names below): loading those was a third of what a 10-step
 * no-op cost (issue 19: a string each, interned). The bytecode comes from
 * the same liblua5.4 the binary links, so the two always agree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>

/* bytes, growing */
struct buf { unsigned char *p; size_t n, cap; };

static void put(struct buf *b, const void *p, size_t n)
{
    if (n == 0) return;   /* (p may be NULL then: memcpy's arguments must not be) */
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) { perror("embedgen"); exit(1); }
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static int collect(lua_State *L, const void *p, size_t sz, void *ud)
{
    (void)L;
    put(ud, p, sz);
    return 0;
}

/* ---- no_names: Lua 5.4's dump (lundump.c reads it) copied whole but for
 * the local variables' and upvalues' names, which go (as lua_dump's strip
 * drops them, and the line information with them). */
struct rd { const unsigned char *p, *end; int bad; };

static void copy(struct rd *r, size_t n, struct buf *o)
{
    if (r->bad || (size_t)(r->end - r->p) < n) { r->bad = 1; return; }
    put(o, r->p, n);
    r->p += n;
}

/* a size: 7 bits a byte, most significant first, the last byte's 0x80 set */
static size_t size_of(struct rd *r)
{
    size_t x = 0;
    for (;;) {
        if (r->bad || r->p >= r->end || x >> (sizeof x * 8 - 8)) { r->bad = 1; return 0; }
        unsigned b = *r->p++;
        x = (x << 7) | (b & 0x7f);
        if (b & 0x80) return x;
    }
}

static size_t copy_size(struct rd *r, struct buf *o)
{
    const unsigned char *at = r->p;
    size_t x = size_of(r);
    if (!r->bad) put(o, at, (size_t)(r->p - at));
    return x;
}

/* a string: its size + 1 (0: none), then its bytes */
static void copy_string(struct rd *r, struct buf *o)
{
    size_t n = copy_size(r, o);
    if (n) copy(r, n - 1, o);
}

static void skip_string(struct rd *r)
{
    size_t n = size_of(r);
    if (n && !r->bad) {
        if ((size_t)(r->end - r->p) < n - 1) r->bad = 1;
        else r->p += n - 1;
    }
}

static const unsigned char NONE = 0x80;   /* the size 0 */

static void function(struct rd *r, struct buf *o, int depth)
{
    if (depth > 200) { r->bad = 1; return; }
    copy_string(r, o);                                  /* source */
    copy_size(r, o);                                    /* linedefined */
    copy_size(r, o);                                    /* lastlinedefined */
    copy(r, 3, o);                                      /* numparams, is_vararg, maxstacksize */
    size_t n = copy_size(r, o);                         /* code */
    if (n > (size_t)(r->end - r->p) / 4) r->bad = 1;
    copy(r, n * 4, o);
    n = copy_size(r, o);                                /* constants */
    for (size_t i = 0; i < n && !r->bad; i++) {
        unsigned char tag = r->p < r->end ? *r->p : 0xff;
        copy(r, 1, o);
        switch (tag) {
        case 0x00: case 0x01: case 0x11: break;         /* nil, false, true */
        case 0x03: case 0x13: copy(r, 8, o); break;     /* integer, float */
        case 0x04: case 0x14: copy_string(r, o); break; /* short, long string */
        default: r->bad = 1;
        }
    }
    n = copy_size(r, o);                                /* upvalues: instack, idx, kind */
    if (n > (size_t)(r->end - r->p) / 3) r->bad = 1;
    copy(r, n * 3, o);
    n = copy_size(r, o);                                /* nested functions */
    for (size_t i = 0; i < n && !r->bad; i++) function(r, o, depth + 1);
    n = copy_size(r, o);                                /* line information */
    copy(r, n, o);
    n = copy_size(r, o);                                /* absolute line information: pc, line */
    for (size_t i = 0; i < n && !r->bad; i++) { copy_size(r, o); copy_size(r, o); }
    n = size_of(r);                                     /* local variables: name, startpc, endpc */
    for (size_t i = 0; i < n && !r->bad; i++) { skip_string(r); size_of(r); size_of(r); }
    put(o, &NONE, 1);
    n = size_of(r);                                     /* upvalue names */
    for (size_t i = 0; i < n && !r->bad; i++) skip_string(r);
    put(o, &NONE, 1);
}

/* the dump d without the names, in o; 0, or -1 when d is not the 5.4
 * format this reads */
static int no_names(const struct buf *d, struct buf *o)
{
    static const unsigned char head[] = { 0x1b, 'L', 'u', 'a', 0x54, 0, 0x19, 0x93, '\r', '\n', 0x1a, '\n', 4 };
    struct rd r = { d->p, d->p + d->n, 0 };
    if (d->n < 31 || memcmp(d->p, head, sizeof head) != 0) return -1;
    copy(&r, 31, o);                                    /* the header (lundump.c's checkHeader) */
    copy(&r, 1, o);                                     /* the main function's number of upvalues */
    function(&r, o, 0);
    return r.bad || r.p != r.end ? -1 : 0;
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
        struct buf dump = { 0 }, out = { 0 };
        lua_dump(L, collect, &dump, 0);
        lua_pop(L, 1);
        /* what is embedded must load: checked here, at build time */
        /* (no_names failing leaves the stack empty: the message is loadbuffer's only) */
        if (no_names(&dump, &out) < 0 || luaL_loadbufferx(L, (const char *)out.p, out.n, chunkname, "b") != LUA_OK) {
            const char *why = lua_gettop(L) > 0 && lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;
            fprintf(stderr, "embedgen: %s: the bytecode without names does not load%s%s\n", argv[i],
                    why ? ": " : "", why ? why : "");
            return 1;
        }
        lua_pop(L, 1);
        printf("static const char lua_src_%d[] = {", i);
        for (size_t k = 0; k < out.n; k++) printf("%s%d,", k % 24 == 0 ? "\n" : "", out.p[k]);
        printf("0};\n");
        free(dump.p);
        free(out.p);
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
