/* json.c: "provision._json": JSON through jansson, for --json events, the
 * state file, HTTP replies and the Docker Engine API.
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
#include "core.h"

#define ARRAY_MT "provision.json.array"

static int is_array(lua_State *L, int idx, size_t *n)
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
        if (is_array(L, idx, &n)) return put_array(L, idx, n, depth, root, parent, key, e);
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

static void push_json(lua_State *L, json_t *j, int depth, int *deepest)
{
    STACK_ENTER(L);
    luaL_checkstack(L, 4, "json.decode");
    if (depth > *deepest) *deepest = depth;
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        lua_createtable(L, 0, (int)json_object_size(j));   /* t */
        const char *k; json_t *v;
        json_object_foreach(j, k, v) {
            push_json(L, v, depth + 1, deepest);        /* t v */
            lua_setfield(L, -2, k);                     /* t */
        }
        break;
    }
    case JSON_ARRAY: {
        size_t i; json_t *v;
        lua_createtable(L, (int)json_array_size(j), 0);    /* t */
        json_array_foreach(j, i, v) {
            push_json(L, v, depth + 1, deepest);        /* t v */
            lua_rawseti(L, -2, (lua_Integer)i + 1);     /* t */
        }
        luaL_setmetatable(L, ARRAY_MT);
        break;
    }
    case JSON_STRING: lua_pushlstring(L, json_string_value(j), json_string_length(j)); break;
    case JSON_INTEGER: lua_pushinteger(L, json_integer_value(j)); break;
    case JSON_REAL: lua_pushnumber(L, json_real_value(j)); break;
    case JSON_TRUE: lua_pushboolean(L, 1); break;
    case JSON_FALSE: lua_pushboolean(L, 0); break;
    case JSON_NULL: lua_pushlightuserdata(L, NULL); break;
    }
    STACK_LEAVE(L, 1);
}

/* ---- the direct reader: JSON text to Lua values in one pass, with no
 * jansson tree in between (the state of 1,000 steps: 7.1 -> 2.6 ms). It
 * takes only what jansson takes, and gives the same values; on anything
 * it is not sure of (an error, a number out of range, an escape it does
 * not handle, deep nesting) it gives up and jansson decodes the text
 * again, so that errors and edge cases are jansson's, word for word. */

#define FAST_MAX_DEPTH 2048   /* jansson's JSON_PARSER_MAX_DEPTH */

typedef struct { const char *p, *end; int deepest; } reader;

