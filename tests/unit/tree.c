/* Unit tests of core/tree.c, both ways of walking (the one-call openat2
 * path and the walk one component at a time, which links on the way and
 * kernels or tools without openat2 take): a link of root's or ours is
 * followed, another user's never (anywhere on the path), '..' and '.' and
 * doubled slashes, a missing last component, a file where a folder is
 * wanted; a chmod through a link or of a file with two names is refused;
 * a removal never follows a link below where it starts; temp names are
 * new each time. Needs root for the links of another user (lchown). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core.h"
#include "tree.h"

static int failures;
#define CHECK(name, cond) do { if (cond) printf("PASS %s\n", name); \
    else { printf("FAIL %s: %s (line %d)\n", name, #cond, __LINE__); failures++; } } while (0)

static char dir[64];
static char buf[512];
/* dir/rel, in one of four buffers (two may be passed to one call) */
static const char *at(const char *rel)
{
    static char ring[4][512];
    static int k;
    char *b = ring[k++ % 4];
    snprintf(b, 512, "%s/%s", dir, rel);
    return b;
}

static void put(const char *rel, const char *text)
{
    FILE *f = fopen(at(rel), "w");
    if (!f) { perror(rel); exit(1); }
    fputs(text, f);
    fclose(f);
}

static int other_link(const char *target, const char *rel)   /* a link of nobody's */
{
    return symlink(target, at(rel)) == 0 && lchown(at(rel), 65534, 65534) == 0 ? 0 : -1;
}

