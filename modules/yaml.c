/* yaml.c: "provision._yaml": YAML to Lua through libyaml's event parser.
 * Dumping back to YAML is Lua (lua/provision/yaml.lua) on top of resolve().
 *
 *   yaml.load(text [, chunkname]) -> value | nil, "line L column C: problem"
 *     The first document. Anchors and aliases are resolved (an alias is the
 *     same Lua table as its anchor), "<<" merge keys are merged as Compose
 *     does it (a map or a list of maps; explicit keys win, then earlier maps
 *     in the list). Mapping keys are strings. Plain scalars are typed as
 *     YAML 1.1 (PyYAML, what Compose v1 uses) types them: null, booleans,
 *     integers (0x, 0o/0-octal, 0b, sexagesimal 1:30), floats (.inf, .nan);
 *     quoted and block scalars stay strings. Sequences carry the
 *     "provision.json.array" metatable (so json.encode and yaml.dump keep
 *     an empty one as []). Null is yaml.null (the same value as json.null).
 *   yaml.resolve(text) -> the value a plain scalar with this text loads as
 *   yaml.null
 *
 * The parser and its current event live in a userdata whose __gc frees
 * them, so a raise from Lua (out of memory) never leaks. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include "core.h"

#define PARSER_MT "provision.yaml.parser"
#define ARRAY_MT "provision.json.array"
#define MAX_DEPTH 512

typedef struct yaml_ud {
    yaml_parser_t parser;
    yaml_event_t event;
    int parser_live, event_live;
    char err[512];
} yaml_ud;

static int yaml_ud_gc(lua_State *L)
{
    yaml_ud *u = luaL_checkudata(L, 1, PARSER_MT);
    if (u->event_live) { yaml_event_delete(&u->event); u->event_live = 0; }
    if (u->parser_live) { yaml_parser_delete(&u->parser); u->parser_live = 0; }
    return 0;
}

/* ---- scalar resolution (YAML 1.1, as PyYAML's resolver) ---- */

static int match_word(const char *s, size_t n, const char *const *words)
{
    for (; *words; words++)
        if (strlen(*words) == n && memcmp(*words, s, n) == 0) return 1;
    return 0;
}

static const char *const null_words[] = { "~", "null", "Null", "NULL", NULL };
static const char *const true_words[] = { "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", NULL };
static const char *const false_words[] = { "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", NULL };

/* digits of a base, '_' allowed; at least one digit; returns the value
 * (as double when it overflows). */
static int parse_digits(const char *s, size_t n, int base, double *dv, lua_Integer *iv, int *is_int)
{
    unsigned long long acc = 0;
    double d = 0;
    int overflow = 0, ndig = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i], v;
        if (c == '_') continue;
        if (c >= '0' && c <= '9') v = c - '0';
        else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
        else return 0;
        if (v >= base) return 0;
        ndig++;
        d = d * base + v;
        if (!overflow) {
            if (acc > (0x7fffffffffffffffULL - (unsigned)v) / (unsigned)base) overflow = 1;
            else acc = acc * (unsigned)base + (unsigned)v;
        }
    }
    if (ndig == 0) return 0;
    *dv = d;
    *is_int = !overflow;
    *iv = (lua_Integer)acc;
    return 1;
}

static void push_int(lua_State *L, int neg, int is_int, lua_Integer iv, double dv)
{
    if (is_int) lua_pushinteger(L, neg ? -iv : iv);
    else lua_pushnumber(L, neg ? -dv : dv);
}