static void skip_ws(reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\t' || *r->p == '\r')) r->p++;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

/* a string at r->p (its opening quote) pushed -> 1 | 0 (give up) */
static int fast_string(lua_State *L, reader *r, int key)
{
    const char *p = ++r->p, *start = p;
    while (p < r->end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20) p++;
    if (p >= r->end || (unsigned char)*p < 0x20) return 0;
    if (*p == '"') {   /* no escape: the usual case */
        if (!provision_utf8_valid(start, (size_t)(p - start))) return 0;
        lua_pushlstring(L, start, (size_t)(p - start));
        r->p = p + 1;
        return 1;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    p = start;
    for (;;) {
        const char *run = p;
        while (p < r->end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20) p++;
        if (p >= r->end || (unsigned char)*p < 0x20) return 0;
        if (!provision_utf8_valid(run, (size_t)(p - run))) return 0;
        luaL_addlstring(&b, run, (size_t)(p - run));
        if (*p == '"') break;
        if (p + 1 >= r->end) return 0;
        char c = p[1], out;
        p += 2;
        switch (c) {
        case '"': out = '"'; break;
        case '\\': out = '\\'; break;
        case '/': out = '/'; break;
        case 'b': out = '\b'; break;
        case 'f': out = '\f'; break;
        case 'n': out = '\n'; break;
        case 'r': out = '\r'; break;
        case 't': out = '\t'; break;
        case 'u': {
            unsigned u;
            if (r->end - p < 4 || !hex4(p, &u)) return 0;
            p += 4;
            if (u >= 0xD800 && u <= 0xDFFF) {   /* a pair, or jansson says why not */
                unsigned lo;
                if (u > 0xDBFF || r->end - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, &lo)
                    || lo < 0xDC00 || lo > 0xDFFF) return 0;
                p += 6;
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (u == 0 && key) return 0;   /* jansson: no NUL in a key */
            char enc[4];
            size_t n;
            if (u < 0x80) { enc[0] = (char)u; n = 1; }
            else if (u < 0x800) { enc[0] = (char)(0xC0 | (u >> 6)); enc[1] = (char)(0x80 | (u & 0x3F)); n = 2; }
            else if (u < 0x10000) {
                enc[0] = (char)(0xE0 | (u >> 12)); enc[1] = (char)(0x80 | ((u >> 6) & 0x3F));
                enc[2] = (char)(0x80 | (u & 0x3F)); n = 3;
            } else {
                enc[0] = (char)(0xF0 | (u >> 18)); enc[1] = (char)(0x80 | ((u >> 12) & 0x3F));
                enc[2] = (char)(0x80 | ((u >> 6) & 0x3F)); enc[3] = (char)(0x80 | (u & 0x3F)); n = 4;
            }
            luaL_addlstring(&b, enc, n);
            continue;
        }
        default: return 0;
        }
        luaL_addchar(&b, out);
    }
    luaL_pushresult(&b);
    r->p = p + 1;
    return 1;
}

/* a number (strict JSON grammar) pushed -> 1 | 0 */
static int fast_number(lua_State *L, reader *r)
{
    const char *p = r->p, *s = p;
    int real = 0;
    if (p < r->end && *p == '-') p++;
    if (p >= r->end) return 0;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9') while (p < r->end && *p >= '0' && *p <= '9') p++;
    else return 0;
    if (p < r->end && *p == '.') {
        real = 1; p++;
        if (p >= r->end || *p < '0' || *p > '9') return 0;
        while (p < r->end && *p >= '0' && *p <= '9') p++;
    }
    if (p < r->end && (*p == 'e' || *p == 'E')) {
        real = 1; p++;
        if (p < r->end && (*p == '+' || *p == '-')) p++;
        if (p >= r->end || *p < '0' || *p > '9') return 0;
        while (p < r->end && *p >= '0' && *p <= '9') p++;
    }
    char tmp[64];
    if ((size_t)(p - s) >= sizeof tmp) return 0;   /* a long one: jansson's */
    memcpy(tmp, s, (size_t)(p - s));
    tmp[p - s] = '\0';
    char *stop;
    errno = 0;
    if (real) {
        double d = strtod(tmp, &stop);
        if (errno || *stop) return 0;
        lua_pushnumber(L, d);
    } else {
        long long v = strtoll(tmp, &stop, 10);
        if (errno || *stop) return 0;
        lua_pushinteger(L, (lua_Integer)v);
    }
    r->p = p;
    return 1;
}

static int fast_literal(reader *r, const char *word, size_t n)
{
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0) return 0;
    r->p += n;
    return 1;
}

/* a value pushed -> 1 | 0 (give up: what was pushed is the caller's to drop) */
static int fast_value(lua_State *L, reader *r, int depth)
{
    if (depth > FAST_MAX_DEPTH) return 0;
    if (depth > r->deepest) r->deepest = depth;
    if (!lua_checkstack(L, 3)) return 0;
    skip_ws(r);
    if (r->p >= r->end) return 0;
    switch (*r->p) {
    case '{': {
        r->p++;
        lua_newtable(L);
        skip_ws(r);
        if (r->p < r->end && *r->p == '}') { r->p++; return 1; }
        for (;;) {
            skip_ws(r);
            if (r->p >= r->end || *r->p != '"' || !fast_string(L, r, 1)) return 0;
            skip_ws(r);
            if (r->p >= r->end || *r->p != ':') return 0;
            r->p++;
            if (!fast_value(L, r, depth + 1)) return 0;
            lua_rawset(L, -3);
            skip_ws(r);
            if (r->p < r->end && *r->p == ',') { r->p++; continue; }
            if (r->p < r->end && *r->p == '}') { r->p++; return 1; }
            return 0;
        }
    }
    case '[': {
        r->p++;
        lua_newtable(L);
        luaL_setmetatable(L, ARRAY_MT);
        skip_ws(r);
        if (r->p < r->end && *r->p == ']') { r->p++; return 1; }
        for (lua_Integer i = 1;; i++) {
            if (!fast_value(L, r, depth + 1)) return 0;
            lua_rawseti(L, -2, i);
            skip_ws(r);
            if (r->p < r->end && *r->p == ',') { r->p++; continue; }
            if (r->p < r->end && *r->p == ']') { r->p++; return 1; }
            return 0;
        }
    }
    case '"': return fast_string(L, r, 0);
    case 't': if (!fast_literal(r, "true", 4)) return 0; lua_pushboolean(L, 1); return 1;
    case 'f': if (!fast_literal(r, "false", 5)) return 0; lua_pushboolean(L, 0); return 1;
    case 'n': if (!fast_literal(r, "null", 4)) return 0; lua_pushlightuserdata(L, NULL); return 1;
    default: return fast_number(L, r);
    }
}

/* decode(text [, max_depth]): a value nested deeper than max_depth levels
 * is an error (encode writes 200 at most: what is read and saved again,
 * as the state is, must fit) */
static int json_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    int max_depth = (int)luaL_optinteger(L, 2, 0);
    int top = lua_gettop(L);
    reader r = { s, s + len, 0 };
    if (fast_value(L, &r, 0)) {
        skip_ws(&r);
        if (r.p == r.end) {
            if (max_depth > 0 && r.deepest > max_depth) {
                lua_settop(L, top);
                lua_pushnil(L);
                lua_pushfstring(L, "nested deeper than %d levels", max_depth);
                return 2;
            }
            return 1;
        }
    }
    lua_settop(L, top);   /* not sure: jansson reads it, and says why when it fails */
    json_error_t e;
    json_t *j = json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!j) {
        lua_pushnil(L);
        lua_pushfstring(L, "line %d column %d: %s", e.line, e.column, e.text);
        return 2;
    }
    /* push_json only raises when the Lua stack cannot grow; jansson caps
     * nesting at 2048 levels, far below Lua's stack limit. */
    int deepest = 0;
    STACK_ENTER(L);
    push_json(L, j, 0, &deepest);               /* ... value */
    json_decref(j);
    if (max_depth > 0 && deepest > max_depth) {
        lua_pop(L, 1);
        lua_pushnil(L);
        lua_pushfstring(L, "nested deeper than %d levels", max_depth);
        STACK_LEAVE(L, 2);
        return 2;
    }
    STACK_LEAVE(L, 1);
    return 1;
}

