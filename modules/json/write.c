/* write.c: json.encode's fast path (json.h): the compact text of a value
 * written straight into one buffer, as jansson writes it, without
 * jansson's tree. The tree cost the state save of 14,200 steps 40 MB and
 * 0.31 s (a json_t, a hashtable and their mallocs for each of ~150,000
 * values; now 9 MB, the text itself, and 0.07 s), and every --json event
 * ~10 calls, each with a tree, a dump and a userdata to free them.
 *
 * What jansson writes (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY):
 *   - strings: escapes \" \\ \b \f \n \r \t, \u00XX in capitals for the
 *     other control characters; "/" and non-ASCII as they are;
 *   - integers "%lld"; reals "%.17g", with ".0" added when there is
 *     neither "." nor "e", and the exponent without "+" or leading zeros;
 *   - objects with their keys sorted by their bytes; "," and ":" alone.
 * The fast path is sure only of these. For anything else (a key that is
 * not a string, or holds a NUL; text that is not UTF-8; a non-finite
 * number, a function, nesting past 200, pretty output of a table) it
 * gives up, and encode takes jansson's path from the start: its output,
 * or its error naming where the value is. tests/lua/test_core.lua holds
 * the two paths to one output: every byte, random strings, keys and
 * doubles, nesting, the integer limits.
 *
 * The text and the keys being sorted start in the writer, on the C stack
 * (an event's value needs no allocation at all); past that, each in a
 * userdata held on the Lua stack, made twice as big as needed and copied:
 * whatever raises on the way (memory, a __tostring) leaves nothing to
 * free, and no finalizer is made. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json.h"

#define MAX_DEPTH 200   /* jansson's path refuses deeper (a cycle?) */
#define LOCAL_TEXT 512
#define LOCAL_KEYS 32

typedef struct { const char *s; size_t len; } keyref;
typedef struct {
    char *text; size_t len, cap;
    keyref *keys; size_t nkeys, kcap;   /* a stack: each object's keys above its parent's */
    int text_slot, keys_slot;           /* where their userdata are held, once they move there */
    char local_text[LOCAL_TEXT];
    keyref local_keys[LOCAL_KEYS];
} writer;

/* room for n more bytes of text */
static void room(lua_State *L, writer *w, size_t n)
{
    if (w->cap - w->len >= n) return;
    size_t cap = w->cap * 2;
    while (cap - w->len < n) cap *= 2;
    char *p = lua_newuserdatauv(L, cap, 0);
    memcpy(p, w->text, w->len);
    lua_replace(L, w->text_slot);
    w->text = p;
    w->cap = cap;
}

static void add(lua_State *L, writer *w, const char *s, size_t n)
{
    room(L, w, n);
    memcpy(w->text + w->len, s, n);
    w->len += n;
}

static void add_char(lua_State *L, writer *w, char c)
{
    room(L, w, 1);
    w->text[w->len++] = c;
}

/* s in quotes, escaped: 0 when it is not UTF-8 */
static int add_string(lua_State *L, writer *w, const char *s, size_t len)
{
    if (!provision_utf8_valid(s, len)) return 0;
    room(L, w, len + 2);
    w->text[w->len++] = '"';
    size_t run = 0;   /* the start of the bytes not yet added, which need no escape */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        add(L, w, s + run, i - run);
        run = i + 1;
        char esc[8];
        switch (c) {
        case '"': add(L, w, "\\\"", 2); break;
        case '\\': add(L, w, "\\\\", 2); break;
        case '\b': add(L, w, "\\b", 2); break;
        case '\f': add(L, w, "\\f", 2); break;
        case '\n': add(L, w, "\\n", 2); break;
        case '\r': add(L, w, "\\r", 2); break;
        case '\t': add(L, w, "\\t", 2); break;
        default:
            snprintf(esc, sizeof esc, "\\u%04X", (unsigned)c);
            add(L, w, esc, 6);
        }
    }
    add(L, w, s + run, len - run);
    add_char(L, w, '"');
    return 1;
}

/* a finite double as jansson's jsonp_dtostr writes it */
static void add_real(lua_State *L, writer *w, double d)
{
    char buf[48];
    int n = snprintf(buf, sizeof buf - 3, "%.17g", d);
    if (!strchr(buf, '.') && !strchr(buf, 'e')) { memcpy(buf + n, ".0", 3); n += 2; }
    char *e = strchr(buf, 'e');
    if (e) {   /* "1e+20" -> "1e20", "1e-05" -> "1e-5" */
        char *from = e + 1, *to = e + 1;
        if (*from == '-') { from++; to++; }
        else if (*from == '+') from++;
        while (*from == '0' && from[1]) from++;
        memmove(to, from, strlen(from) + 1);
        n = (int)strlen(buf);
    }
    add(L, w, buf, (size_t)n);
}