/* sexagesimal "1:30:05" (after the sign): base-60 parts, first part any digits */
static int parse_sexagesimal(const char *s, size_t n, int allow_fraction, double *out)
{
    double acc = 0;
    size_t i = 0;
    int part = 0;
    while (i < n) {
        size_t j = i;
        double v = 0;
        int nd = 0;
        while (j < n && (isdigit((unsigned char)s[j]) || s[j] == '_')) {
            if (s[j] != '_') { v = v * 10 + (s[j] - '0'); nd++; }
            j++;
        }
        if (nd == 0) return 0;
        if (part == 0) {
            if (s[i] == '0' && !allow_fraction) return 0;            /* [1-9][0-9_]* */
        } else {
            if (j - i > 2 || v >= 60) return 0;                      /* [0-5]?[0-9] */
        }
        acc = acc * 60 + v;
        part++;
        if (j == n) break;
        if (s[j] == ':') { i = j + 1; if (i == n) return 0; continue; }
        if (s[j] == '.' && allow_fraction && part > 1) {
            /* fraction digits ([0-9_]*) */
            double f = 0, scale = 0.1;
            for (size_t k = j + 1; k < n; k++) {
                if (s[k] == '_') continue;
                if (!isdigit((unsigned char)s[k])) return 0;
                f += (s[k] - '0') * scale; scale /= 10;
            }
            *out = acc + f;
            return 1;
        }
        return 0;
    }
    if (part < 2 || allow_fraction) return 0;
    *out = acc;
    return 1;
}

/* float: [-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+][0-9]+)? (PyYAML's form) */
static int parse_float(const char *s, size_t n, double *out)
{
    size_t i = 0;
    char buf[128];
    size_t b = 0;
    if (n == 0 || n >= sizeof buf) return 0;
    if (s[0] == '-' || s[0] == '+') buf[b++] = s[i++];
    int intd = 0, fracd = 0;
    while (i < n && (isdigit((unsigned char)s[i]) || s[i] == '_')) {
        if (s[i] != '_') { buf[b++] = s[i]; intd++; }
        else if (intd == 0) return 0;
        i++;
    }
    if (i >= n || s[i] != '.') return 0;
    buf[b++] = s[i++];
    while (i < n && (isdigit((unsigned char)s[i]) || s[i] == '_')) {
        if (s[i] != '_') { buf[b++] = s[i]; fracd++; }
        i++;
    }
    if (intd == 0 && fracd == 0) return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        buf[b++] = s[i++];
        if (i >= n || (s[i] != '-' && s[i] != '+')) return 0;
        buf[b++] = s[i++];
        int ed = 0;
        while (i < n && isdigit((unsigned char)s[i])) { buf[b++] = s[i++]; ed++; }
        if (!ed) return 0;
    }
    if (i != n) return 0;
    buf[b] = 0;
    *out = strtod(buf, NULL);
    return 1;
}

/* Push the typed value of a plain scalar. */
static void resolve_plain(lua_State *L, const char *s, size_t n)
{
    if (n == 0 || match_word(s, n, null_words)) { lua_pushlightuserdata(L, NULL); return; }
    if (match_word(s, n, true_words)) { lua_pushboolean(L, 1); return; }
    if (match_word(s, n, false_words)) { lua_pushboolean(L, 0); return; }
    const char *p = s;
    size_t m = n;
    int neg = 0;
    if (*p == '-' || *p == '+') { neg = *p == '-'; p++; m--; }
    if (m > 0 && (isdigit((unsigned char)*p) || *p == '.')) {
        double dv;
        lua_Integer iv;
        int is_int;
        if (m > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && 1) {
            if (parse_digits(p + 2, m - 2, 16, &dv, &iv, &is_int)) { push_int(L, neg, is_int, iv, dv); return; }
        } else if (m > 2 && p[0] == '0' && p[1] == 'b') {
            if (parse_digits(p + 2, m - 2, 2, &dv, &iv, &is_int)) { push_int(L, neg, is_int, iv, dv); return; }
        } else if (m > 1 && p[0] == '0' && p[1] != '.') {
            /* 0[0-7_]+ is octal in YAML 1.1 */
            if (parse_digits(p + 1, m - 1, 8, &dv, &iv, &is_int)) { push_int(L, neg, is_int, iv, dv); return; }
        } else if (m == 1 && p[0] == '0') {
            lua_pushinteger(L, 0); return;
        } else if (p[0] != '0' && p[0] != '_' && p[0] != '.' &&
                   parse_digits(p, m, 10, &dv, &iv, &is_int)) {
            push_int(L, neg, is_int, iv, dv); return;
        }
        if (parse_sexagesimal(p, m, 0, &dv)) {
            if (dv < 9.2e18) lua_pushinteger(L, (lua_Integer)(neg ? -dv : dv));
            else lua_pushnumber(L, neg ? -dv : dv);
            return;
        }
        if (parse_float(s, n, &dv)) { lua_pushnumber(L, dv); return; }
        if (parse_sexagesimal(p, m, 1, &dv)) { lua_pushnumber(L, neg ? -dv : dv); return; }
    }
    if (m == 4 && p[0] == '.' && (!strncmp(p, ".inf", 4) || !strncmp(p, ".Inf", 4) || !strncmp(p, ".INF", 4))) {
        lua_pushnumber(L, neg ? -HUGE_VAL : HUGE_VAL); return;
    }
    if (n == 4 && (!strncmp(s, ".nan", 4) || !strncmp(s, ".NaN", 4) || !strncmp(s, ".NAN", 4))) {
        lua_pushnumber(L, NAN); return;
    }
    lua_pushlstring(L, s, n);
}

