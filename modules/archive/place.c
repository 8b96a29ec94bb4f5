/* place.c: an extraction from its staging folder into dest, through
 * descriptors (extract.c says how), and the manifest of what reached it:
 * files = { rel = code }, which unextract.c undoes and checks. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "digest.h"
#include "tree.h"
#include "archive.h"

/* remember that rel reached dest (existed: something was there) */
static int note_placed(archive_job *j, const char *rel, int existed)
{
    if (j->nplaced == j->capplaced) {
        size_t cap = j->capplaced ? j->capplaced * 2 : 64;
        placed *np = realloc(j->placed, cap * sizeof *np);
        if (!np) return -1;
        j->placed = np; j->capplaced = cap;
    }
    if (!(j->placed[j->nplaced].rel = strdup(rel))) return -1;
    j->placed[j->nplaced++].existed = existed;
    return 0;
}

/* Before anything moves into an existing dest: an entry whose kind cannot
 * take the place of what dest has there stops the extract with nothing
 * changed. A folder of the archive where dest has a file or a link cannot
 * go there (the rename fails half-way through the merge), and a file of the
 * archive where dest has a folder would delete that folder and all in it
 * (tar refuses that too). Files over files are replaced, folders merge.
 * sdir/ddir: the staged and the dest folder holding name; shown: for
 * messages. 0, or -1 with j->err set. */
