/* read.c: json.decode (the direct reader, and jansson's when it is not
 * sure), json.decode_lazy and json.decode_at (json.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "json.h"

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
int json_decode(lua_State *L)
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
int json_decode_lazy(lua_State *L)
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
int json_decode_at(lua_State *L)
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
