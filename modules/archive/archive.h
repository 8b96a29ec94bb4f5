/* archive.h: what the files of the archive module share (archive.c:
 * listing, tree digests, the module; create.c; extract.c: archive.extract,
 * step by step: safety.c, the checks of a hostile archive; stage.c, the
 * staging folder it is written into; place.c, from there into dest and the
 * manifest; unextract.c: undoing and checking what it placed). */
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

/* extract: its options (borrowed from the options table, which stays on
 * the stack), and what was written so far */
typedef struct {
    const char *src, *dest, *staging, *staging_id;
    int strip_n, owner;
    lua_Integer max_size, max_entries;   /* 0: no limit */
    lua_Integer entries;
    long long bytes;
} extract_opts;

__attribute__((format(printf, 3, 4)))
void archive_say(char *buf, size_t len, const char *fmt, ...);
struct stat;
int archive_same_file(const struct stat *a, const struct stat *b);
/* the names in the folder at path (relative to the working folder), never
 * through a link at its end (tree_names); 0, or -1 with errno */
int archive_names_at(const char *path, char ***out, size_t *nout);
/* path (len bytes of a PATH_MAX buffer) and "/name" after it: the new
 * length, or 0 (path unchanged) when that does not fit */
size_t archive_path_join(char *path, size_t len, const char *name);
archive_job *archive_job_new(lua_State *L);
void archive_job_release(archive_job *j);
/* the string option k of the table at t (required: raise when missing) */
const char *archive_opt_string(lua_State *L, int t, const char *k, int required);

int archive_create(lua_State *L);     /* create.c */
int archive_extract(lua_State *L);    /* extract.c */
int archive_stage(lua_State *L);      /* stage.c */
int archive_unextract(lua_State *L);  /* unextract.c */
int archive_verify(lua_State *L);     /* unextract.c */

/* safety.c: what a hostile archive may not do. All: 0, or -1 with why in
 * j->err. */
/* the entry e's name (copied into ename: the entry's own is replaced
 * later) and links checked; *rel: its path in the staging folder. 1: an
 * entry strip_components leaves out. */
int archive_check_entry(archive_job *j, const extract_opts *o, struct archive_entry *e,
                        char ename[PATH_MAX], const char **rel);
/* p without its first n components (NULL when nothing is left) */
const char *archive_strip(const char *p, int n);
/* every symlink staged (the working folder) stays inside, following the
 * others */
int archive_check_links(archive_job *j, const char *src);

/* stage.c: the staging folder, the working folder while it is filled */
/* every entry of j->r written into it (checked first), then closed */
int archive_write_entries(archive_job *j, extract_opts *o);
/* its folders made u+rwx, their modes for dest kept in j->dirs (and
 * setuid/setgid bits dropped unless owner), indexed for archive_find_dir */
int archive_settle(archive_job *j, int owner);
dir_mode *archive_find_dir(archive_job *j, const struct stat *st);

/* place.c: from the staging folder into dest (the name `name` in j->pfd):
 * a descriptor of dest, or -1 */
int archive_place(archive_job *j, const char *dest, const char *name, int *created_dest);
/* the staged folders that reached dest get their modes (quiet: keep
 * j->err as it is) */
int archive_restore_modes(archive_job *j, int destfd, int quiet);
/* the manifest files = { rel = code } into the table at t: everything in
 * dest (a dest the extract made), or what j->placed says */
int archive_manifest_all(lua_State *L, archive_job *j, int t, int destfd, const char *dest);
int archive_manifest_placed(lua_State *L, archive_job *j, int t, int destfd);
/* is what st describes the entry code recorded ("=" aside)? */
int archive_same_as_recorded(const struct stat *st, const char *code);

#endif