/* ---- the event walker ---- */

static void set_error_mark(yaml_ud *u, yaml_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_error_mark(yaml_ud *u, yaml_mark_t m, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(u->err, sizeof u->err, "line %lu column %lu: %s",
             (unsigned long)m.line + 1, (unsigned long)m.column + 1, msg);
}

/* next event into u->event; 0 on a parse error (message in u->err) */
static int next_event(yaml_ud *u)
{
    if (u->event_live) { yaml_event_delete(&u->event); u->event_live = 0; }
    if (!yaml_parser_parse(&u->parser, &u->event)) {
        yaml_parser_t *p = &u->parser;
        yaml_mark_t m = p->problem_mark;
        if (p->problem_mark.line == 0 && p->problem_mark.column == 0 && p->context)
            m = p->context_mark;
        char what[300];
        if (p->context)
            snprintf(what, sizeof what, "%s %s", p->problem ? p->problem : "syntax error", p->context);
        else
            snprintf(what, sizeof what, "%s", p->problem ? p->problem : "syntax error");
        set_error_mark(u, m, "%s", what);
        return 0;
    }
    u->event_live = 1;
    return 1;
}

static int parse_node(lua_State *L, yaml_ud *u, int anchors, int depth);

static void remember_anchor(lua_State *L, int anchors, const yaml_char_t *anchor)
{
    if (!anchor) return;
    lua_pushvalue(L, -1);                               /* ... v v */
    lua_setfield(L, anchors, (const char *)anchor);     /* ... v */
}

/* merge the map at the top of the stack into the table at tbl, keeping keys
 * that are already there; pops it. */
static void merge_into(lua_State *L, int tbl)
{
    STACK_ENTER(L);
    int src = lua_gettop(L);                  /* ... src */
    lua_pushnil(L);
    while (lua_next(L, src)) {
        lua_pushvalue(L, -2);                 /* key val key */
        if (lua_rawget(L, tbl) == LUA_TNIL) {
            lua_pop(L, 1);
            lua_pushvalue(L, -2);             /* key val key */
            lua_pushvalue(L, -2);             /* key val key val */
            lua_rawset(L, tbl);
        } else {
            lua_pop(L, 1);
        }
        lua_pop(L, 1);                        /* ... src key */
    }
    lua_pop(L, 1);                            /* ... */
    STACK_LEAVE(L, -1);
}

static int is_array_value(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx)) return 0;
    luaL_getmetatable(L, ARRAY_MT);
    int r = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return r;
}

