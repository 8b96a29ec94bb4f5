/* safety.c: what a hostile archive may not do (extract.c says it all):
 * an entry or hard link target with an absolute path or a '..', a name
 * that is not UTF-8, an absolute symlink, a device file, FIFO or socket
 * unless owner, more than max_entries or max_size; once staged, a symlink
 * that leads outside, following the others. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lazy_archive.h"
#include "tree.h"
#include "archive.h"

/* is a relative path, with no '..' component? */
static const char *unsafe_path(const char *p)
{
    if (!*p) return "an empty path";
    if (p[0] == '/') return "an absolute path";
    const char *s = p;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.') return "a '..' component";
        if (!e) break;
        s = e + 1;
    }
    return NULL;
}

/* a device file, FIFO or socket: what it is; else NULL */
static const char *special_file(mode_t type)
{
    switch (type & AE_IFMT) {
    case AE_IFCHR: return "character device";
    case AE_IFBLK: return "block device";
    case AE_IFIFO: return "FIFO";
    case AE_IFSOCK: return "socket";
    default: return NULL;
    }
}

const char *archive_strip(const char *p, int n)
{
    while (*p == '/') p++;
    while (n-- > 0) {
        const char *e = strchr(p, '/');
        if (!e) return NULL;
        p = e + 1;
        while (*p == '/') p++;
    }
    while (p[0] == '.' && p[1] == '/') p += 2;   /* "./x" is "x" */
    return *p && strcmp(p, ".") != 0 ? p : NULL;
}

/* the entry's name and link targets: refused when hostile */
static int check_names(archive_job *j, const char *src, struct archive_entry *e, char ename[PATH_MAX])
{
    const char *name = archive_entry_pathname(e);
    if (name && strlen(name) >= PATH_MAX - 1) {
        archive_say(j->err, sizeof j->err, "%s: refusing entry '%.200s...': its name is too long (%zu bytes)",
                    src, name, strlen(name));
        return -1;
    }
    archive_say(ename, PATH_MAX, "%s", name ? name : "");
    const char *why = name ? unsafe_path(ename) : "no name";
    if (!why && !provision_utf8_valid(ename, strlen(ename))) why = "a name that is not UTF-8";
    if (why) {
        archive_say(j->err, sizeof j->err, "%s: refusing a hostile archive: entry '%s' has %s", src, ename, why);
        return -1;
    }
    const char *hl = archive_entry_hardlink(e);
    if (hl && (why = unsafe_path(hl))) {
        archive_say(j->err, sizeof j->err, "%s: refusing a hostile archive: hard link '%s' -> '%s' has %s",
                    src, ename, hl, why);
        return -1;
    }
    const char *sl = archive_entry_symlink(e);
    if (sl && sl[0] == '/') {
        archive_say(j->err, sizeof j->err, "%s: refusing a hostile archive: symlink '%s' points to the absolute path '%s'",
                    src, ename, sl);
        return -1;
    }
    return 0;
}

int archive_check_entry(archive_job *j, const extract_opts *o, struct archive_entry *e,
                        char ename[PATH_MAX], const char **rel)
{
    const char *src = o->src;
    if (check_names(j, src, e, ename) < 0) return -1;
    *rel = archive_strip(ename, o->strip_n);
    if (!*rel) return 1;
    const char *special = special_file(archive_entry_filetype(e));
    if (special && !o->owner) {
        archive_say(j->err, sizeof j->err, "%s: refusing entry '%s': it is a %s (device files, FIFOs "
                    "and sockets are extracted only with owner = true)", src, ename, special);
        return -1;
    }
    if (o->max_entries > 0 && o->entries >= o->max_entries) {
        archive_say(j->err, sizeof j->err, "%s: more than max_entries (%lld) entries; nothing was extracted "
                    "(raise max_entries to allow it)", src, (long long)o->max_entries);
        return -1;
    }
    if (o->max_size > 0 && archive_entry_size(e) > o->max_size - o->bytes) {
        archive_say(j->err, sizeof j->err, "%s: entry '%s' would take it past max_size (%lld bytes); nothing "
                    "was extracted (raise max_size to allow it)", src, ename, (long long)o->max_size);
        return -1;
    }
    return 0;
}

/* ---- symlinks, once staged */

/* Does the symlink at root/rel resolve (following symlinks inside root,
 * '..' never above root) to somewhere inside root? 0 yes, -1 no (why in err) */