static int find_conflict(archive_job *j, int sdir, int ddir, const char *name, const char *shown)
{
    struct stat ss, ds;
    if (fstatat(ddir, name, &ds, AT_SYMLINK_NOFOLLOW) < 0) return 0;   /* nothing there: it moves in */
    if (fstatat(sdir, name, &ss, AT_SYMLINK_NOFOLLOW) < 0) {
        archive_say(j->err, sizeof j->err, "%s: %s", shown, strerror(errno));
        return -1;
    }
    int sd = S_ISDIR(ss.st_mode), dd = S_ISDIR(ds.st_mode);
    if (sd && !dd) {
        archive_say(j->err, sizeof j->err, "%s is a %s where the archive has a folder; nothing was extracted "
                    "(move it away, or extract elsewhere)", shown, S_ISLNK(ds.st_mode) ? "symbolic link" : "file");
        return -1;
    }
    if (!sd && dd) {
        archive_say(j->err, sizeof j->err, "%s is a folder where the archive has a %s; nothing was extracted "
                    "(move it away, or extract elsewhere)", shown, S_ISLNK(ss.st_mode) ? "symbolic link" : "file");
        return -1;
    }
    if (!sd) return 0;
    int s2 = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int d2 = openat(ddir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    char **names = NULL;
    size_t n = 0;
    int rc = 0;
    if (s2 < 0 || d2 < 0 || tree_names(s2, 0, &names, &n) < 0) {
        archive_say(j->err, sizeof j->err, "%s: %s", shown, strerror(errno));
        rc = -1;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        char sub[PATH_MAX];
        archive_say(sub, sizeof sub, "%s/%s", shown, names[i]);
        rc = find_conflict(j, s2, d2, names[i], sub);
    }
    tree_free_names(names, n);
    if (s2 >= 0) close(s2);
    if (d2 >= 0) close(d2);
    return rc;
}

static int move_into(archive_job *j, int sdir, int ddir, const char *name, const char *rel);

/* the staged folder sdir/name into the folder already at ddir/name (ds:
 * what it is), entry by entry. A read-only one is opened (u+rwx) to take
 * entries, and given back its mode if the merge fails (restore_modes
 * gives the archive's once everything moved). */
static int merge_folder(archive_job *j, int sdir, int ddir, const char *name, const char *rel,
                        const struct stat *ss, const struct stat *ds)
{
    char *err = j->err;
    size_t errlen = sizeof j->err;
    int s2 = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int d2 = openat(ddir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    char **names = NULL;
    size_t n = 0;
    if (s2 < 0 || d2 < 0 || tree_names(s2, 0, &names, &n) < 0) {
        archive_say(err, errlen, "%s: %s", rel, strerror(errno));
        if (s2 >= 0) close(s2);
        if (d2 >= 0) close(d2);
        return -1;
    }
    int opened = (ds->st_mode & 0700) != 0700;
    int rc = 0;
    if (opened && tree_chmod_fd(d2, (ds->st_mode & 07777) | 0700) < 0) {
        archive_say(err, errlen, "%s: %s", rel, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && note_placed(j, rel, 1) < 0) { archive_say(err, errlen, "out of memory"); rc = -1; }
    for (size_t i = 0; i < n && rc == 0; i++) {
        char sub[PATH_MAX];
        archive_say(sub, sizeof sub, "%s/%s", rel, names[i]);
        rc = move_into(j, s2, d2, names[i], sub);
    }
    tree_free_names(names, n);
    if (rc && opened) tree_chmod_fd(d2, ds->st_mode & 07777);
    if (rc == 0) {
        dir_mode *d = archive_find_dir(j, ss);
        if (d) d->merged = 1;
        else tree_chmod_fd(d2, ss->st_mode & 07777);
    }
    close(s2);
    close(d2);
    return rc;
}

/* rename sdir/name over ddir/name, merging folders, never following a
 * link in dest; rel: its path under dest */
static int move_into(archive_job *j, int sdir, int ddir, const char *name, const char *rel)
{
    char *err = j->err;
    size_t errlen = sizeof j->err;
    struct stat ss, ds;
    if (provision_interrupted()) { archive_say(err, errlen, "interrupted"); return -1; }
    if (fstatat(sdir, name, &ss, AT_SYMLINK_NOFOLLOW) < 0) { archive_say(err, errlen, "%s: %s", rel, strerror(errno)); return -1; }
    int there = fstatat(ddir, name, &ds, AT_SYMLINK_NOFOLLOW) == 0;
    if (!there && errno != ENOENT) { archive_say(err, errlen, "%s: %s", rel, strerror(errno)); return -1; }
    if (there && S_ISDIR(ss.st_mode) && S_ISDIR(ds.st_mode)) return merge_folder(j, sdir, ddir, name, rel, &ss, &ds);
    if (there && S_ISDIR(ds.st_mode)) {   /* find_conflict stops this before */
        archive_say(err, errlen, "%s is a folder where the archive has a file", rel);
        return -1;
    }
    if (renameat(sdir, name, ddir, name) < 0) { archive_say(err, errlen, "%s: %s", rel, strerror(errno)); return -1; }
    if (note_placed(j, rel, there) < 0) { archive_say(err, errlen, "out of memory"); return -1; }
    return 0;
}

/* The staged folders that reached dest (moved there, or merged into a
 * folder already there) get their modes, children before parents. */
int archive_restore_modes(archive_job *j, int destfd, int quiet)
{
    int rc = 0;
    for (size_t i = j->ndirs; i-- > 0;) {
        dir_mode *d = &j->dirs[i];
        char base[NAME_MAX + 1];
        int pfd = tree_walk_at(destfd, d->rel, base);
        if (pfd < 0) continue;
        struct stat st;
        if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)
            && (d->merged || (st.st_dev == d->dev && st.st_ino == d->ino))
            && (st.st_mode & 07777) != d->mode) {
            char err[TREE_ERR];
            if (tree_set_attrs_at(pfd, base, d->rel, -1, -1, (int)d->mode, NULL, err, sizeof err) < 0 && !rc) {
                if (!quiet) archive_say(j->err, sizeof j->err, "%s", err);
                rc = -1;
            }
        }
        close(pfd);
    }
    return rc;
}

/* dest is there, a folder: every staged entry moved into it, once none
 * conflicts; what moved gets its modes all the same when one fails */
static int merge_into_dest(archive_job *j, const char *dest, const char *name)
{
    int destfd = openat(j->pfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    char **names = NULL;
    size_t n = 0;
    if (destfd < 0 || tree_names(j->sfd, 0, &names, &n) < 0) {
        archive_say(j->err, sizeof j->err, "%s: %s", dest, strerror(errno));
        if (destfd >= 0) close(destfd);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char shown[PATH_MAX];
        archive_say(shown, sizeof shown, "%s/%s", dest, names[i]);
        rc = find_conflict(j, j->sfd, destfd, names[i], shown);
    }
    for (size_t i = 0; i < n && rc == 0; i++) rc = move_into(j, j->sfd, destfd, names[i], names[i]);
    tree_free_names(names, n);
    if (rc) {
        archive_restore_modes(j, destfd, 1);
        close(destfd);
        return -1;
    }
    return destfd;
}

int archive_place(archive_job *j, const char *dest, const char *name, int *created_dest)
{
    struct stat st;
    int have_dest = fstatat(j->pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (!have_dest && errno != ENOENT) {
        archive_say(j->err, sizeof j->err, "%s: %s", dest, strerror(errno));
        return -1;
    }
    if (have_dest && !S_ISDIR(st.st_mode)) {
        archive_say(j->err, sizeof j->err, "%s: exists and is %s, not a folder", dest,
                    S_ISLNK(st.st_mode) ? "a symbolic link" : "a file");
        return -1;
    }
    if (have_dest) return merge_into_dest(j, dest, name);
    /* no dest: the staging folder becomes it */
    mode_t um = umask(0); umask(um);
    if (fchmod(j->sfd, 0777 & ~um) < 0 || renameat(j->pfd, j->staging, j->pfd, name) < 0) {
        archive_say(j->err, sizeof j->err, "%s: %s", dest, strerror(errno));
        return -1;
    }
    j->staging[0] = '\0';
    *created_dest = 1;
    int destfd = dup(j->sfd);
    if (destfd < 0) archive_say(j->err, sizeof j->err, "%s: %s", dest, strerror(errno));
    return destfd;
}

/* ---- the manifest: files = { rel = code } */

/* A file with several names (an archive's hard links) is "h" and its stamp
 * without the ctime: removing one of its names changes the ctime of all. */
static void code_of(const struct stat *st, int existed, int linked, char *out, size_t n)
{
    char stamp[128];
    const char *eq = existed ? "=" : "";
    if (S_ISDIR(st->st_mode)) {
        tree_identity(st, stamp, sizeof stamp);
        archive_say(out, n, "%sd%s", eq, stamp);
    } else if (S_ISREG(st->st_mode) && linked) {
        archive_say(out, n, "%sh%llu:%llu:%lld:%lld.%ld", eq, (unsigned long long)st->st_dev,
                    (unsigned long long)st->st_ino, (long long)st->st_size,
                    (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
    } else {
        provision_stamp(st, stamp, sizeof stamp);
        archive_say(out, n, "%s%c%s", eq, S_ISREG(st->st_mode) ? 'f' : S_ISLNK(st->st_mode) ? 'l' : 'o', stamp);
    }
}

int archive_same_as_recorded(const struct stat *st, const char *code)
{
    char now[160];
    if (code[0] == '=') code++;
    code_of(st, 0, code[0] == 'h', now, sizeof now);
    return strcmp(now, code) == 0;
}

/* files[rel] = code for the entry at ddir/name and, for a new folder,
 * everything under it (all new); the table at index t. 0 or -1 (j->err);
 * the stack as it was either way */
static int push_manifest(lua_State *L, archive_job *j, int t, int ddir, const char *name, const char *rel,
                         int existed, int depth)
{
    struct stat st;
    if (fstatat(ddir, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        archive_say(j->err, sizeof j->err, "%s: %s", rel, strerror(errno));
        return -1;
    }
    char code[160];
    code_of(&st, existed, S_ISREG(st.st_mode) && st.st_nlink > 1, code, sizeof code);
    lua_pushstring(L, code);                    /* ... code */
    lua_setfield(L, t, rel);                    /* ... (files[rel] = code) */
    if (!S_ISDIR(st.st_mode) || existed) return 0;
    if (depth > 4000) { archive_say(j->err, sizeof j->err, "%s: too deep", rel); return -1; }
    int fd = openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    char **names = NULL;
    size_t n = 0;
    if (fd < 0 || tree_names(fd, 0, &names, &n) < 0) {
        archive_say(j->err, sizeof j->err, "%s: %s", rel, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char sub[PATH_MAX];
        archive_say(sub, sizeof sub, "%s/%s", rel, names[i]);
        rc = push_manifest(L, j, t, fd, names[i], sub, 0, depth + 1);
    }
    tree_free_names(names, n);
    close(fd);
    return rc;
}

int archive_manifest_all(lua_State *L, archive_job *j, int t, int destfd, const char *dest)
{
    STACK_ENTER(L);
    char **names = NULL;
    size_t n = 0;
    int rc = tree_names(destfd, 0, &names, &n);
    if (rc) archive_say(j->err, sizeof j->err, "%s: %s", dest, strerror(errno));
    for (size_t i = 0; i < n && rc == 0; i++) rc = push_manifest(L, j, t, destfd, names[i], names[i], 0, 0);
    tree_free_names(names, n);
    STACK_LEAVE(L, 0);
    return rc;
}

int archive_manifest_placed(lua_State *L, archive_job *j, int t, int destfd)
{
    STACK_ENTER(L);
    int rc = 0;
    for (size_t i = 0; i < j->nplaced && rc == 0; i++) {
        char base[NAME_MAX + 1];
        int pfd = tree_walk_at(destfd, j->placed[i].rel, base);
        if (pfd < 0) {
            archive_say(j->err, sizeof j->err, "%s: %s", j->placed[i].rel, strerror(errno));
            rc = -1;
            break;
        }
        rc = push_manifest(L, j, t, pfd, base, j->placed[i].rel, j->placed[i].existed, 0);
        close(pfd);
    }
    STACK_LEAVE(L, 0);
    return rc;
}