/* u->event is MAPPING_START; pushes the table */
static int parse_mapping(lua_State *L, yaml_ud *u, int anchors, int depth)
{
    STACK_ENTER(L);
    const yaml_char_t *anchor = u->event.data.mapping_start.anchor;
    lua_newtable(L);                                   /* tbl */
    int tbl = lua_gettop(L);
    remember_anchor(L, anchors, anchor);
    lua_newtable(L);                                   /* tbl merges: the merge sources, in order */
    int merges = lua_gettop(L);
    int nmerge = 0;
    for (;;) {
        if (!next_event(u)) return 0;
        if (u->event.type == YAML_MAPPING_END_EVENT) break;
        yaml_mark_t km = u->event.start_mark;
        int merge_key = 0;
        if (u->event.type == YAML_SCALAR_EVENT) {
            const char *v = (const char *)u->event.data.scalar.value;
            size_t n = u->event.data.scalar.length;
            merge_key = u->event.data.scalar.plain_implicit && n == 2 && v[0] == '<' && v[1] == '<'
                        && u->event.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            lua_pushlstring(L, v, n);
            remember_anchor(L, anchors, u->event.data.scalar.anchor);
        } else if (u->event.type == YAML_ALIAS_EVENT) {
            lua_getfield(L, anchors, (const char *)u->event.data.alias.anchor);
            if (lua_type(L, -1) != LUA_TSTRING) {
                if (lua_isnil(L, -1)) {
                    set_error_mark(u, km, "unknown anchor '%s'", (const char *)u->event.data.alias.anchor);
                    return 0;
                }
                if (lua_type(L, -1) == LUA_TNUMBER || lua_type(L, -1) == LUA_TBOOLEAN) {
                    lua_pushstring(L, luaL_tolstring(L, -1, NULL));   /* ... v vtext vtext */
                    lua_replace(L, -3);                               /* ... vtext vtext */
                    lua_pop(L, 1);                                    /* ... key */
                } else {
                    set_error_mark(u, km, "a mapping key must be a scalar");
                    return 0;
                }
            }
        } else {
            set_error_mark(u, km, "a mapping key must be a scalar (complex keys are not supported)");
            return 0;
        }
        if (!next_event(u)) return 0;
        yaml_mark_t vm = u->event.start_mark;
        if (!parse_node(L, u, anchors, depth + 1)) return 0;   /* key val */
        if (merge_key) {
            if (lua_istable(L, -1) && !is_array_value(L, -1)) {
                lua_rawseti(L, merges, ++nmerge);      /* ... key */
            } else if (lua_istable(L, -1)) {
                int list = lua_gettop(L);              /* ... key list */
                lua_Integer len = (lua_Integer)lua_rawlen(L, list);
                for (lua_Integer i = 1; i <= len; i++) {
                    lua_rawgeti(L, list, i);           /* ... key list map */
                    if (!lua_istable(L, -1) || is_array_value(L, -1)) {
                        set_error_mark(u, vm, "a merge key '<<' takes a mapping or a list of mappings");
                        return 0;
                    }
                    lua_rawseti(L, merges, ++nmerge);
                }
                lua_pop(L, 1);
            } else {
                set_error_mark(u, vm, "a merge key '<<' takes a mapping or a list of mappings");
                return 0;
            }
            lua_pop(L, 1);                             /* the key */
        } else {
            lua_rawset(L, tbl);
        }
    }
    for (int i = 1; i <= nmerge; i++) {
        lua_rawgeti(L, merges, i);                     /* tbl merges src */
        merge_into(L, tbl);                            /* tbl merges */
    }
    lua_pop(L, 1);                                     /* tbl */
    STACK_LEAVE(L, 1);
    return 1;
}

static int parse_sequence(lua_State *L, yaml_ud *u, int anchors, int depth)
{
    STACK_ENTER(L);
    const yaml_char_t *anchor = u->event.data.sequence_start.anchor;
    lua_newtable(L);
    luaL_setmetatable(L, ARRAY_MT);
    int tbl = lua_gettop(L);
    remember_anchor(L, anchors, anchor);
    lua_Integer i = 0;
    for (;;) {
        if (!next_event(u)) return 0;
        if (u->event.type == YAML_SEQUENCE_END_EVENT) break;
        if (!parse_node(L, u, anchors, depth + 1)) return 0;   /* tbl v */
        lua_rawseti(L, tbl, ++i);                              /* tbl */
    }
    STACK_LEAVE(L, 1);
    return 1;
}

