/* unextract.c: undoing and checking what an extract placed (its manifest,
 * files = { rel = code }: place.c), as extract.c describes
 * archive.unextract and archive.verify. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "tree.h"
#include "archive.h"

#define LEFT_SHOWN 20   /* the "left" reasons kept (nleft counts them all) */

typedef struct { const char *rel; const char *code; int depth; } entry_ref;

static int by_depth(const void *a, const void *b)
{
    const entry_ref *x = a, *y = b;
    if (x->depth != y->depth) return y->depth - x->depth;   /* deepest first */
    return strcmp(y->rel, x->rel);
}

/* the manifest table at index t as an array (strings borrowed from it) */
static entry_ref *manifest_refs(lua_State *L, int t, size_t *n)
{
    STACK_ENTER(L);
    size_t cap = 64, k = 0;
    entry_ref *v = malloc(cap * sizeof *v);
    if (!v) return NULL;
    lua_pushnil(L);
    while (lua_next(L, t)) {                    /* ... rel code */
        if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
            if (k == cap) {
                entry_ref *nv = realloc(v, cap * 2 * sizeof *nv);
                if (!nv) { free(v); lua_pop(L, 2); return NULL; }
                v = nv; cap *= 2;
            }
            v[k].rel = lua_tostring(L, -2);
            v[k].code = lua_tostring(L, -1);
            int d = 0;
            for (const char *p = v[k].rel; *p; p++) d += *p == '/';
            v[k].depth = d;
            k++;
        }
        lua_pop(L, 1);                          /* ... rel */
    }
    *n = k;
    STACK_LEAVE(L, 0);
    return v;
}

/* dest's folder and dest, without following a link at dest; -1 with why */
static int open_dest(const char *dest, const char *dest_id, int *pfd, char name[NAME_MAX + 1], char *why, size_t n)
{
    *pfd = tree_walk(dest, 0, name, why, n);
    if (*pfd < 0) return -1;
    int fd = openat(*pfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP || errno == ENOTDIR)
            archive_say(why, n, "%s is not the folder extracted into (a link or a file now)", dest);
        else
            archive_say(why, n, "%s: %s", dest, strerror(errno));
        return -1;
    }
    struct stat st;
    char id[64];
    if (dest_id && *dest_id && fstat(fd, &st) == 0 && (tree_identity(&st, id, sizeof id), strcmp(id, dest_id) != 0)) {
        close(fd);
        archive_say(why, n, "%s is not the folder extracted into (replaced since)", dest);
        errno = ESTALE;
        return -1;
    }
    return fd;
}

/* one entry the extract placed (not one that was there before), removed
 * while it is the very thing placed: NULL (removed, or gone already), or
 * why it is left */
static const char *remove_placed(int destfd, const entry_ref *v, lua_Integer *removed)
{
    const char *code = v->code;
    char base[NAME_MAX + 1];
    const char *reason = NULL;
    int dfd = tree_walk_at(destfd, v->rel, base);
    struct stat st;
    if (dfd < 0) {
        if (errno != ENOENT) reason = "reached through a link, or its folder replaced: not followed";
    } else if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno != ENOENT) reason = strerror(errno);
    } else if (!archive_same_as_recorded(&st, code)) {
        reason = code[0] == 'd' ? "not the folder it made (replaced since)" : "changed since it was extracted";
    } else if (unlinkat(dfd, base, code[0] == 'd' ? AT_REMOVEDIR : 0) == 0) {
        (*removed)++;
    } else if (errno == ENOTEMPTY || errno == EEXIST) {
        reason = "holds files it did not make";
    } else if (errno != ENOENT) {
        reason = strerror(errno);
    }
    if (dfd >= 0) close(dfd);
    return reason;
}