int main(void)
{
    if (geteuid() != 0) { printf("FAIL unit/tree: needs root (links of another user)\n"); return 1; }
    snprintf(dir, sizeof dir, "/tmp/provision-unit-tree.XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    char err[TREE_ERR], name[NAME_MAX + 1];
    struct stat st;
    mkdir(at("real"), 0755);
    mkdir(at("real/sub"), 0700);
    put("real/sub/f", "data");
    CHECK("setup: links", symlink("real", at("mine")) == 0 && other_link("real", "theirs") == 0
                          && other_link("real/sub/f", "real/theirs-f") == 0 && symlink("sub", at("real/mine-sub")) == 0);

    /* following: root's (ours) yes, nobody's never */
    CHECK("stat through our link", tree_stat(at("mine/sub/f"), 1, &st, err, sizeof err) == 0 && S_ISREG(st.st_mode));
    CHECK("stat through our link in the middle of a path", tree_stat(at("real/mine-sub/f"), 1, &st, err, sizeof err) == 0);
    errno = 0;
    CHECK("stat through nobody's link: ELOOP", tree_stat(at("theirs/sub/f"), 1, &st, err, sizeof err) < 0 && errno == ELOOP);
    CHECK("... and the message names the link and its owner", strstr(err, "/theirs: a symbolic link owned by uid 65534") != NULL);
    CHECK("nobody's link as the last component, followed: refused",
          tree_stat(at("real/theirs-f"), 1, &st, err, sizeof err) < 0 && errno == ELOOP);
    CHECK("nobody's link as the last component, not followed: the link itself",
          tree_stat(at("real/theirs-f"), 0, &st, err, sizeof err) == 0 && S_ISLNK(st.st_mode));
    CHECK("open through nobody's link: refused", tree_open(at("theirs/sub/f"), O_RDONLY, 1, err, sizeof err) < 0 && errno == ELOOP);
    int fd = tree_open(at("mine/sub/f"), O_RDONLY, 1, err, sizeof err);
    CHECK("open through our link: the file", fd >= 0 && read(fd, buf, 4) == 4 && memcmp(buf, "data", 4) == 0);
    if (fd >= 0) close(fd);

    /* spelling */
    CHECK("'.', '..' and doubled slashes", tree_stat(at("real/./sub/..//sub///f"), 1, &st, err, sizeof err) == 0 && S_ISREG(st.st_mode));
    CHECK("'..' through our link leaves its target's folder",
          tree_stat(at("mine/../real/sub/f"), 1, &st, err, sizeof err) == 0);
    int dfd = tree_walk(at("real/sub/new"), 0, name, err, sizeof err);
    CHECK("walk: a missing last component is fine", dfd >= 0 && strcmp(name, "new") == 0);
    if (dfd >= 0) close(dfd);
    errno = 0;
    CHECK("walk: a missing folder is ENOENT, naming the path",
          tree_walk(at("real/nope/new"), 0, name, err, sizeof err) < 0 && errno == ENOENT && strstr(err, "real/nope/new"));
    errno = 0;
    CHECK("walk: a file where a folder is wanted is ENOTDIR",
          tree_walk(at("real/sub/f/x"), 0, name, err, sizeof err) < 0 && errno == ENOTDIR);
    dfd = tree_walk(at("mine/sub/f"), 0, name, err, sizeof err);
    CHECK("walk through our link: its target's folder", dfd >= 0 && fstatat(dfd, name, &st, 0) == 0 && S_ISREG(st.st_mode));
    if (dfd >= 0) close(dfd);
    dfd = tree_walk(at("mine"), 1, name, err, sizeof err);
    CHECK("walk, following the last: our link's target", dfd >= 0 && strcmp(name, "real") == 0);
    if (dfd >= 0) close(dfd);

    /* a link of ours in a folder another user can change: not followed */
    mkdir(at("open"), 0755);
    CHECK("setup: our link in nobody's folder", chown(at("open"), 65534, 65534) == 0 && symlink("../real", at("open/ours")) == 0);
    CHECK("our link in nobody's folder: refused", tree_stat(at("open/ours/sub/f"), 1, &st, err, sizeof err) < 0 && errno == ELOOP
          && strstr(err, "in a folder other users can change"));
    mkdir(at("sticky"), 01777);
    CHECK("setup: our link in a sticky world-writable folder", chmod(at("sticky"), 01777) == 0 && symlink("../real", at("sticky/ours")) == 0);
    CHECK("... there it is followed (no one else can rename it)", tree_stat(at("sticky/ours/sub/f"), 1, &st, err, sizeof err) == 0);

    /* changes */
    {   /* only the very file looked at */
        struct stat fst;
        char id[64];
        stat(at("real/sub/f"), &fst);
        tree_identity(&fst, id, sizeof id);
        id[0] = id[0] == '9' ? '8' : '9';
        dfd = tree_walk(at("real/sub/f"), 0, name, err, sizeof err);
        errno = 0;
        CHECK("chmod with another file's identity: refused (ESTALE)",
              dfd >= 0 && tree_set_attrs_at(dfd, name, "f", -1, -1, 04755, id, err, sizeof err) < 0 && errno == ESTALE);
        CHECK("... the file kept its mode", stat(at("real/sub/f"), &fst) == 0 && !(fst.st_mode & 04000));
        if (dfd >= 0) close(dfd);
    }
    dfd = tree_walk(at("theirs"), 0, name, err, sizeof err);
    CHECK("chmod of a link: refused", dfd >= 0 && tree_set_attrs_at(dfd, name, "theirs", -1, -1, 0777, NULL, err, sizeof err) < 0
                                      && errno == ELOOP);
    if (dfd >= 0) close(dfd);
    CHECK("the link's target kept its mode", stat(at("real"), &st) == 0 && (st.st_mode & 07777) == 0755);
    CHECK("setup: a second name", link(at("real/sub/f"), at("real/hard")) == 0);
    dfd = tree_walk(at("real/hard"), 0, name, err, sizeof err);
    CHECK("chmod of a file with two names: refused (EMLINK)",
          dfd >= 0 && tree_set_attrs_at(dfd, name, "hard", -1, -1, 0666, NULL, err, sizeof err) < 0 && errno == EMLINK);
    if (dfd >= 0) close(dfd);
    CHECK("... the file kept its mode", stat(at("real/sub/f"), &st) == 0 && (st.st_mode & 0777) != 0666);
    unlink(at("real/hard"));
    dfd = tree_walk(at("real/sub"), 0, name, err, sizeof err);
    CHECK("chmod of a folder through its descriptor", dfd >= 0 && tree_set_attrs_at(dfd, name, "sub", -1, -1, 0750, NULL, err, sizeof err) == 0
                                                   && stat(at("real/sub"), &st) == 0 && (st.st_mode & 07777) == 0750);
    if (dfd >= 0) close(dfd);
    CHECK("mkdirs: exact modes, parents 0755", tree_mkdirs(at("a/b/c"), 0700, err, sizeof err) == 0
          && stat(at("a/b/c"), &st) == 0 && (st.st_mode & 07777) == 0700 && stat(at("a/b"), &st) == 0 && (st.st_mode & 07777) == 0755);
    CHECK("mkdirs through nobody's link: refused", tree_mkdirs(at("theirs/x/y"), 0755, err, sizeof err) < 0 && errno == ELOOP);

    /* removal never follows a link below where it starts */
    mkdir(at("rm"), 0755);
    mkdir(at("rm/in"), 0755);
    put("rm/in/f", "x");
    char real[512];
    snprintf(real, sizeof real, "%s", at("real"));
    CHECK("setup: links below", symlink(real, at("rm/in/mine")) == 0 && other_link(real, "rm/theirs") == 0);
    dfd = tree_walk(at("rm"), 0, name, err, sizeof err);
    CHECK("remove a tree with links in it", dfd >= 0 && tree_remove_at(dfd, name, "rm", TREE_RECURSIVE, err, sizeof err) == 0);
    if (dfd >= 0) close(dfd);
    CHECK("... it is gone, the links' targets are not", stat(at("rm"), &st) < 0 && stat(at("real/sub/f"), &st) == 0);
    dfd = tree_walk(at("real"), 0, name, err, sizeof err);
    errno = 0;
    CHECK("remove '..': refused", dfd >= 0 && tree_remove_at(dfd, "..", "..", TREE_RECURSIVE, err, sizeof err) < 0 && errno == EINVAL);
    if (dfd >= 0) close(dfd);
    /* a folder of ours in nobody's folder is not removed whole */
    mkdir(at("open/ourdir"), 0755);
    put("open/ourdir/x", "x");
    dfd = tree_walk(at("open/ourdir"), 0, name, err, sizeof err);
    errno = 0;
    CHECK("a folder of ours in nobody's folder: not removed whole (EPERM)",
          dfd >= 0 && tree_remove_at(dfd, name, "ourdir", TREE_RECURSIVE, err, sizeof err) < 0 && errno == EPERM
          && stat(at("open/ourdir/x"), &st) == 0);
    CHECK("... unless the caller knows it is its own (TREE_OURS)",
          dfd >= 0 && tree_remove_at(dfd, name, "ourdir", TREE_RECURSIVE | TREE_OURS, err, sizeof err) == 0
          && stat(at("open/ourdir"), &st) < 0);
    if (dfd >= 0) close(dfd);

    /* temp names */
    char t1[NAME_MAX + 1], t2[NAME_MAX + 1];
    dfd = tree_walk(at("real/x"), 0, name, err, sizeof err);
    int f1 = tree_create_temp(dfd, "x.provision", 0600, t1, err, sizeof err);
    int f2 = tree_create_temp(dfd, "x.provision", 0600, t2, err, sizeof err);
    CHECK("temp names: new each time, with the prefix", f1 >= 0 && f2 >= 0 && strcmp(t1, t2) != 0
          && strncmp(t1, "x.provision.", 12) == 0 && strlen(t1) == 24);
    CHECK("temp files: 0600", fstat(f1, &st) == 0 && (st.st_mode & 07777) == 0600);
    if (f1 >= 0) close(f1);
    if (f2 >= 0) close(f2);
    CHECK("a temp name taken by a link is not used through it", symlinkat(at("real/sub/f"), dfd, "planted") == 0
          && openat(dfd, "planted", O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0600) < 0 && errno == EEXIST);
    if (dfd >= 0) close(dfd);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) { /* best effort */ }
    return failures ? 1 : 0;
}
