/* extract.c: archive.extract, step by step (safety.c, stage.c, place.c), and
 * what undoes and checks it (unextract.c).
 *
 *   archive.stage{ dest, name } -> id | nil, message, errno          (stage.c)
 *     Makes the staging folder `name` (0700: a name the caller picked
 *     nobody can guess, and recorded first) beside dest, in the folder of
 *     dest reached as core/tree.h says; its "device:inode", which the caller
 *     records too: a killed run leaves it for the next one to remove, and
 *     only that very folder is removed.
 *   archive.extract{ src, dest, staging, staging_id, strip_components=0,
 *                    owner=false, max_size=, max_entries= }
 *     -> { entries, bytes, created_dest, dest_id, files = { rel = code } }
 *      | nil, message
 *     Extracts tar, tar.gz, tar.bz2, tar.xz, tar.zst, zip (what libarchive
 *     reads) into that staging folder (refused when it is not that very
 *     one). The extraction runs with the working folder
 *     inside the staging folder (fchdir), so every path libarchive and the
 *     checks below use is relative to it, and then moves the result into
 *     place through descriptors: dest itself when it did not exist, else
 *     entry by entry (an existing entry is replaced; folders merge; a link
 *     already in dest is replaced, never followed).
 *     A hostile archive fails before anything reaches dest:
 *       - an entry (or hard link target) with an absolute path or a '..'
 *         component, or a name that is not UTF-8 (the state is JSON);
 *       - a symlink whose target is absolute, or that resolves, following
 *         the other symlinks of the archive, to somewhere outside dest;
 *       - writing through a symlink (libarchive's SECURE_SYMLINKS);
 *       - more than max_size bytes or max_entries entries in all (a small
 *         archive may expand to gigabytes): 0 is no limit.
 *     The staging folder is removed on every failure (and on SIGINT/SIGTERM).
 *     Folders get the archive's modes, read-only ones too: staged folders
 *     stay u+rwx until everything moved (and are walked for symlinks even
 *     when the archive makes them unreadable), a read-only folder already in
 *     dest is opened while it takes entries; as non-root too.
 *     owner = false (the default: an untrusted, downloaded archive): entries
 *     are owned by the user extracting, setuid/setgid bits are dropped
 *     (mode & 01777), and a device file, FIFO or socket entry fails the
 *     extraction naming it, before anything reaches dest: as root, such an
 *     archive would otherwise plant a crw-rw-rw- /dev/mem or a setuid-root
 *     shell. owner = true trusts the archive (an image root filesystem):
 *     owners and setuid/setgid bits as recorded, and device files and FIFOs
 *     are created (devices need root: else the entry fails).
 *     files: every entry that reached dest, by its path under dest, with a
 *     code: "f" (file), "l" (link), "o" (other) and its stamp (digest.h), or
 *     "d" (folder) and its device:inode; "=" in front when something was
 *     there before (replaced, or a folder merged into): not the extract's
 *     own. dest_id: dest's device:inode.
 *   archive.unextract{ dest, dest_id, files, created_dest }         (unextract.c)
 *     -> { removed = n, left = { "rel: why", ... }, nleft = n }
 *     What an extract placed, removed while it is the very thing placed
 *     (same stamp: an edited file is left), folders only when empty (a
 *     folder holding files it did not make is left), deepest first, never
 *     following a link below dest, dest itself only when the extract made
 *     it and it is empty, and only while dest is the folder extracted into.
 *   archive.verify{ dest, files } -> true | false, why               (unextract.c)
 *     Is every entry still there as placed (a no-op check: drift)?
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lazy_archive.h"
#include "tree.h"
#include "archive.h"

static lua_Integer opt_integer(lua_State *L, int t, const char *k)
{
    lua_getfield(L, t, k);
    lua_Integer v = luaL_optinteger(L, -1, 0);
    lua_pop(L, 1);
    if (v < 0) luaL_error(L, "archive.extract: %s must be >= 0", k);
    return v;
}

/* the options of the table at 1; raises on misuse */
static void read_opts(lua_State *L, extract_opts *o)
{
    memset(o, 0, sizeof *o);
    o->src = archive_opt_string(L, 1, "src", 1);
    o->dest = archive_opt_string(L, 1, "dest", 1);
    o->staging = archive_opt_string(L, 1, "staging", 1);
    o->staging_id = archive_opt_string(L, 1, "staging_id", 1);
    const char *sg = o->staging;
    if (!*sg || strchr(sg, '/') || (sg[0] == '.' && (!sg[1] || (sg[1] == '.' && !sg[2]))))
        luaL_error(L, "archive.extract: staging must be a file name");
    o->strip_n = (int)opt_integer(L, 1, "strip_components");
    o->max_size = opt_integer(L, 1, "max_size");
    o->max_entries = opt_integer(L, 1, "max_entries");
    lua_getfield(L, 1, "owner");
    o->owner = lua_toboolean(L, -1);
    lua_pop(L, 1);
}

/* dest's folder (j->pfd, dest's name there in name), and the staging
 * folder archive.stage made beside dest (its name and identity recorded):
 * the very one, from here on the working folder */