static int cmp_keys(const void *a, const void *b)
{
    const keyref *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
    if (c) return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

static int add_value(lua_State *L, writer *w, int idx, int depth);

/* what a __tostring gives (a secret: its mask). Not inside an object: the
 * keys it is sorting are only held by their tables, and a __tostring may
 * change a table and collect (jansson's path, which holds no key, then) */
static int add_tostring(lua_State *L, writer *w, int idx)
{
    if (w->nkeys > 0) return 0;
    size_t len;
    const char *s = luaL_tolstring(L, idx, &len);   /* (may raise: the text lives in userdata or on the C stack) */
    int ok = add_string(L, w, s, len);
    lua_pop(L, 1);
    return ok;
}

static int add_array(lua_State *L, writer *w, int idx, size_t n, int depth)
{
    add_char(L, w, '[');
    for (size_t i = 1; i <= n; i++) {
        if (i > 1) add_char(L, w, ',');
        lua_rawgeti(L, idx, (lua_Integer)i);
        int ok = add_value(L, w, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
        if (!ok) return 0;
    }
    add_char(L, w, ']');
    return 1;
}

static int add_object(lua_State *L, writer *w, int idx, int depth)
{
    size_t base = w->nkeys;
    lua_pushnil(L);
    while (lua_next(L, idx)) {                  /* ... k v */
        size_t klen;
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &klen) : NULL;
        lua_pop(L, 1);                          /* ... k */
        if (!k || memchr(k, '\0', klen) || !provision_utf8_valid(k, klen)) {
            lua_pop(L, 1);
            w->nkeys = base;
            return 0;
        }
        if (w->nkeys == w->kcap) {
            lua_pop(L, 1);                      /* ... (k is held by the table) */
            keyref *p = lua_newuserdatauv(L, w->kcap * 2 * sizeof *p, 0);
            memcpy(p, w->keys, w->nkeys * sizeof *p);
            lua_replace(L, w->keys_slot);
            w->keys = p;
            w->kcap *= 2;
            lua_pushlstring(L, k, klen);        /* ... k: lua_next goes on from it */
        }
        w->keys[w->nkeys].s = k;                /* (the table holds the key) */
        w->keys[w->nkeys].len = klen;
        w->nkeys++;
    }
    size_t n = w->nkeys - base;
    qsort(w->keys + base, n, sizeof *w->keys, cmp_keys);
    add_char(L, w, '{');
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        keyref k = w->keys[base + i];           /* (a copy: the array may move) */
        if (i > 0) add_char(L, w, ',');
        add_string(L, w, k.s, k.len);
        add_char(L, w, ':');
        lua_pushlstring(L, k.s, k.len);
        lua_rawget(L, idx);
        ok = add_value(L, w, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
    }
    w->nkeys = base;
    if (ok) add_char(L, w, '}');
    return ok;
}

/* the value at idx (absolute): 1 when written, 0 when jansson's path is
 * to take the whole value instead */
static int add_value(lua_State *L, writer *w, int idx, int depth)
{
    if (depth > MAX_DEPTH) return 0;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: add(L, w, "null", 4); return 1;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx)) add(L, w, "true", 4); else add(L, w, "false", 5);
        return 1;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            char num[32];
            int n = snprintf(num, sizeof num, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, idx));
            add(L, w, num, (size_t)n);
            return 1;
        }
        if (!isfinite(lua_tonumber(L, idx))) return 0;
        add_real(L, w, lua_tonumber(L, idx));
        return 1;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        return add_string(L, w, s, len);
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) != NULL) return 0;
        add(L, w, "null", 4);
        return 1;
    case LUA_TTABLE: {
        luaL_checkstack(L, 6, "json.encode");
        if (luaL_getmetafield(L, idx, "__tostring") != LUA_TNIL) {
            lua_pop(L, 1);
            return add_tostring(L, w, idx);
        }
        size_t n;
        if (json_table_is_array(L, idx, &n)) return add_array(L, w, idx, n, depth);
        return add_object(L, w, idx, depth);
    }
    case LUA_TUSERDATA:
        if (luaL_getmetafield(L, idx, "__tostring") == LUA_TNIL) return 0;
        lua_pop(L, 1);
        return add_tostring(L, w, idx);
    default: return 0;
    }
}

int json_encode_fast(lua_State *L, int pretty)
{
    int top = lua_gettop(L);
    /* pretty output of a table is jansson's (indented); anything else is
     * the same text either way (a table with __tostring: its text) */
    if (pretty && lua_type(L, 1) == LUA_TTABLE) {
        if (luaL_getmetafield(L, 1, "__tostring") == LUA_TNIL) return 0;
        lua_pop(L, 1);
    }
    writer w;
    w.text = w.local_text; w.len = 0; w.cap = LOCAL_TEXT;
    w.keys = w.local_keys; w.nkeys = 0; w.kcap = LOCAL_KEYS;
    lua_pushnil(L);
    w.text_slot = lua_gettop(L);
    lua_pushnil(L);
    w.keys_slot = lua_gettop(L);
    if (!add_value(L, &w, 1, 0)) { lua_settop(L, top); return 0; }
    lua_pushlstring(L, w.text, w.len);
    return 1;
}