/* ---- lazy reading: the state of a 10,000-step recipe is 60,000 tables a
 * no-op never looks at (a step's record matters when it changes, and to
 * teardown). decode_lazy reads the top-level object but leaves the values
 * of one member object where they are: that member becomes a table of
 * name -> the offset of the value in the text, and decode_at reads one
 * when it is wanted. */

/* past the value at r->p, pushing nothing: strings (escapes too) and
 * nesting followed, nothing else checked: only for text this program wrote
 * (the state file, when it is what was saved: lua/provision/state.lua) ->
 * 1 | 0 (not a whole value) */
static int skip_value(reader *r, int depth)
{
    int level = 0;
    skip_ws(r);
    do {
        if (r->p >= r->end) return 0;
        char c = *r->p++;
        if (c == '"') {   /* to the quote that ends it: one after an even run of backslashes */
            for (;;) {
                const char *q = memchr(r->p, '"', (size_t)(r->end - r->p));
                if (!q) return 0;
                const char *b = q;
                while (b > r->p && b[-1] == '\\') b--;
                r->p = q + 1;
                if (((q - b) & 1) == 0) break;
            }
        } else if (c == '{' || c == '[') {
            if (depth + ++level > r->deepest) r->deepest = depth + level;
        } else if (c == '}' || c == ']') {
            if (--level < 0) return 0;
        } else if (level == 0) {   /* a number or a literal: to the next delimiter */
            while (r->p < r->end) {
                char d = *r->p;
                if (d == ',' || d == '}' || d == ']' || d == ' ' || d == '\n' || d == '\t' || d == '\r') break;
                r->p++;
            }
        }
    } while (level > 0);
    return 1;
}

