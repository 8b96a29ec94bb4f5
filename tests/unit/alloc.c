/* Unit tests of core/alloc.c, the Lua state's allocator: random blocks
 * made, grown, shrunk and freed as Lua does (the old size given), each
 * filled with its own pattern and checked at every step against what it
 * must hold (a block handed out twice, a copy cut short, a free list that
 * loses or repeats a block would show); then a real Lua state runs on it. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <lauxlib.h>
#include <lualib.h>
#include "core.h"

static int failures;

static void check(int ok, const char *what)
{
    printf("%s %s\n", ok ? "PASS" : "FAIL", what);
    if (!ok) failures++;
}

/* p is the start of a mapping of its own: page-aligned and mapped */
static int is_mapping(const void *p)
{
    return p && ((uintptr_t)p & 4095) == 0 && msync((void *)p, 4096, MS_ASYNC) == 0;
}
/* no longer mapped */
static int gone(const void *p)
{
    return msync((void *)((uintptr_t)p & ~(uintptr_t)4095), 4096, MS_ASYNC) != 0 && errno == ENOMEM;
}

#define SLOTS 512
static unsigned char *blk[SLOTS];
static size_t len[SLOTS];

static void fill(int i) { for (size_t k = 0; k < len[i]; k++) blk[i][k] = (unsigned char)(i * 31 + k); }
static int intact(int i)
{
    for (size_t k = 0; k < len[i]; k++)
        if (blk[i][k] != (unsigned char)(i * 31 + k)) return 0;
    return 1;
}

/* a size as Lua asks for them: mostly small, some past the small classes,
 * a few past the classes (malloc's), now and then one of 2 MiB or more (a
 * mapping of its own), or just under */
