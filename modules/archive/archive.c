/* archive.c: "provision._archive": safe extraction and reproducible
 * creation of archives through libarchive (loaded at first use). The
 * resources (archive.extract, archive.create) are lua/provision/archive.lua.
 *
 *   archive.extract{ src, dest, staging, strip_components=0, owner=false,
 *                    max_size=, max_entries= }                   (extract.c)
 *     -> { entries, bytes, created_dest, dest_id, files = { rel = code } }
 *      | nil, message
 *   archive.stage{ dest, name } -> id | nil, message, errno        (stage.c)
 *   archive.unextract{ dest, dest_id, files, created_dest }       (unextract.c)
 *     -> { removed = n, left = { "rel: why", ... } } | nil, message
 *   archive.verify{ dest, files } -> true | false, why             (unextract.c)
 *   archive.create{ src, dest, format = "tar"|"tar.gz"|"tar.xz"|"zip",
 *                   owner = "root"?, mtime = seconds? }            (create.c)
 *     -> { entries, bytes } | nil, message
 *   archive.list(src) -> { { path, type, size, mode, uid, gid, link, hardlink, mtime }... }
 *   archive.tree_digest(path [, skip]) -> hex | nil, message, errno: SHA-256 of the tree's names,
 *     types, modes, sizes, mtimes and link targets (what create would read;
 *     skip: create's dest, left out when it is inside the tree, with the
 *     mtime of the folder holding it, which every create changes).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lazy_archive.h"
#include "digest.h"
#include "tree.h"
#include "archive.h"

void archive_say(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

int archive_same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

int archive_names_at(const char *path, char ***out, size_t *nout)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) { *out = NULL; *nout = 0; return -1; }
    int r = tree_names(fd, 0, out, nout), e = errno;
    close(fd);
    errno = e;
    return r;
}

/* idempotent: the end of a job, and __gc. The working folder first (an
 * extraction runs inside its staging folder), then what is left of the
 * staging folder or temp file, through the folder that holds them. */
void archive_job_release(archive_job *j)
{
    if (j->cwdfd >= 0) { if (fchdir(j->cwdfd) < 0) { /* nothing better to do */ } close(j->cwdfd); j->cwdfd = -1; }
    if (j->r) { archive_read_free(j->r); j->r = NULL; }
    if (j->w) { archive_write_free(j->w); j->w = NULL; }
    if (j->entry) { archive_entry_free(j->entry); j->entry = NULL; }
    if (j->fd >= 0) { close(j->fd); j->fd = -1; }
    if (j->pfd >= 0) {
        char err[TREE_ERR];
        /* not interruptible: a SIGINT must not leave a half-removed one;
         * and only while the name is still our staging folder */
        struct stat a, b;
        if (j->staging[0] && j->sfd >= 0 && fstat(j->sfd, &a) == 0
            && fstatat(j->pfd, j->staging, &b, AT_SYMLINK_NOFOLLOW) == 0 && archive_same_file(&a, &b))
            tree_remove_at(j->pfd, j->staging, j->staging, TREE_RECURSIVE | TREE_OURS, err, sizeof err);
        if (j->tmpfile[0]) unlinkat(j->pfd, j->tmpfile, 0);
        close(j->pfd);
        j->pfd = -1;
    }
    if (j->sfd >= 0) { close(j->sfd); j->sfd = -1; }
    j->staging[0] = j->tmpfile[0] = '\0';
    for (size_t i = 0; i < j->nlinks; i++) free(j->links[i].path);
    free(j->links);
    j->links = NULL;
    j->nlinks = j->caplinks = 0;
    for (size_t i = 0; i < j->ndirs; i++) free(j->dirs[i].rel);
    free(j->dirs);
    free(j->byino);
    j->dirs = NULL;
    j->byino = NULL;
    j->ndirs = j->capdirs = 0;
    for (size_t i = 0; i < j->nplaced; i++) free(j->placed[i].rel);
    free(j->placed);
    j->placed = NULL;
    j->nplaced = j->capplaced = 0;
}

static int job_gc(lua_State *L)
{
    archive_job_release(luaL_checkudata(L, 1, JOB_MT));
    return 0;
}

