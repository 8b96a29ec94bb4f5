/* create.c: archive.create, reproducibly: src's contents (not src itself)
 * in sorted order, with modes, symlinks, hard links (tar), devices; no
 * atime/ctime, no user/group names (or root/root with owner = "root"),
 * gzip without a timestamp, every mtime set to `mtime` when given: the same
 * tree gives the same bytes. Written to a temp file beside dest (a name no
 * other user can plant first), renamed into place; when dest is inside
 * src, neither dest nor the temp file is archived. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lazy_archive.h"
#include "tree.h"
#include "archive.h"

typedef struct {
    archive_job *j;
    int root_owner;
    int fixed_mtime;
    la_int64_t mtime;
    int tar;
    lua_Integer entries;
    long long bytes;
    struct stat skip[2];           /* dest and our temp file, when inside src */
    int nskip;
} create_ctx;

/* the folder dfd (full: its path, for messages; rel: its path in the
 * archive) and all under it, read through descriptors with O_NOFOLLOW: a
 * link in src is archived as a link, never followed */
static int add_tree(create_ctx *c, int dfd, const char *full, const char *rel)
{
    archive_job *j = c->j;
    char **list = NULL;
    size_t n = 0;
    if (tree_names(dfd, 1, &list, &n) < 0) { archive_say(j->err, sizeof j->err, "%s: %s", full, strerror(errno)); return -1; }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *base = list[i];
        char path[PATH_MAX], name[PATH_MAX];
        archive_say(path, sizeof path, "%s/%s", full, base);
        archive_say(name, sizeof name, "%s%s%s", rel, *rel ? "/" : "", base);
        if (provision_interrupted()) { archive_say(j->err, sizeof j->err, "interrupted"); rc = -1; continue; }
        struct stat st;
        if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) { archive_say(j->err, sizeof j->err, "%s: %s", path, strerror(errno)); rc = -1; continue; }
        if (S_ISSOCK(st.st_mode)) continue;     /* no archive holds a socket */
        int ours = 0;                           /* dest inside src: not itself */
        for (int k = 0; k < c->nskip; k++) ours |= archive_same_file(&st, &c->skip[k]);
        if (ours) continue;
        struct archive_entry *e = j->entry = archive_entry_new();
        if (!e) { archive_say(j->err, sizeof j->err, "out of memory"); rc = -1; continue; }
        archive_entry_copy_stat(e, &st);
        archive_entry_unset_atime(e);
        archive_entry_unset_ctime(e);
        archive_entry_unset_birthtime(e);
        archive_entry_set_mtime(e, c->fixed_mtime ? c->mtime : st.st_mtime, 0);
        archive_entry_set_ino64(e, 0);
        archive_entry_set_dev(e, 0);
        if (c->root_owner) {
            archive_entry_set_uid(e, 0); archive_entry_set_gid(e, 0);
            archive_entry_copy_uname(e, "root"); archive_entry_copy_gname(e, "root");
        }
        archive_entry_copy_pathname(e, name);
        if (S_ISLNK(st.st_mode)) {
            char t[PATH_MAX];
            ssize_t m = readlinkat(dfd, base, t, sizeof t - 1);
            if (m < 0) { archive_say(j->err, sizeof j->err, "%s: %s", path, strerror(errno)); rc = -1; continue; }
            t[m] = '\0';
            archive_entry_copy_symlink(e, t);
        }
        int hard = 0;
        if (c->tar && S_ISREG(st.st_mode) && st.st_nlink > 1) {
            for (size_t k = 0; k < j->nlinks; k++)
                if (j->links[k].dev == st.st_dev && j->links[k].ino == st.st_ino) {
                    archive_entry_copy_hardlink(e, j->links[k].path);
                    archive_entry_set_size(e, 0);
                    hard = 1;
                    break;
                }
            if (!hard) {
                if (j->nlinks == j->caplinks) {
                    size_t cap = j->caplinks ? j->caplinks * 2 : 16;
                    link_seen *nl = realloc(j->links, cap * sizeof *nl);
                    if (!nl) { archive_say(j->err, sizeof j->err, "out of memory"); rc = -1; continue; }
                    j->links = nl; j->caplinks = cap;
                }
                j->links[j->nlinks].dev = st.st_dev;
                j->links[j->nlinks].ino = st.st_ino;
                j->links[j->nlinks].path = strdup(name);
                if (j->links[j->nlinks].path) j->nlinks++;
            }
        }
        archive_entry_set_nlink(e, 1);
        if (archive_write_header(j->w, e) < ARCHIVE_WARN) {
            archive_say(j->err, sizeof j->err, "%s: %s", name, archive_error_string(j->w));
            rc = -1; continue;
        }
        if (S_ISREG(st.st_mode) && !hard && st.st_size > 0) {
            /* the very file lstat saw, never a link put in its place since */
            int fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
            struct stat fst;
            if (fd >= 0 && (fstat(fd, &fst) < 0 || !archive_same_file(&fst, &st))) {
                close(fd);
                fd = -1;
                errno = EAGAIN;
            }
            if (fd < 0) {
                archive_say(j->err, sizeof j->err, "%s: %s", path, errno == EAGAIN ? "replaced while being read" : strerror(errno));
                rc = -1;
                continue;
            }
            static char buf[65536];
            ssize_t r;
            long long left = st.st_size;
            while (left > 0 && (r = read(fd, buf, sizeof buf)) > 0) {
                if (r > left) r = (ssize_t)left;   /* grew while we read: keep the header's size */
                if (archive_write_data(j->w, buf, (size_t)r) < 0) {
                    archive_say(j->err, sizeof j->err, "%s: %s", name, archive_error_string(j->w));
                    rc = -1; break;
                }
                left -= r;
                c->bytes += r;
                if (provision_interrupted()) { archive_say(j->err, sizeof j->err, "interrupted"); rc = -1; break; }
            }
            close(fd);
            if (!rc && left > 0) { archive_say(j->err, sizeof j->err, "%s: shrank while being read", path); rc = -1; }
        }
        archive_entry_free(e);
        j->entry = NULL;
        c->entries++;
        if (!rc && S_ISDIR(st.st_mode)) {
            int sub = openat(dfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            struct stat sst;
            if (sub < 0 || fstat(sub, &sst) < 0 || !archive_same_file(&sst, &st)) {
                archive_say(j->err, sizeof j->err, "%s: %s", path, sub < 0 ? strerror(errno) : "replaced while being read");
                rc = -1;
            } else {
                rc = add_tree(c, sub, path, name);
            }
            if (sub >= 0) close(sub);
        }
    }
    tree_free_names(list, n);
    return rc;
}