int archive_unextract(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    STACK_ENTER(L);
    const char *dest = archive_opt_string(L, 1, "dest", 1);
    const char *dest_id = archive_opt_string(L, 1, "dest_id", 0);
    lua_getfield(L, 1, "created_dest");
    int created_dest = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, 1, "files");
    luaL_checktype(L, -1, LUA_TTABLE);
    int t = lua_gettop(L);                      /* opts files */
    lua_newtable(L);                            /* opts files left */
    int lt = lua_gettop(L);
    lua_Integer removed = 0, nleft = 0;
    char name[NAME_MAX + 1], why[TREE_ERR];
    int pfd = -1;
    int destfd = open_dest(dest, dest_id, &pfd, name, why, sizeof why);
    if (destfd < 0) {
        if (pfd >= 0) close(pfd);
        if (errno == ENOENT) goto done;        /* gone already */
        lua_pushstring(L, why);
        lua_rawseti(L, lt, ++nleft);
        goto done;
    }
    size_t n = 0;
    entry_ref *v = manifest_refs(L, t, &n);
    if (!v) { close(destfd); close(pfd); return luaL_error(L, "archive.unextract: out of memory"); }
    qsort(v, n, sizeof *v, by_depth);
    for (size_t i = 0; i < n; i++) {
        if (provision_interrupted()) { free(v); close(destfd); close(pfd); lua_pushnil(L); lua_pushliteral(L, "interrupted"); return 2; }
        if (v[i].code[0] == '=') continue;   /* it was there before: not the extract's */
        const char *reason = remove_placed(destfd, &v[i], &removed);
        if (reason) {
            if (nleft < LEFT_SHOWN) {
                lua_pushfstring(L, "%s/%s: %s", dest, v[i].rel, reason);
                lua_rawseti(L, lt, nleft + 1);
            }
            nleft++;
        }
    }
    free(v);
    close(destfd);
    if (created_dest) {
        if (unlinkat(pfd, name, AT_REMOVEDIR) == 0) removed++;
        else if (errno == ENOTEMPTY || errno == EEXIST) {
            if (nleft < LEFT_SHOWN) { lua_pushfstring(L, "%s: holds files it did not make", dest); lua_rawseti(L, lt, nleft + 1); }
            nleft++;
        }
    }
    close(pfd);
done:
    lua_createtable(L, 0, 3);                   /* opts files left res */
    lua_pushinteger(L, removed);
    lua_setfield(L, -2, "removed");
    lua_pushvalue(L, lt);
    lua_setfield(L, -2, "left");
    lua_pushinteger(L, nleft);
    lua_setfield(L, -2, "nleft");
    STACK_LEAVE(L, 3);
    return 1;
}

int archive_verify(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    const char *dest = archive_opt_string(L, 1, "dest", 1);
    lua_getfield(L, 1, "files");
    luaL_checktype(L, -1, LUA_TTABLE);
    char err[TREE_ERR];
    int dfd = tree_open(dest, O_PATH | O_DIRECTORY, 1, err, sizeof err);
    if (dfd < 0) {
        lua_pushboolean(L, 0);
        lua_pushstring(L, err);
        return 2;
    }
    STACK_ENTER(L);                             /* opts files */
    lua_pushnil(L);
    while (lua_next(L, 2)) {                    /* opts files rel code */
        if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
            const char *rel = lua_tostring(L, -2), *code = lua_tostring(L, -1);
            if (code[0] == '=') code++;
            struct stat st;
            const char *why = NULL;
            if (fstatat(dfd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0) why = "is gone";
            else if (code[0] == 'd' ? !S_ISDIR(st.st_mode) : !archive_same_as_recorded(&st, code))
                why = "changed since it was extracted";
            if (why) {
                close(dfd);
                lua_pushboolean(L, 0);
                lua_pushfstring(L, "%s/%s %s", dest, rel, why);
                return 2;
            }
        }
        lua_pop(L, 1);                          /* opts files rel */
    }
    close(dfd);
    lua_pushboolean(L, 1);
    STACK_LEAVE(L, 1);
    return 1;
}
