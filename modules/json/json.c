/* json.c: "provision._json": JSON for --json events, the state file, HTTP
 * replies and the Docker Engine API. encode writes compact text itself
 * (write.c) and goes through jansson (here) for what it is not sure of:
 * pretty output, and the values it refuses, whose errors jansson's path
 * words; decode is read.c's.
 *
 *   json.encode(value [, {pretty=true}]) -> string
 *     raises on a value JSON cannot hold, naming where it is ("... at
 *     env.PASSWORD[2]"): a function, a non-finite number, a string or key
 *     that is not valid UTF-8 (JSON text is UTF-8). Nothing leaks when it
 *     raises, nor when a __tostring it calls does.
 *   json.decode(string [, max_depth]) -> value | nil, "line L column C: why"
 *     (or "nested deeper than N levels")
 *   json.is_text(s) -> true | false, pos
 *     is s UTF-8 text, what encode takes? pos: the first byte of the first
 *     sequence that is not
 *   json.text(s [, "hex"]) -> string
 *     s, with each byte of a sequence that is not UTF-8 as U+FFFD (or as
 *     the four characters \xNN): for text from outside (a command's
 *     output, an HTTP body) that an event or a message must carry
 *   json.null        a sentinel for JSON null (decode gives it; encode takes it)
 *   json.array(t)    marks t as an array, so an empty table encodes as []
 *
 * Lua tables: a table whose keys are exactly 1..n is an array; any other
 * table is an object with string keys (numbers as keys are written as text). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "json.h"

int json_table_is_array(lua_State *L, int idx, size_t *n)
{
    STACK_ENTER(L);
    if (lua_getmetatable(L, idx)) {             /* ... mt */
        luaL_getmetatable(L, ARRAY_MT);         /* ... mt ARRAY_MT */
        int marked = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
        if (marked) { *n = lua_rawlen(L, idx); STACK_LEAVE(L, 0); return 1; }
    }
    size_t count = 0, len = lua_rawlen(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {                  /* ... k v */
        lua_pop(L, 1);                          /* ... k */
        if (!lua_isinteger(L, -1)) { lua_pop(L, 1); STACK_LEAVE(L, 0); return 0; }
        lua_Integer k = lua_tointeger(L, -1);
        if (k < 1 || (size_t)k > len) { lua_pop(L, 1); STACK_LEAVE(L, 0); return 0; }
        count++;
    }
    *n = count;
    STACK_LEAVE(L, 0);
    return count > 0 && count == len;
}

#define BOX_MT "provision.json.encoding"

/* What encode builds hangs from a userdata: whatever raises on the way (a
 * __tostring that fails, a Lua stack that cannot grow, memory) the tree is
 * freed by __gc. Containers join their parent before they are filled. */
typedef struct { json_t *root; char *text; } json_box;

static int box_gc(lua_State *L)
{
    json_box *b = luaL_checkudata(L, 1, BOX_MT);
    if (b->root) { json_decref(b->root); b->root = NULL; }
    free(b->text);
    b->text = NULL;
    return 0;
}

/* why encode failed, and where: path is built as the failure unwinds */
typedef struct { char why[256]; char path[512]; int cut; } enc_err;

static void prepend(enc_err *e, const char *seg, size_t n)
{
    size_t have = strlen(e->path);
    if (n >= sizeof e->path) return;
    if (n + have >= sizeof e->path) {      /* too deep: keep the outer part, shown as path... */
        have = sizeof e->path - 1 - n;
        e->path[have] = '\0';
        e->cut = 1;
    }
    memmove(e->path + n, e->path, have + 1);
    memcpy(e->path, seg, n);
}

static void prepend_index(enc_err *e, size_t i)
{
    char seg[32];
    int n = snprintf(seg, sizeof seg, "[%zu]", i);
    prepend(e, seg, (size_t)n);
}

/* .name for an identifier, else ["..."] with bytes outside printable ASCII
 * as \xNN (the message itself must stay valid UTF-8) */
static void prepend_key(enc_err *e, const char *k, size_t len)
{
    char seg[200];
    size_t n = 0;
    int ident = len > 0 && !(k[0] >= '0' && k[0] <= '9');
    for (size_t i = 0; i < len && ident; i++) {
        unsigned char c = (unsigned char)k[i];
        ident = c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    }
    if (ident && len < sizeof seg - 2) {
        n = (size_t)snprintf(seg, sizeof seg, ".%s", k);
    } else {
        seg[n++] = '['; seg[n++] = '"';
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)k[i];
            if (n + 8 >= sizeof seg) { memcpy(seg + n, "...", 3); n += 3; break; }
            if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') seg[n++] = (char)c;
            else n += (size_t)snprintf(seg + n, sizeof seg - n, "\\x%02x", c);
        }
        seg[n++] = '"'; seg[n++] = ']';
    }
    prepend(e, seg, n);
}



