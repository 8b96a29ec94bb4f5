/* stage.c: the staging folder of an extraction (extract.c says why): made
 * by archive.stage, filled from the archive while it is the working
 * folder (every entry checked first: safety.c), then settled: its folders
 * opened (u+rwx) until everything moved, with the modes they are to have
 * in dest kept aside. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lazy_archive.h"
#include "tree.h"
#include "archive.h"

/* stage{ dest, name } -> the new staging folder's "device:inode" | nil, message, errno:
 * made (0700) beside dest, in dest's folder reached as tree.h says */
int archive_stage(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *dest = archive_opt_string(L, 1, "dest", 1);
    const char *name = archive_opt_string(L, 1, "name", 1);
    if (!*name || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return luaL_error(L, "archive.stage: name must be a file name");
    char base[NAME_MAX + 1], err[TREE_ERR];
    int pfd = tree_walk(dest, 0, base, err, sizeof err);
    if (pfd < 0) return provision_fail(L, errno, "%s", err);
    struct stat st;
    int r = mkdirat(pfd, name, 0700), e = errno;
    if (r == 0 && fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) { r = -1; e = errno; }
    close(pfd);
    if (r < 0) return provision_fail(L, e, "%s (beside %s): %s", name, dest, strerror(e));
    char id[64];
    tree_identity(&st, id, sizeof id);
    lua_pushstring(L, id);
    return 1;
}

/* ---- filled from the archive */

/* the entry's data, block by block, within max_size */
static int write_data(archive_job *j, extract_opts *o, struct archive_entry *e, const char *ename)
{
    if (archive_entry_size(e) <= 0) return 0;
    const void *buf; size_t len; la_int64_t off;
    int rc;
    while ((rc = archive_read_data_block(j->r, &buf, &len, &off)) == ARCHIVE_OK) {
        if (o->max_size > 0 && (long long)len > o->max_size - o->bytes) {
            archive_say(j->err, sizeof j->err, "%s: more than max_size (%lld bytes) in all; nothing was "
                        "extracted (raise max_size to allow it)", o->src, (long long)o->max_size);
            return -1;
        }
        if (archive_write_data_block(j->w, buf, len, off) < ARCHIVE_OK) {
            archive_say(j->err, sizeof j->err, "%s: entry '%s': %s", o->src, ename, archive_error_string(j->w));
            return -1;
        }
        o->bytes += (long long)len;
        if (provision_interrupted()) { archive_say(j->err, sizeof j->err, "interrupted"); return -1; }
    }
    if (rc != ARCHIVE_EOF) {
        archive_say(j->err, sizeof j->err, "%s: entry '%s': %s", o->src, ename, archive_error_string(j->r));
        return -1;
    }
    return 0;
}

/* one checked entry at rel (in the staging folder): 0, 1 (a hard link
 * to what strip_components leaves out: skipped), or -1 */
static int write_entry(archive_job *j, extract_opts *o, struct archive_entry *e, const char *ename, const char *rel)
{
    const char *hl = archive_entry_hardlink(e);
    archive_entry_copy_pathname(e, rel);   /* relative to the staging folder */
    if (hl) {
        const char *hrel = archive_strip(hl, o->strip_n);
        if (!hrel) return 1;
        archive_entry_copy_hardlink(e, hrel);
    }
    if (archive_write_header(j->w, e) < ARCHIVE_WARN) {
        archive_say(j->err, sizeof j->err, "%s: entry '%s': %s", o->src, ename, archive_error_string(j->w));
        return -1;
    }
    if (write_data(j, o, e, ename) < 0) return -1;
    if (archive_write_finish_entry(j->w) < ARCHIVE_WARN) {
        archive_say(j->err, sizeof j->err, "%s: entry '%s': %s", o->src, ename, archive_error_string(j->w));
        return -1;
    }
    return 0;
}

int archive_write_entries(archive_job *j, extract_opts *o)
{
    for (;;) {
        struct archive_entry *e;
        int rc = archive_read_next_header(j->r, &e);
        if (rc == ARCHIVE_EOF) break;
        if (rc < ARCHIVE_WARN) {
            archive_say(j->err, sizeof j->err, "%s: %s", o->src, archive_error_string(j->r));
            return -1;
        }
        if (provision_interrupted()) { archive_say(j->err, sizeof j->err, "interrupted"); return -1; }
        /* copied: archive_entry_copy_pathname frees the entry's own */
        char ename[PATH_MAX];
        const char *rel;
        int c = archive_check_entry(j, o, e, ename, &rel);
        if (c == 0) c = write_entry(j, o, e, ename, rel);
        if (c < 0) return -1;
        if (c == 0) o->entries++;
    }
    if (archive_write_close(j->w) != ARCHIVE_OK) {   /* sets the folders' modes and times */
        archive_say(j->err, sizeof j->err, "%s: %s", o->dest, archive_error_string(j->w));
        return -1;
    }
    return 0;
}

/* ---- settled */

/* a staged folder and the mode it is to have in dest */
static int keep_dir_mode(archive_job *j, const struct stat *st, mode_t want, const char *rel)
{
    if (j->ndirs == j->capdirs) {
        size_t cap = j->capdirs ? j->capdirs * 2 : 16;
        dir_mode *nd = realloc(j->dirs, cap * sizeof *nd);
        if (!nd) return -1;
        j->dirs = nd; j->capdirs = cap;
    }
    dir_mode *dm = &j->dirs[j->ndirs];
    dm->dev = st->st_dev; dm->ino = st->st_ino; dm->mode = want; dm->merged = 0;
    if (!(dm->rel = strdup(rel))) return -1;
    j->ndirs++;
    return 0;
}

/* After extraction, before anything moves: every entry below path (a
 * folder, len bytes of a PATH_MAX buffer; rootlen: the staging folder's)
 * loses its setuid/setgid bits unless owner (the archive is trusted), and
 * every folder is made u+rwx, its mode to have in dest kept in j->dirs: a
 * read-only folder must be walked (for symlinks), emptied when merged or
 * removed, and moved (a rename into another folder writes its '..').
 * -1 with the reason in j->err. */
static int settle(archive_job *j, char *path, size_t len, size_t rootlen, int owner)
{
    char **names;
    size_t n;
    if (archive_names_at(path, &names, &n) < 0) {
        archive_say(j->err, sizeof j->err, "%s: %s", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t sub = archive_path_join(path, len, names[i]);
        if (!sub) {
            archive_say(j->err, sizeof j->err, "%s/%s: %s", path, names[i], strerror(ENAMETOOLONG));
            rc = -1;
            break;
        }
        struct stat st;
        if (lstat(path, &st) < 0) {
            archive_say(j->err, sizeof j->err, "%s: %s", path, strerror(errno));
            rc = -1;
        } else if (!S_ISLNK(st.st_mode)) {
            mode_t want = st.st_mode & (owner ? 07777 : 01777);
            mode_t now = S_ISDIR(st.st_mode) ? want | 0700 : want;
            if (S_ISDIR(st.st_mode) && keep_dir_mode(j, &st, want, path + rootlen + 1) < 0) {
                archive_say(j->err, sizeof j->err, "out of memory");
                rc = -1;
            } else if (now != (st.st_mode & 07777) && chmod(path, now) < 0) {
                archive_say(j->err, sizeof j->err, "%s: %s", path, strerror(errno));
                rc = -1;
            } else if (S_ISDIR(st.st_mode)) {
                rc = settle(j, path, sub, rootlen, owner);
            }
        }
        path[len] = '\0';
    }
    tree_free_names(names, n);
    return rc;
}

static const archive_job *byino_job;
static int byino_cmp(const void *a, const void *b)
{
    const dir_mode *x = &byino_job->dirs[*(const size_t *)a], *y = &byino_job->dirs[*(const size_t *)b];
    if (x->dev != y->dev) return x->dev < y->dev ? -1 : 1;
    return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static int index_dirs(archive_job *j)
{
    if (!j->ndirs) return 0;
    if (!(j->byino = malloc(j->ndirs * sizeof *j->byino))) return -1;
    for (size_t i = 0; i < j->ndirs; i++) j->byino[i] = i;
    byino_job = j;
    qsort(j->byino, j->ndirs, sizeof *j->byino, byino_cmp);
    return 0;
}

int archive_settle(archive_job *j, int owner)
{
    char path[PATH_MAX] = ".";
    if (settle(j, path, 1, 1, owner) < 0) return -1;
    if (index_dirs(j) < 0) { archive_say(j->err, sizeof j->err, "out of memory"); return -1; }
    return 0;
}

dir_mode *archive_find_dir(archive_job *j, const struct stat *st)
{
    size_t lo = 0, hi = j->ndirs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        dir_mode *d = &j->dirs[j->byino[mid]];
        if (d->dev == st->st_dev && d->ino == st->st_ino) return d;
        if (d->dev < st->st_dev || (d->dev == st->st_dev && d->ino < st->st_ino)) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}