static int parse_scalar(lua_State *L, yaml_ud *u, int anchors)
{
    STACK_ENTER(L);
    yaml_event_t *e = &u->event;
    const char *v = (const char *)e->data.scalar.value;
    size_t n = e->data.scalar.length;
    const char *tag = (const char *)e->data.scalar.tag;
    if (tag && strncmp(tag, "tag:yaml.org,2002:", 18) == 0) {
        const char *t = tag + 18;
        if (!strcmp(t, "str")) lua_pushlstring(L, v, n);
        else if (!strcmp(t, "null")) lua_pushlightuserdata(L, NULL);
        else {
            resolve_plain(L, v, n);
            int want = !strcmp(t, "bool") ? LUA_TBOOLEAN
                     : (!strcmp(t, "int") || !strcmp(t, "float")) ? LUA_TNUMBER : LUA_TSTRING;
            if (lua_type(L, -1) != want) {
                set_error_mark(u, e->start_mark, "cannot read this value as !!%s", t);
                return 0;
            }
            if (!strcmp(t, "float") && lua_isinteger(L, -1)) {
                lua_Number d = lua_tonumber(L, -1);
                lua_pop(L, 1);
                lua_pushnumber(L, d);
            }
        }
    } else if (e->data.scalar.plain_implicit && e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        resolve_plain(L, v, n);
    } else {
        lua_pushlstring(L, v, n);   /* quoted, literal, folded, or another tag */
    }
    remember_anchor(L, anchors, e->data.scalar.anchor);
    STACK_LEAVE(L, 1);
    return 1;
}

/* u->event is the node's first event; pushes its value */
static int parse_node(lua_State *L, yaml_ud *u, int anchors, int depth)
{
    if (depth > MAX_DEPTH) {
        set_error_mark(u, u->event.start_mark, "nesting too deep");
        return 0;
    }
    luaL_checkstack(L, 8, "yaml.load");
    switch (u->event.type) {
    case YAML_SCALAR_EVENT: return parse_scalar(L, u, anchors);
    case YAML_MAPPING_START_EVENT: return parse_mapping(L, u, anchors, depth);
    case YAML_SEQUENCE_START_EVENT: return parse_sequence(L, u, anchors, depth);
    case YAML_ALIAS_EVENT: {
        const char *a = (const char *)u->event.data.alias.anchor;
        lua_getfield(L, anchors, a);
        if (lua_isnil(L, -1)) {
            set_error_mark(u, u->event.start_mark, "unknown anchor '%s'", a);
            return 0;
        }
        return 1;
    }
    default:
        set_error_mark(u, u->event.start_mark, "unexpected event");
        return 0;
    }
}

static int yaml_load(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    lua_settop(L, 1);
    yaml_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
    memset(u, 0, sizeof *u);
    luaL_setmetatable(L, PARSER_MT);
    if (!yaml_parser_initialize(&u->parser)) return luaL_error(L, "yaml.load: out of memory");
    u->parser_live = 1;
    yaml_parser_set_input_string(&u->parser, (const unsigned char *)text, len);
    STACK_ENTER(L);                                     /* text ud */
    lua_newtable(L);                                    /* text ud anchors */
    int anchors = lua_gettop(L);
    int ok = 1, have = 0;
    while (ok) {
        if (!next_event(u)) { ok = 0; break; }
        yaml_event_type_t t = u->event.type;
        if (t == YAML_STREAM_END_EVENT) break;
        if (t == YAML_STREAM_START_EVENT || t == YAML_DOCUMENT_START_EVENT) continue;
        if (t == YAML_DOCUMENT_END_EVENT) { if (have) break; continue; }
        ok = parse_node(L, u, anchors, 0);
        have = ok;
    }
    if (u->event_live) { yaml_event_delete(&u->event); u->event_live = 0; }
    yaml_parser_delete(&u->parser);
    u->parser_live = 0;
    if (!ok) {
        lua_pushnil(L);
        lua_pushstring(L, u->err);
        return 2;
    }
    if (!have) lua_pushlightuserdata(L, NULL);
    STACK_LEAVE(L, 2);                                  /* text ud anchors value */
    return 1;
}

static int yaml_resolve(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    resolve_plain(L, s, n);
    return 1;
}

static const luaL_Reg yaml_funcs[] = {
    { "load", yaml_load },
    { "resolve", yaml_resolve },
    { NULL, NULL }
};

int luaopen_provision_yaml(lua_State *L)
{
    if (luaL_newmetatable(L, PARSER_MT)) {
        lua_pushcfunction(L, yaml_ud_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    luaL_newmetatable(L, ARRAY_MT);   /* shared with provision._json */
    lua_pop(L, 1);
    luaL_newlib(L, yaml_funcs);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    return 1;
}