/* decode_lazy(text, key [, max_depth]) -> value | nil: as decode (text: a
 * string, or bytes: provision_checkbytes), but the
 * value of the top-level object's member key (an object) is a table of its
 * names -> offsets (decode_at). nil when the text is not that or the
 * reader is not sure of it: decode then says what it is. */
static int json_decode_lazy(lua_State *L)
{
    size_t len, klen;
    const char *s = provision_checkbytes(L, 1, &len);
    const char *key = luaL_checklstring(L, 2, &klen);
    int max_depth = (int)luaL_optinteger(L, 3, 0);
    int top = lua_gettop(L);
    reader r = { s, s + len, 0 };
    skip_ws(&r);
    if (r.p >= r.end || *r.p != '{') goto unsure;
    r.p++;
    lua_newtable(L);
    skip_ws(&r);
    if (r.p < r.end && *r.p == '}') { r.p++; goto done; }
    for (;;) {
        skip_ws(&r);
        if (r.p >= r.end || *r.p != '"' || !fast_string(L, &r, 1)) goto unsure;
        skip_ws(&r);
        if (r.p >= r.end || *r.p != ':') goto unsure;
        r.p++;
        size_t nlen;
        const char *name = lua_tolstring(L, -1, &nlen);
        if (nlen == klen && memcmp(name, key, klen) == 0) {
            skip_ws(&r);
            if (r.p >= r.end || *r.p != '{') goto unsure;
            r.p++;
            lua_newtable(L);   /* ... data key index */
            skip_ws(&r);
            if (r.p < r.end && *r.p == '}') r.p++;
            else for (;;) {
                skip_ws(&r);
                if (r.p >= r.end || *r.p != '"' || !fast_string(L, &r, 1)) goto unsure;
                skip_ws(&r);
                if (r.p >= r.end || *r.p != ':') goto unsure;
                r.p++;
                skip_ws(&r);
                lua_pushinteger(L, (lua_Integer)(r.p - s) + 1);
                if (!skip_value(&r, 1)) goto unsure;
                lua_rawset(L, -3);
                skip_ws(&r);
                if (r.p < r.end && *r.p == ',') { r.p++; continue; }
                if (r.p < r.end && *r.p == '}') { r.p++; break; }
                goto unsure;
            }
        } else if (!fast_value(L, &r, 1)) {
            goto unsure;
        }
        lua_rawset(L, -3);
        skip_ws(&r);
        if (r.p < r.end && *r.p == ',') { r.p++; continue; }
        if (r.p < r.end && *r.p == '}') { r.p++; break; }
        goto unsure;
    }
done:
    skip_ws(&r);
    if (r.p == r.end && (max_depth <= 0 || r.deepest <= max_depth)) return 1;
unsure:
    lua_settop(L, top);
    lua_pushnil(L);
    return 1;
}

/* decode_at(text, offset [, max_depth]) -> value | nil, why: the value that
 * starts at offset (1-based: decode_lazy's), read as decode reads it */
static int json_decode_at(lua_State *L)
{
    size_t len;
    const char *s = provision_checkbytes(L, 1, &len);
    lua_Integer at = luaL_checkinteger(L, 2);
    int max_depth = (int)luaL_optinteger(L, 3, 0);
    luaL_argcheck(L, at >= 1 && (size_t)at <= len, 2, "not an offset in the text");
    reader r = { s + at - 1, s + len, 0 };
    int top = lua_gettop(L);
    if (fast_value(L, &r, 0) && (max_depth <= 0 || r.deepest <= max_depth)) return 1;
    lua_settop(L, top);   /* not sure: the value's own text, through decode */
    r = (reader){ s + at - 1, s + len, 0 };
    if (!skip_value(&r, 0)) {
        lua_pushnil(L);
        lua_pushliteral(L, "not a whole value at that offset");
        return 2;
    }
    lua_pushcfunction(L, json_decode);
    lua_pushlstring(L, s + at - 1, (size_t)(r.p - (s + at - 1)));
    lua_pushinteger(L, max_depth);
    lua_call(L, 2, 2);
    return 2;
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