static int link_inside(const char *root, const char *rel, char *err, size_t errlen)
{
    /* a work list of components still to walk, and the resolved stack */
    char todo[PATH_MAX * 2], cur[PATH_MAX];
    size_t depth_len[256];
    int depth = 0, hops = 0;
    char target[PATH_MAX];
    char full[PATH_MAX * 2];
    archive_say(full, sizeof full, "%s/%s", root, rel);
    ssize_t n = readlink(full, target, sizeof target - 1);
    if (n < 0) { archive_say(err, errlen, "%s: %s", rel, strerror(errno)); return -1; }
    target[n] = '\0';
    if (target[0] == '/') {
        archive_say(err, errlen, "symlink '%s' points to the absolute path '%s'", rel, target);
        return -1;
    }
    /* start in the link's folder */
    cur[0] = '\0';
    size_t curlen = 0;
    {
        char dir[PATH_MAX];
        archive_say(dir, sizeof dir, "%s", rel);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0'; else dir[0] = '\0';
        archive_say(todo, sizeof todo, "%s%s%s", dir, *dir ? "/" : "", target);
    }
    /* the link's own folder components are walked too: they are inside */
    char *rest = todo;
    while (rest && *rest) {
        char *e = strchr(rest, '/');
        if (e) *e = '\0';
        char *comp = rest;
        rest = e ? e + 1 : NULL;
        if (!*comp || strcmp(comp, ".") == 0) continue;
        if (strcmp(comp, "..") == 0) {
            if (depth == 0) {
                archive_say(err, errlen, "symlink '%s' -> '%s' leads outside the destination", rel, target);
                return -1;
            }
            curlen = depth_len[--depth];
            cur[curlen] = '\0';
            continue;
        }
        if (depth >= 255 || curlen + strlen(comp) + 2 >= sizeof cur) {
            archive_say(err, errlen, "symlink '%s': path too deep", rel);
            return -1;
        }
        depth_len[depth++] = curlen;
        curlen += (size_t)snprintf(cur + curlen, sizeof cur - curlen, "%s%s", curlen ? "/" : "", comp);
        archive_say(full, sizeof full, "%s/%s", root, cur);
        struct stat st;
        if (lstat(full, &st) == 0 && S_ISLNK(st.st_mode)) {
            if (++hops > 40) {
                archive_say(err, errlen, "symlink '%s': too many levels of symlinks", rel);
                return -1;
            }
            char t2[PATH_MAX];
            ssize_t m = readlink(full, t2, sizeof t2 - 1);
            if (m < 0) continue;
            t2[m] = '\0';
            if (t2[0] == '/') {
                archive_say(err, errlen, "symlink '%s' leads through '%s' to the absolute path '%s'", rel, cur, t2);
                return -1;
            }
            /* replace the link component by its target, then the rest */
            curlen = depth_len[--depth];
            cur[curlen] = '\0';
            char next[PATH_MAX * 2];
            archive_say(next, sizeof next, "%s%s%s", t2, rest ? "/" : "", rest ? rest : "");
            archive_say(todo, sizeof todo, "%s", next);
            rest = todo;
        }
    }
    return 0;
}

/* every entry below path ("." or "./rel", len bytes of a PATH_MAX buffer),
 * in the order the folders list them, parents first, never through a
 * link: each symlink checked with link_inside. A folder or entry that
 * cannot be read hides its symlinks: that fails too. */
static int links_below(archive_job *j, char *path, size_t len)
{
    char **names;
    size_t n;
    if (archive_names_at(path, &names, &n) < 0) {
        archive_say(j->err, sizeof j->err, "'%s' cannot be checked: %s", len > 1 ? path + 2 : path, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t sub = archive_path_join(path, len, names[i]);
        if (!sub) {
            archive_say(j->err, sizeof j->err, "%s", strerror(ENAMETOOLONG));
            rc = -1;
            break;
        }
        struct stat st;
        if (lstat(path, &st) < 0) {
            archive_say(j->err, sizeof j->err, "'%s' cannot be checked: %s", path + 2, strerror(errno));
            rc = -1;
        } else if (S_ISLNK(st.st_mode)) {
            rc = link_inside(".", path + 2, j->err, sizeof j->err);
        } else if (S_ISDIR(st.st_mode)) {
            rc = links_below(j, path, sub);
        }
        path[len] = '\0';
    }
    tree_free_names(names, n);
    return rc;
}

int archive_check_links(archive_job *j, const char *src)
{
    char path[PATH_MAX] = ".";
    j->err[0] = '\0';
    if (links_below(j, path, 1) == 0) return 0;
    char why[1024];
    archive_say(why, sizeof why, "%s", j->err);
    archive_say(j->err, sizeof j->err, "%s: refusing a hostile archive: %s", src, why);
    return -1;
}