static int enter_staging(archive_job *j, const extract_opts *o, char name[NAME_MAX + 1])
{
    j->pfd = tree_walk(o->dest, 0, name, j->err, sizeof j->err);
    if (j->pfd < 0) return -1;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        archive_say(j->err, sizeof j->err, "%s: not a folder name (it ends in . or ..)", o->dest);
        return -1;
    }
    /* something that is not a folder at dest: said before any work */
    struct stat ds;
    size_t dl = strlen(o->dest);
    if (fstatat(j->pfd, name, &ds, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(ds.st_mode)) {
        if (dl > 0 && o->dest[dl - 1] == '/') archive_say(j->err, sizeof j->err, "%s: %s", o->dest, strerror(ENOTDIR));
        else archive_say(j->err, sizeof j->err, "%s: exists and is %s, not a folder", o->dest,
                         S_ISLNK(ds.st_mode) ? "a symbolic link" : "a file");
        return -1;
    }
    j->sfd = openat(j->pfd, o->staging, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat ss;
    char id[64] = "";
    if (j->sfd >= 0 && fstat(j->sfd, &ss) == 0) tree_identity(&ss, id, sizeof id);
    if (j->sfd < 0 || strcmp(id, o->staging_id) != 0 || !tree_trusted_uid(ss.st_uid)) {
        archive_say(j->err, sizeof j->err, "%s (beside %s): %s", o->staging, o->dest,
                    j->sfd < 0 ? strerror(errno) : "not the staging folder made for this extraction");
        return -1;
    }
    archive_say(j->staging, sizeof j->staging, "%s", o->staging);
    j->cwdfd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (j->cwdfd < 0 || fchdir(j->sfd) < 0) {
        archive_say(j->err, sizeof j->err, "%s: %s", o->staging, strerror(errno));
        return -1;
    }
    return 0;
}

/* src as the caller named it: relative to the working folder the run
 * started in, not to the staging folder. A descriptor, or -1. */
static int open_src(archive_job *j, const char *src)
{
    if (src[0] == '/') return tree_open_regular(src, j->err, sizeof j->err);
    if (fchdir(j->cwdfd) < 0) { archive_say(j->err, sizeof j->err, "%s", strerror(errno)); return -1; }
    int fd = tree_open_regular(src, j->err, sizeof j->err);
    if (fchdir(j->sfd) < 0) {
        archive_say(j->err, sizeof j->err, "%s", strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

/* the archive to read (j->r, from src) and libarchive's writer (j->w)
 * with the safety options */
static int open_archive(archive_job *j, const extract_opts *o)
{
    j->r = archive_read_new();
    j->w = archive_write_disk_new();
    if (!j->r || !j->w) { archive_say(j->err, sizeof j->err, "out of memory"); return -1; }
    archive_read_support_filter_all(j->r);
    archive_read_support_format_all(j->r);
    int flags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_NODOTDOT
              | ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_UNLINK;
    if (o->owner) flags |= ARCHIVE_EXTRACT_OWNER;
    archive_write_disk_set_options(j->w, flags);
    archive_write_disk_set_standard_lookup(j->w);
    j->fd = open_src(j, o->src);
    if (j->fd < 0) return -1;
    if (archive_read_open_fd(j->r, j->fd, 65536) != ARCHIVE_OK) {
        archive_say(j->err, sizeof j->err, "%s: %s", o->src, archive_error_string(j->r));
        return -1;
    }
    return 0;
}

/* back to the working folder: what follows goes through descriptors */
static int leave_staging(archive_job *j)
{
    if (fchdir(j->cwdfd) < 0) { archive_say(j->err, sizeof j->err, "%s", strerror(errno)); return -1; }
    close(j->cwdfd);
    j->cwdfd = -1;
    return 0;
}

/* the result, with the manifest of what reached dest: pushed, or -1 (the
 * caller drops what was pushed) */
static int push_result(lua_State *L, archive_job *j, const extract_opts *o, int destfd, int created_dest)
{
    lua_createtable(L, 0, 5);                   /* res */
    lua_pushinteger(L, o->entries);
    lua_setfield(L, -2, "entries");
    lua_pushinteger(L, (lua_Integer)o->bytes);
    lua_setfield(L, -2, "bytes");
    lua_pushboolean(L, created_dest);
    lua_setfield(L, -2, "created_dest");
    struct stat ds;
    char id[64] = "";
    if (fstat(destfd, &ds) == 0) tree_identity(&ds, id, sizeof id);
    lua_pushstring(L, id);
    lua_setfield(L, -2, "dest_id");
    lua_newtable(L);                            /* res files */
    int t = lua_gettop(L);
    int rc = created_dest ? archive_manifest_all(L, j, t, destfd, o->dest)
                          : archive_manifest_placed(L, j, t, destfd);
    if (rc < 0) return -1;
    lua_setfield(L, -2, "files");               /* res */
    return 0;
}

int archive_extract(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    extract_opts o;
    read_opts(L, &o);
    archive_job *j = archive_job_new(L);     /* opts job */
    STACK_ENTER(L);
    int created_dest = 0, destfd = -1;
    char name[NAME_MAX + 1];
    if (enter_staging(j, &o, name) < 0 || open_archive(j, &o) < 0 || archive_write_entries(j, &o) < 0
        || archive_settle(j, o.owner) < 0 || archive_check_links(j, o.src) < 0 || leave_staging(j) < 0)
        goto fail;
    destfd = archive_place(j, o.dest, name, &created_dest);
    if (destfd < 0 || push_result(L, j, &o, destfd, created_dest) < 0) goto fail;   /* opts job res */
    /* the folders' own modes last: read-only ones were walked above */
    if (archive_restore_modes(j, destfd, 0) < 0) goto fail;
    close(destfd);
    archive_job_release(j);
    STACK_LEAVE(L, 1);
    return 1;
fail:
    if (destfd >= 0) close(destfd);
    archive_job_release(j);
    lua_settop(L, 2);
    lua_pushnil(L);
    lua_pushstring(L, j->err);
    return 2;
}