static int fail(enc_err *e, const char *why)
{
    snprintf(e->why, sizeof e->why, "%s", why);
    return -1;
}

/* an object key: a Lua string may hold NUL bytes, so a key carries its
 * length (jansson's decoder refuses such keys; its encoder takes them) */
typedef struct { const char *p; size_t n; } jkey;

/* v into parent: appended to an array, set at key in an object, or the
 * root. v NULL: out of memory. 0, or -1 (v is freed). */
static int attach(json_t **root, json_t *parent, const jkey *key, json_t *v, enc_err *e)
{
    if (!v) return fail(e, "out of memory");
    if (!parent) { *root = v; return 0; }
    int rc = json_is_array(parent) ? json_array_append_new(parent, v)
                                   : json_object_setn_new_nocheck(parent, key->p, key->n, v);
    return rc < 0 ? fail(e, "out of memory") : 0;
}

/* a string (checked), into parent */
static int put_string(json_t **root, json_t *parent, const jkey *key, const char *s, size_t len,
                      const char *what, enc_err *e)
{
    if (!provision_utf8_valid(s, len)) return fail(e, what);
    return attach(root, parent, key, json_stringn_nocheck(s, len), e);
}

static int put(lua_State *L, int idx, int depth, json_t **root, json_t *parent, const jkey *key,
               enc_err *e);

/* the table at idx as an array of n values, into parent; the stack as it
 * was, whatever the result */
static int put_array(lua_State *L, int idx, size_t n, int depth, json_t **root, json_t *parent,
                     const jkey *key, enc_err *e)
{
    STACK_ENTER(L);
    json_t *a = json_array();
    if (attach(root, parent, key, a, e) < 0) return -1;
    int rc = 0;
    for (size_t i = 1; i <= n && rc == 0; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i);    /* ... v */
        rc = put(L, -1, depth + 1, root, a, NULL, e);
        lua_pop(L, 1);                          /* ... */
        if (rc < 0) prepend_index(e, i);
    }
    STACK_LEAVE(L, 0);
    return rc;
}

/* the table at idx as an object, into parent; the stack as it was,
 * whatever the result */
static int put_object(lua_State *L, int idx, int depth, json_t **root, json_t *parent, const jkey *key,
                      enc_err *e)
{
    STACK_ENTER(L);
    json_t *o = json_object();
    if (attach(root, parent, key, o, e) < 0) return -1;
    int rc = 0;
    lua_pushnil(L);
    while (rc == 0 && lua_next(L, idx)) {       /* ... k v */
        lua_pushvalue(L, -2);                   /* ... k v kcopy: lua_tolstring may change a number */
        size_t klen = 0;
        const char *k = lua_type(L, -1) == LUA_TNUMBER || lua_type(L, -1) == LUA_TSTRING
            ? lua_tolstring(L, -1, &klen) : NULL;
        if (!k) {
            snprintf(e->why, sizeof e->why, "cannot encode a %s key", luaL_typename(L, -1));
            rc = -1;
        } else if (!provision_utf8_valid(k, klen)) {
            rc = fail(e, "a key that is not valid UTF-8");
        } else if (json_object_getn(o, k, klen)) {   /* [1] and ["1"]: one would silently go */
            rc = fail(e, "a key given twice, as a number and as a string");
        } else {
            jkey kk = { k, klen };
            rc = put(L, -2, depth + 1, root, o, &kk, e);
        }
        if (rc < 0 && k) prepend_key(e, k, klen);
        lua_pop(L, rc < 0 ? 3 : 2);             /* ... k, or ... when done */
    }
    STACK_LEAVE(L, 0);
    return rc;
}

/* the Lua value at idx, encoded into parent (see attach). 0, or -1 with
 * why and where in e. */