static size_t some_size(void)
{
    unsigned r = (unsigned)rand();
    if (r % 4000 == 0) return ((size_t)2 << 20) - 64 + (unsigned)rand() % ((size_t)5 << 20);
    if (r % 10 == 0) return 257 + r % 5000;
    if (r % 10 == 1) return 257 + r % 40000;
    return 1 + r % 256;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);   /* (a state the bug broke may abort below) */
    check(provision_alloc_init(), "the region is reserved");
    srand(19);
    int ok = 1;
    for (int round = 0; round < 200000 && ok; round++) {
        int i = rand() % SLOTS;
        int op = rand() % 3;
        if (!blk[i]) {
            len[i] = some_size();
            blk[i] = provision_alloc(NULL, NULL, 5 /* a type tag, as Lua passes */, len[i]);
            if (!blk[i] || (uintptr_t)blk[i] % 16) { ok = 0; break; }
            fill(i);
        } else if (op == 0) {
            ok = intact(i);
            provision_alloc(NULL, blk[i], len[i], 0);
            blk[i] = NULL;
        } else {
            ok = intact(i);
            size_t n = some_size(), keep = n < len[i] ? n : len[i];
            unsigned char *p = provision_alloc(NULL, blk[i], len[i], n);
            if (!p || (uintptr_t)p % 16) { ok = 0; break; }
            for (size_t k = 0; k < keep && ok; k++) ok = p[k] == (unsigned char)(i * 31 + k);
            blk[i] = p;
            len[i] = n;
            fill(i);
        }
        /* now and then every live block: none was handed out twice */
        if (round % 20000 == 0)
            for (int j = 0; j < SLOTS && ok; j++) if (blk[j]) ok = intact(j);
    }
    check(ok, "200,000 random makes, grows, shrinks and frees keep every block's bytes, 16-aligned");
    for (int j = 0; j < SLOTS; j++) if (blk[j]) provision_alloc(NULL, blk[j], len[j], 0);

    /* a Lua state on it: tables, strings and closures made and collected */
    lua_State *L = luaL_newstate();
    lua_setallocf(L, provision_alloc, NULL);
    luaL_openlibs(L);
    int rc = luaL_dostring(L,
        "local t = {}\n"
        "for i = 1, 200000 do t[i % 5000 + 1] = { i, tostring(i) .. 'x', function() return i end } end\n"
        "collectgarbage()\n"
        "local s = 0\n"
        "for _, v in ipairs(t) do assert(v[3]() == v[1] and v[2] == v[1] .. 'x'); s = s + 1 end\n"
        "local big, names = {}, {}\n"   /* tables past 2 MiB as they grow, a 6 MiB string */
        "for i = 1, 300000 do big[i] = i; names['k' .. i] = i end\n"
        "local str = string.rep('ab', 3 << 20)\n"
        "for i = 1, 300000, 997 do assert(big[i] == i and names['k' .. i] == i) end\n"
        "assert(#str == 6 << 20 and str:sub(-2) == 'ab')\n"
        "big, names, str = nil, nil, nil; collectgarbage()\n"
        "return s");
    check(rc == LUA_OK && lua_tointeger(L, -1) == 5000, "a Lua state runs on it (200,000 tables made, 5,000 kept)");
    lua_close(L);   /* every block given back: malloc's to malloc (a leak checker sees none left) */

    /* long strings are malloc's: 16 MiB of strings of each class from 320
     * bytes to 32 KiB, made and dropped in turn, would otherwise sit in
     * 28 free lists, each serving only its class (448 MiB kept) */
    L = luaL_newstate();
    lua_setallocf(L, provision_alloc, NULL);
    luaL_openlibs(L);
    size_t used = provision_alloc_used();
    rc = luaL_dostring(L,
        "for lg = 8, 14 do for k = 5, 8 do\n"
        "  local size = k << (lg - 2)\n"
        "  local t = {}\n"
        "  for i = 1, (16 << 20) // size do t[i] = string.rep(string.char(65 + i % 26), size - 32) .. i end\n"
        "  t = nil; collectgarbage()\n"
        "end end\n"
        "return true");
    size_t grew = provision_alloc_used() - used;
    check(rc == LUA_OK, "a Lua state makes and drops 16 MiB of long strings of each class past 256 bytes");
    printf("    (the region grew by %zu KiB)\n", grew >> 10);
    check(grew < ((size_t)16 << 20), "... and the region grows by less than 16 MiB for them (they are malloc's)");
    lua_close(L);

    /* the classes past 256 bytes: 4 to each doubling */
    void *m = provision_alloc(NULL, NULL, 5, 1000);
    check(provision_alloc(NULL, m, 1000, 1024) == m, "1000 -> 1024 bytes: the same class (897-1024), the block stays");
    void *m2 = provision_alloc(NULL, m, 1024, 1025);
    check(m2 != m, "1024 -> 1025 bytes: the next class, another block");
    void *m3 = provision_alloc(NULL, NULL, 5, 900);
    check(m3 == m, "the block freed by the move is handed out again for 900 bytes");
    provision_alloc(NULL, m2, 1025, 0);
    provision_alloc(NULL, m3, 900, 0);

    /* blocks of 2 MiB and more: a mapping each (page-aligned and mapped,
     * where malloc's big blocks sit 16 bytes past a page's start), grown
     * and shrunk with their bytes, unmapped when freed (msync then: ENOMEM) */
    size_t mib = (size_t)1 << 20;
    unsigned char *h = provision_alloc(NULL, NULL, 5, 3 * mib);
    check(is_mapping(h), "3 MiB: a mapping of its own");
    for (size_t k = 0; k < 3 * mib; k++) h[k] = (unsigned char)(k * 7);
    unsigned char *h2 = provision_alloc(NULL, h, 3 * mib, 9 * mib);
    int same = h2 != NULL;
    for (size_t k = 0; k < 3 * mib && same; k++) same = h2[k] == (unsigned char)(k * 7);
    h2[9 * mib - 1] = 1;
    check(same && is_mapping(h2), "3 -> 9 MiB: a mapping, the bytes kept (mremap), the end writable");
    unsigned char *h3 = provision_alloc(NULL, h2, 9 * mib, mib);
    for (size_t k = 0; k < mib && h3; k++) same = same && h3[k] == (unsigned char)(k * 7);
    check(same && h3 && !is_mapping(h3) && gone(h2), "9 -> 1 MiB: malloc's, the bytes kept, the mapping gone");
    unsigned char *h4 = provision_alloc(NULL, h3, mib, 5 * mib);
    for (size_t k = 0; k < mib && h4; k++) same = same && h4[k] == (unsigned char)(k * 7);
    check(same && h4 && is_mapping(h4), "1 -> 5 MiB: a mapping again, the bytes kept");
    provision_alloc(NULL, h4, 5 * mib, 0);
    check(gone(h4), "freed: unmapped");
    unsigned char *almost = provision_alloc(NULL, NULL, 5, 2 * mib - 1);
    check(almost && !is_mapping(almost), "2 MiB less a byte: malloc's");
    unsigned char *grown = provision_alloc(NULL, almost, 2 * mib - 1, 2 * mib);
    check(grown && is_mapping(grown), "... one byte more, 2 MiB: a mapping");
    provision_alloc(NULL, grown, 2 * mib, 0);
    check(gone(grown), "... unmapped when freed");
    unsigned char *ls = provision_alloc(NULL, NULL, LUA_TSTRING, 4 * mib);   /* a long string that big: a mapping too */
    check(is_mapping(ls), "a long string of 4 MiB: a mapping");
    memset(ls, 'x', 4 * mib);
    provision_alloc(NULL, ls, 4 * mib, 0);
    check(gone(ls), "... unmapped when freed");

    /* after alloc_exit a free does nothing: the block freed is not handed out again */
    void *a = provision_alloc(NULL, NULL, 5, 40);
    provision_alloc(NULL, a, 40, 0);
    void *b = provision_alloc(NULL, NULL, 5, 40);
    check(a == b, "a block freed is handed out again");
    provision_alloc_exit();
    provision_alloc(NULL, b, 40, 0);
    void *c = provision_alloc(NULL, NULL, 5, 40);
    check(c != b, "after alloc_exit: a free does nothing (the kernel takes the region at exit)");
    printf("%d failed\n", failures);
    return failures ? 1 : 0;
}
