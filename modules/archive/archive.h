/* archive.h: what the files of the archive module share (archive.c:
 * listing, tree digests, the module; create.c; extract.c). */
#ifndef PROVISION_ARCHIVE_H
#define PROVISION_ARCHIVE_H

#include <limits.h>
#include <stdio.h>
#include <sys/types.h>
#include <archive.h>
#include <archive_entry.h>
#include "core.h"

#define JOB_MT "provision.archive.job"

typedef struct { dev_t dev; ino_t ino; char *path; } link_seen;

/* extract: a staged folder and the mode it is to have in dest (it stays
 * u+rwx until everything moved: read-only folders must take entries) */
typedef struct { dev_t dev; ino_t ino; mode_t mode; int merged; char *rel; } dir_mode;

/* extract: an entry placed in dest (rel to dest), and whether it was
 * there before (replaced, or a folder merged into) */
typedef struct { char *rel; int existed; } placed;

/* Everything one extraction or creation holds, in a userdata: __gc
 * releases it whatever raises. */
typedef struct {
    struct archive *r, *w;
    struct archive_entry *entry;   /* create: the entry being built */
    int fd;
    int pfd;                       /* the folder of dest (tree.h), or -1 */
    int sfd;                       /* extract: the staging folder, or -1 */
    int cwdfd;                     /* extract: the working folder to go back to, or -1 */
    char staging[NAME_MAX + 1];    /* extract: its name in pfd ("" when none) */
    char tmpfile[NAME_MAX + 1];    /* create: the temp file's name in pfd ("" when none) */
    link_seen *links;
    size_t nlinks, caplinks;
    dir_mode *dirs;                /* extract: the staged folders, parents first */
    size_t ndirs, capdirs;
    size_t *byino;                 /* extract: indexes into dirs by (dev, ino) */
    placed *placed;                /* extract: what went into dest */
    size_t nplaced, capplaced;
    char err[1024];
} archive_job;

__attribute__((format(printf, 3, 4)))
void archive_say(char *buf, size_t len, const char *fmt, ...);
struct dirent;
struct stat;
int archive_same_file(const struct stat *a, const struct stat *b);
/* the names in a folder (never through a link), read at once; sorted with
 * strcmp when asked. archive_names_of consumes (closes) fd, archive_names
 * does not. 0, or -1 with errno. */
int archive_names_of(int fd, int sorted, char ***out, size_t *nout);
int archive_names(int dfd, int sorted, char ***out, size_t *nout);
void archive_free_names(char **names, size_t n);
archive_job *archive_job_new(lua_State *L);
void archive_job_release(archive_job *j);
/* the string option k of the table at t (required: raise when missing) */
const char *archive_opt_string(lua_State *L, int t, const char *k, int required);

int archive_create(lua_State *L);     /* create.c */
int archive_stage(lua_State *L);      /* extract.c */
int archive_extract(lua_State *L);    /* extract.c */
int archive_unextract(lua_State *L);  /* extract.c */
int archive_verify(lua_State *L);     /* extract.c */

#endif