static int put(lua_State *L, int idx, int depth, json_t **root, json_t *parent, const jkey *key,
               enc_err *e)
{
    idx = lua_absindex(L, idx);
    if (depth > 200) return fail(e, "nesting too deep (a cycle?)");
    switch (lua_type(L, idx)) {
    case LUA_TNIL: return attach(root, parent, key, json_null(), e);
    case LUA_TBOOLEAN: return attach(root, parent, key, json_boolean(lua_toboolean(L, idx)), e);
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) return attach(root, parent, key, json_integer(lua_tointeger(L, idx)), e);
        {
            double d = lua_tonumber(L, idx);
            if (!isfinite(d)) {
                snprintf(e->why, sizeof e->why, "cannot encode %g", d);
                return -1;
            }
            return attach(root, parent, key, json_real(d), e);
        }
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        return put_string(root, parent, key, s, len, "a string that is not valid UTF-8", e);
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) return attach(root, parent, key, json_null(), e);
        break;
    case LUA_TTABLE: {
        luaL_checkstack(L, 6, "json.encode");
        if (luaL_getmetafield(L, idx, "__tostring") != LUA_TNIL) {   /* prints itself: below */
            lua_pop(L, 1);
            break;
        }
        size_t n;
        if (json_table_is_array(L, idx, &n)) return put_array(L, idx, n, depth, root, parent, key, e);
        return put_object(L, idx, depth, root, parent, key, e);
    }
    default: break;
    }
    /* a table or userdata that prints itself (a secret prints its mask) */
    if (luaL_getmetafield(L, idx, "__tostring") != LUA_TNIL) {
        lua_pop(L, 1);
        size_t len;
        const char *s = luaL_tolstring(L, idx, &len);   /* may raise: the tree is in the box */
        int rc = put_string(root, parent, key, s, len, "a __tostring result that is not valid UTF-8", e);
        lua_pop(L, 1);
        return rc;
    }
    snprintf(e->why, sizeof e->why, "cannot encode a %s", luaL_typename(L, idx));
    return -1;
}

static int json_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    int pretty = 0;
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "pretty");
        pretty = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    if (json_encode_fast(L, pretty)) return 1;
    lua_settop(L, 1);
    json_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->root = NULL;
    box->text = NULL;
    luaL_setmetatable(L, BOX_MT);
    enc_err e;
    e.why[0] = e.path[0] = '\0';
    e.cut = 0;
    if (put(L, 1, 0, &box->root, NULL, NULL, &e) < 0) {
        if (box->root) { json_decref(box->root); box->root = NULL; }
        const char *where = e.path[0] == '.' ? e.path + 1 : e.path;
        if (*where) return luaL_error(L, "json.encode: %s at %s%s", e.why, where, e.cut ? "..." : "");
        return luaL_error(L, "json.encode: %s", e.why);
    }
    size_t flags = JSON_ENCODE_ANY | JSON_SORT_KEYS | (pretty ? JSON_INDENT(2) : JSON_COMPACT);
    box->text = json_dumps(box->root, flags);
    json_decref(box->root);
    box->root = NULL;
    if (!box->text) return luaL_error(L, "json.encode: out of memory");
    lua_pushstring(L, box->text);   /* may raise (memory): the box frees the text */
    free(box->text);
    box->text = NULL;
    return 1;
}

static int json_is_text(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    size_t bad = provision_utf8_bad(s, len);
    lua_pushboolean(L, bad == len);
    if (bad == len) return 1;
    lua_pushinteger(L, (lua_Integer)bad + 1);
    return 2;
}

static int json_text(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    int hex = lua_isstring(L, 2) && strcmp(lua_tostring(L, 2), "hex") == 0;
    if (!lua_isnoneornil(L, 2) && !hex) return luaL_argerror(L, 2, "\"hex\" or nothing");
    size_t bad = provision_utf8_bad(s, len);
    if (bad == len) { lua_settop(L, 1); return 1; }
    luaL_Buffer b;   /* Lua's own memory: a raise here leaks nothing */
    luaL_buffinit(L, &b);
    size_t i = 0;
    while (bad < len) {
        luaL_addlstring(&b, s + i, bad - i);
        if (hex) {
            char x[5];
            snprintf(x, sizeof x, "\\x%02x", (unsigned char)s[bad]);
            luaL_addlstring(&b, x, 4);
        } else {
            luaL_addlstring(&b, "\xef\xbf\xbd", 3);   /* U+FFFD */
        }
        i = bad + 1;   /* one mark per byte: the rest may start a good sequence */
        bad = i + provision_utf8_bad(s + i, len - i);
    }
    luaL_addlstring(&b, s + i, len - i);
    luaL_pushresult(&b);
    return 1;
}

static int json_array_mark(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    luaL_setmetatable(L, ARRAY_MT);
    return 1;
}

static const luaL_Reg json_funcs[] = {
    { "array", json_array_mark },
    { "decode", json_decode },
    { "decode_at", json_decode_at },
    { "decode_lazy", json_decode_lazy },
    { "encode", json_encode },
    { "is_text", json_is_text },
    { "text", json_text },
    { NULL, NULL }
};

int luaopen_provision_json(lua_State *L)
{
    luaL_newmetatable(L, ARRAY_MT);
    lua_pop(L, 1);
    if (luaL_newmetatable(L, BOX_MT)) {
        lua_pushcfunction(L, box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    luaL_newlib(L, json_funcs);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    return 1;
}