size_t archive_path_join(char *path, size_t len, const char *name)
{
    size_t nl = strlen(name);
    if (len + 1 + nl >= PATH_MAX) return 0;
    path[len] = '/';
    memcpy(path + len + 1, name, nl + 1);
    return len + 1 + nl;
}

archive_job *archive_job_new(lua_State *L)
{
    archive_job *j = lua_newuserdatauv(L, sizeof *j, 0);
    memset(j, 0, sizeof *j);
    j->fd = j->pfd = j->sfd = j->cwdfd = -1;   /* the safe "closed" state first */
    luaL_setmetatable(L, JOB_MT);
    return j;
}

const char *archive_opt_string(lua_State *L, int t, const char *k, int required)
{
    lua_getfield(L, t, k);
    const char *s = lua_tostring(L, -1);
    if (!s && (required || !lua_isnil(L, -1)))
        luaL_error(L, "archive: option '%s' must be a string", k);
    lua_pop(L, 1);   /* borrowed: the options table keeps it */
    return s;
}

/* ---- listing and digests */

static const char *type_name(mode_t m)
{
    if (S_ISREG(m)) return "file";
    if (S_ISDIR(m)) return "directory";
    if (S_ISLNK(m)) return "symlink";
    if (S_ISCHR(m)) return "char";
    if (S_ISBLK(m)) return "block";
    if (S_ISFIFO(m)) return "fifo";
    return "other";
}

static int archive_list(lua_State *L)
{
    const char *src = luaL_checkstring(L, 1);
    STACK_ENTER(L);
    lua_newtable(L);
    archive_job *j = archive_job_new(L);        /* src list job */
    j->r = archive_read_new();
    if (!j->r) return luaL_error(L, "out of memory");
    archive_read_support_filter_all(j->r);
    archive_read_support_format_all(j->r);
    if (archive_read_open_filename(j->r, src, 65536) != ARCHIVE_OK) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", src, archive_error_string(j->r));
        archive_job_release(j);
        return 2;
    }
    lua_Integer n = 0;
    struct archive_entry *e;
    int rc;
    while ((rc = archive_read_next_header(j->r, &e)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
        lua_createtable(L, 0, 9);               /* src list job entry */
        lua_pushstring(L, archive_entry_pathname(e));
        lua_setfield(L, -2, "path");
        lua_pushstring(L, type_name(archive_entry_filetype(e)));
        lua_setfield(L, -2, "type");
        lua_pushinteger(L, (lua_Integer)archive_entry_size(e));
        lua_setfield(L, -2, "size");
        lua_pushinteger(L, (lua_Integer)(archive_entry_mode(e) & 07777));
        lua_setfield(L, -2, "mode");
        lua_pushinteger(L, (lua_Integer)archive_entry_uid(e));
        lua_setfield(L, -2, "uid");
        lua_pushinteger(L, (lua_Integer)archive_entry_gid(e));
        lua_setfield(L, -2, "gid");
        lua_pushinteger(L, (lua_Integer)archive_entry_mtime(e));
        lua_setfield(L, -2, "mtime");
        if (archive_entry_symlink(e)) {
            lua_pushstring(L, archive_entry_symlink(e));
            lua_setfield(L, -2, "link");
        }
        if (archive_entry_hardlink(e)) {
            lua_pushstring(L, archive_entry_hardlink(e));
            lua_setfield(L, -2, "hardlink");
        }
        if (archive_entry_uname(e)) {
            lua_pushstring(L, archive_entry_uname(e));
            lua_setfield(L, -2, "uname");
        }
        lua_rawseti(L, -3, ++n);                /* src list job */
    }
    if (rc != ARCHIVE_EOF) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", src, archive_error_string(j->r));
        archive_job_release(j);
        return 2;
    }
    archive_job_release(j);
    lua_pop(L, 1);                              /* src list */
    STACK_LEAVE(L, 1);
    return 1;
}

/* skip[0]: a file left out (create's dest); skip[1]: the folder holding
 * it, whose mtime every create changes (also left out). NULL: none; an
 * st_nlink of 0: that one is not there. */
