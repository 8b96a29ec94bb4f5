/* tree.h: the one home of file primitives that hold against another local
 * user (tree.c). provision often runs as root in folders other users can
 * write to (/tmp, a shared project); such a user can plant a symbolic link,
 * a file or a folder before a run, or swap one during it.
 *
 * The rules, for every path provision reads, writes, chmods, chowns or
 * removes:
 *   - a path is walked from a trusted root ("/", or the working folder for a
 *     relative path) one component at a time, with openat(O_NOFOLLOW);
 *   - a symbolic link on the way is followed only when it is owned by root
 *     or by the user running provision (the kernel's protected_symlinks rule
 *     for sticky folders, applied everywhere), and sits in a folder no one
 *     else can change (ours or root's, not writable by others unless sticky:
 *     else a link of ours could have been moved there): another user's link
 *     is never followed, wherever it is;
 *   - what is changed is changed through a descriptor of what was walked:
 *     no chmod, chown, write or removal ever goes through a link;
 *   - a recursive removal never follows a link below where it starts, and
 *     stops at SIGINT/SIGTERM.
 * Errors: -1 with errno set and "PATH: why" in err (never NULL). */
#ifndef PROVISION_TREE_H
#define PROVISION_TREE_H

#include <limits.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#define TREE_ERR 1024

/* Is a link (or a file) owned by uid one provision may trust: root, or the
 * effective user? */
int tree_trusted_uid(uid_t uid);

/* The folder holding path's last component: a directory descriptor
 * (O_PATH; the caller closes it), with that component copied to name (at
 * most NAME_MAX bytes; "." for "/" or "."). A missing last component is
 * fine (it is what a create makes); a missing folder is ENOENT.
 * follow_last: a trusted link as the last component is resolved too (name
 * and the folder are then its target's). */
int tree_walk(const char *path, int follow_last, char name[NAME_MAX + 1], char *err, size_t errlen);

/* tree_walk (follow_last 0) from the folder the last call looked in when
 * path's folder is that one (by its text): a no-op's checks, one after
 * another in one folder, walk once. *owned: the caller closes the
 * descriptor only when it is set (else it is kept for the next call).
 * For looking only: a change goes through tree_walk. */
int tree_walk_kept(const char *path, char name[NAME_MAX + 1], int *owned, char *err, size_t errlen);

/* forget the kept folder: every change in this file does, and the runner
 * does before and after a step changes anything (a folder on the way may
 * be another one then) */
void tree_forget_folders(void);

/* rel ("a/b/c": relative, no empty component) under the folder dfd: the
 * folder holding its last component, walked one component at a time with
 * O_NOFOLLOW (a link or a file on the way: ELOOP), with that component
 * copied to name. A new descriptor (the caller closes it), or -1 with
 * errno only (no message: the caller names rel as it shows it). */
int tree_walk_at(int dfd, const char *rel, char name[NAME_MAX + 1]);

/* path itself, opened with flags (| O_NOFOLLOW | O_CLOEXEC; O_PATH is fine).
 * follow_last: a trusted link at the end is followed; else a link there is
 * opened as itself with O_PATH, and fails with ELOOP otherwise. */
int tree_open(const char *path, int flags, int follow_last, char *err, size_t errlen);

/* path opened for reading, as tree_open with a trusted link at the end
 * followed, only when it is a regular file (EINVAL otherwise, without
 * waiting: a FIFO someone put there must not hang the run) */
int tree_open_regular(const char *path, char *err, size_t errlen);

/* stat of path (follow_last as tree_open; 0 is lstat) */
int tree_stat(const char *path, int follow_last, struct stat *st, char *err, size_t errlen);

/* chmod / chown of the file or folder dirfd/name (never a link: ELOOP),
 * through a descriptor of it. A regular file with more than one hard link
 * is refused (EMLINK): another name of it may be anything, /etc/shadow
 * included. uid/gid -1: unchanged. The owner first: a chown clears the
 * set-id bits. mode < 0: unchanged. expect ("device:inode", or NULL): only
 * that very file or folder (ESTALE when another was put in its place since
 * the caller looked: a chown to root and a setuid mode must never land on
 * a file someone else swapped in). */
int tree_set_attrs_at(int dirfd, const char *name, const char *shown, long uid, long gid, int mode,
                      const char *expect, char *err, size_t errlen);

/* chmod of what fd is (an O_PATH descriptor too: through /proc/self/fd),
 * never of a link's target; 0, or -1 with errno */
int tree_chmod_fd(int fd, mode_t mode);

/* mkdir dirfd/name with exactly mode (not filtered by the umask; set through
 * a descriptor of the new folder). EEXIST when something is there. */
int tree_mkdir_at(int dirfd, const char *name, const char *shown, int mode, char *err, size_t errlen);

/* mkdir -p: the folders of path that are missing, the last one with mode
 * and the others 0755, each exactly (not filtered by the umask); a link on
 * the way is followed only when trusted. 0, or -1 (ENOTDIR: something
 * else is there). */
int tree_mkdirs(const char *path, int mode, char *err, size_t errlen);

/* Remove dirfd/name: a file, a link (itself) or, with TREE_RECURSIVE, a
 * folder and all under it, never following a link. Not there: 0. With
 * TREE_INTERRUPTIBLE, stop (EINTR) at SIGINT/SIGTERM (not for cleanup of
 * what the run itself made). Without TREE_RECURSIVE, a folder must be
 * empty (ENOTEMPTY). A folder of root's or ours in a folder others can
 * write to (and that is not sticky) is never removed whole (EPERM): it may
 * be another folder than the one meant, renamed into its place. */
enum { TREE_RECURSIVE = 1, TREE_INTERRUPTIBLE = 2,
       TREE_OURS = 4   /* the caller checked it is the very folder it made: no such guard */ };
int tree_remove_at(int dirfd, const char *name, const char *shown, int flags, char *err, size_t errlen);

/* The names in the folder dfd (not consumed; "." and ".." left out), read
 * at once: no folder stays open while a walk descends. Sorted with strcmp
 * when sorted. *out: the caller frees it with tree_free_names. 0, or -1
 * with errno only. */
int tree_names(int dfd, int sorted, char ***out, size_t *nout);
void tree_free_names(char **names, size_t n);

/* can others than root and the running user change the entries of the
 * folder st describes (its owner, or group/other write without sticky)? */
int tree_open_to_others(const struct stat *st);

/* A new file in dirfd with a name no other user can guess or plant first:
 * PREFIX.RANDOM (O_CREAT | O_EXCL | O_NOFOLLOW, mode). The name is written
 * to out (at most NAME_MAX). A descriptor open for reading and writing. */
int tree_create_temp(int dirfd, const char *prefix, int mode, char out[NAME_MAX + 1], char *err, size_t errlen);

/* The same for a folder (mkdirat with O_EXCL semantics); 0 */
int tree_mkdir_temp(int dirfd, const char *prefix, int mode, char out[NAME_MAX + 1], char *err, size_t errlen);

/* fsync of the folder dirfd (an O_PATH one is reopened for it) */
void tree_sync_dir(int dirfd);

/* the "device:inode" identity of an open file, for records that must find
 * the same folder again (not one swapped in under its name) */
void tree_identity(const struct stat *st, char *out, size_t n);

/* a random name part: n characters of [a-z0-9] and a NUL */
void tree_random_name(char *out, size_t n);

#endif