int archive_create(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    const char *src = archive_opt_string(L, 1, "src", 1);
    const char *dest = archive_opt_string(L, 1, "dest", 1);
    const char *format = archive_opt_string(L, 1, "format", 0);
    const char *owner = archive_opt_string(L, 1, "owner", 0);
    if (!format) format = "tar";
    if (owner && strcmp(owner, "root") != 0)
        return luaL_error(L, "archive.create: owner must be \"root\" (or nothing: keep the files' owners)");
    create_ctx c;
    memset(&c, 0, sizeof c);
    c.root_owner = owner != NULL;
    lua_getfield(L, 1, "mtime");
    if (!lua_isnil(L, -1)) { c.fixed_mtime = 1; c.mtime = (la_int64_t)luaL_checkinteger(L, -1); }
    lua_pop(L, 1);
    int fmt;
    if (strcmp(format, "tar") == 0) fmt = 0;
    else if (strcmp(format, "tar.gz") == 0 || strcmp(format, "tgz") == 0) fmt = 1;
    else if (strcmp(format, "tar.xz") == 0) fmt = 2;
    else if (strcmp(format, "zip") == 0) fmt = 3;
    else return luaL_error(L, "archive.create: format must be tar, tar.gz, tar.xz or zip, not '%s'", format);
    c.tar = fmt != 3;
    archive_job *j = archive_job_new(L);
    c.j = j;
    /* src reached as tree.h says, held by the job (freed whatever happens) */
    j->sfd = tree_open(src, O_RDONLY | O_DIRECTORY, 1, j->err, sizeof j->err);
    if (j->sfd < 0) {
        if (errno == ENOTDIR) archive_say(j->err, sizeof j->err, "%s: not a folder", src);
        goto fail;
    }
    /* the temp file beside dest, under a name nobody can plant first, in
     * the folder reached as tree.h says; renamed through that folder */
    char name[NAME_MAX + 1];
    j->pfd = tree_walk(dest, 0, name, j->err, sizeof j->err);
    if (j->pfd < 0) goto fail;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        archive_say(j->err, sizeof j->err, "%s: not a file name", dest);
        goto fail;
    }
    if (fstatat(j->pfd, name, &c.skip[c.nskip], AT_SYMLINK_NOFOLLOW) == 0) c.nskip++;
    {
        char prefix[NAME_MAX + 1];
        archive_say(prefix, sizeof prefix, "%.240s.provision", name);
        j->fd = tree_create_temp(j->pfd, prefix, 0600, j->tmpfile, j->err, sizeof j->err);
    }
    if (j->fd < 0) {
        archive_say(j->err, sizeof j->err, "%s: %s", dest, strerror(errno));
        j->tmpfile[0] = '\0';
        goto fail;
    }
    if (fstat(j->fd, &c.skip[c.nskip]) == 0) c.nskip++;
    j->w = archive_write_new();
    if (!j->w) { archive_say(j->err, sizeof j->err, "out of memory"); goto fail; }
    if (fmt == 3) archive_write_set_format_zip(j->w);
    else archive_write_set_format_pax_restricted(j->w);
    if (fmt == 1) {
        archive_write_add_filter_gzip(j->w);
        archive_write_set_filter_option(j->w, "gzip", "timestamp", NULL);   /* none */
    } else if (fmt == 2) {
        archive_write_add_filter_xz(j->w);
    }
    archive_write_set_bytes_in_last_block(j->w, 1);
    if (archive_write_open_fd(j->w, j->fd) != ARCHIVE_OK) {
        archive_say(j->err, sizeof j->err, "%s: %s", dest, archive_error_string(j->w));
        goto fail;
    }
    if (add_tree(&c, j->sfd, src, "") < 0) goto fail;
    if (archive_write_close(j->w) != ARCHIVE_OK) {
        archive_say(j->err, sizeof j->err, "%s: %s", dest, archive_error_string(j->w));
        goto fail;
    }
    mode_t um = umask(0); umask(um);
    if (fchmod(j->fd, 0666 & ~um) < 0 || fsync(j->fd) < 0 || renameat(j->pfd, j->tmpfile, j->pfd, name) < 0) {
        archive_say(j->err, sizeof j->err, "%s: %s", dest, strerror(errno));
        goto fail;
    }
    j->tmpfile[0] = '\0';
    tree_sync_dir(j->pfd);
    archive_job_release(j);
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, c.entries);
    lua_setfield(L, -2, "entries");
    lua_pushinteger(L, (lua_Integer)c.bytes);
    lua_setfield(L, -2, "bytes");
    return 1;
fail:
    archive_job_release(j);
    lua_pushnil(L);
    lua_pushstring(L, j->err);
    return 2;
}