static int digest_tree(provision_digest *md, int dfd, const char *rel, const struct stat *skip, int depth)
{
    char **list = NULL;
    size_t n = 0;
    if (depth > 4000) { errno = ELOOP; return -1; }
    if (tree_names(dfd, 1, &list, &n) < 0) return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *base = list[i];
        char name[PATH_MAX], line[PATH_MAX * 2 + 128], t[PATH_MAX] = "";
        archive_say(name, sizeof name, "%s%s%s", rel, *rel ? "/" : "", base);
        struct stat st;
        if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0 || (skip && skip[0].st_nlink && archive_same_file(&st, &skip[0])))
            continue;
        if (skip && skip[1].st_nlink && archive_same_file(&st, &skip[1])) st.st_mtim.tv_sec = st.st_mtim.tv_nsec = 0;
        if (S_ISLNK(st.st_mode)) {
            ssize_t m = readlinkat(dfd, base, t, sizeof t - 1);
            t[m > 0 ? m : 0] = '\0';
        }
        int len = snprintf(line, sizeof line, "%s\t%o\t%lld\t%lld.%09ld\t%u:%u\t%s\n", name,
                           (unsigned)st.st_mode, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
                           st.st_mtim.tv_nsec, (unsigned)st.st_uid, (unsigned)st.st_gid, t);
        provision_digest_update(md, line, (size_t)len);
        if (S_ISDIR(st.st_mode)) {   /* into it through a descriptor, never a link */
            int sub = openat(dfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) { rc = -1; break; }
            rc = digest_tree(md, sub, name, skip, depth + 1);
            close(sub);
        }
    }
    int e = errno;
    tree_free_names(list, n);
    errno = e;
    return rc;
}

/* tree_digest(path [, skip]): what create would read of path (reached as
 * tree.h says, walked without following a link) */
static int archive_tree_digest(lua_State *L)
{
    const char *path = provision_checkpath(L, 1);
    const char *skip_path = luaL_optstring(L, 2, NULL);
    struct stat skip[2];
    memset(skip, 0, sizeof skip);
    char err[TREE_ERR];
    if (skip_path) {
        char name[NAME_MAX + 1];
        int pfd = tree_walk(skip_path, 0, name, err, sizeof err);
        if (pfd < 0 || fstatat(pfd, name, &skip[0], AT_SYMLINK_NOFOLLOW) < 0) skip[0].st_nlink = 0;
        if (pfd < 0 || fstat(pfd, &skip[1]) < 0) skip[1].st_nlink = 0;
        if (pfd >= 0) close(pfd);
    }
    int dfd = tree_open(path, O_RDONLY | O_DIRECTORY, 1, err, sizeof err);
    if (dfd < 0) return provision_fail(L, errno, "%s", err);
    provision_digest md;
    if (provision_digest_init(&md, DIGEST_SHA256)) {
        provision_digest_free(&md);
        close(dfd);
        return luaL_error(L, "out of memory");
    }
    int rc = digest_tree(&md, dfd, "", skip_path ? skip : NULL, 0);
    int e = errno;
    close(dfd);
    char hx[DIGEST_HEX_MAX];
    provision_digest_hex(&md, hx);
    provision_digest_free(&md);
    if (rc < 0) return provision_fail(L, e, "%s: %s", path, strerror(e));
    lua_pushstring(L, hx);
    return 1;
}

static const luaL_Reg archive_funcs[] = {
    { "create", archive_create },
    { "extract", archive_extract },
    { "list", archive_list },
    { "stage", archive_stage },
    { "tree_digest", archive_tree_digest },
    { "unextract", archive_unextract },
    { "verify", archive_verify },
    { NULL, NULL }
};

int luaopen_provision_archive(lua_State *L)
{
    char err[256];
    if (provision_load_archive(err, sizeof err) < 0) return luaL_error(L, "%s", err);
    if (luaL_newmetatable(L, JOB_MT)) {
        lua_pushcfunction(L, job_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    luaL_newlib(L, archive_funcs);
    lua_pushstring(L, archive_version_details());
    lua_setfield(L, -2, "version");
    return 1;
}
