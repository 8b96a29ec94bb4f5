/* download.c: h:download{...} (http.c gives the contract): the body of a
 * 200/206 reply streamed into a part file beside dest (through the sink:
 * sink.c), resumed from what a part file already holds, and committed over
 * dest once whole. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <curl/curl.h>
#include "lazy_curl.h"
#include "tree.h"
#include "http.h"

#define ERR_BODY_MAX 4096   /* what is kept of an error reply's body */

/* the options of a download (borrowed from the options table, which stays
 * on the stack) */
typedef struct {
    const char *dest, *part, *part_id, *expect;
    int create, mode, commit, kind, do_fsync;
    lua_Integer offset;
} download_opts;

/* the options at index 2, in the order they were always read (the first
 * misuse raises) */
static void read_opts(lua_State *L, http_xfer *x, download_opts *o)
{
    lua_getfield(L, 2, "dest");
    size_t dest_len = 0;
    o->dest = luaL_optlstring(L, -1, NULL, &dest_len);
    if (!o->dest) luaL_error(L, "http.download: option 'dest' is required");
    if (strlen(o->dest) != dest_len) luaL_error(L, "http.download: option 'dest' holds a NUL byte");
    lua_pop(L, 1);   /* borrowed from the options table */
    o->part = http_opt_string(L, 2, "part");
    const char *part = o->part;
    if (!part || !*part || strchr(part, '/') || strcmp(part, ".") == 0 || strcmp(part, "..") == 0)
        luaL_error(L, "http.download: option 'part' must be a file name (no '/')");
    o->create = http_opt_bool(L, 2, "create");
    o->part_id = http_opt_string(L, 2, "part_id");   /* to resume: the very file made then */
    o->offset = (lua_Integer)http_opt_number(L, 2, "offset", 0);
    if (o->offset < 0) luaL_error(L, "http.download: option 'offset' must be >= 0");
    if (o->create) o->offset = 0;
    o->mode = (int)http_opt_number(L, 2, "mode", 0600);
    lua_Number max_size = http_opt_number(L, 2, "max_size", 0);
    if (max_size < 0) luaL_error(L, "http.download: option 'max_size' must be >= 0");
    x->max_size = (curl_off_t)max_size;
    /* commit = mode: rename it over dest once whole (and, with expect, only
     * when its digest is that) */
    lua_getfield(L, 2, "commit");
    o->commit = lua_isnil(L, -1) ? -1 : (int)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    if (o->commit > 07777) luaL_error(L, "http.download: option 'commit' must be a mode");
    o->expect = http_opt_string(L, 2, "expect");
    lua_getfield(L, 2, "digest");
    if (!lua_isnoneornil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "http.download: option 'digest' must be a string, not a %s", luaL_typename(L, -1));
    const char *kname = luaL_optstring(L, -1, "sha256");
    o->kind = provision_digest_kind(kname);
    if (o->kind < 0) luaL_error(L, "http.download: option 'digest' must be \"sha256\" or \"xxh128\", not \"%s\"", kname);
    lua_pop(L, 1);
    o->do_fsync = 1;
    lua_getfield(L, 2, "fsync");
    if (lua_isboolean(L, -1)) o->do_fsync = lua_toboolean(L, -1);
    lua_pop(L, 1);
    http_opt_header_value(L, 2, x, "if_none_match", "If-None-Match");
    http_opt_header_value(L, 2, x, "if_modified_since", "If-Modified-Since");
    if (o->offset > 0) http_opt_header_value(L, 2, x, "if_range", "If-Range");
    x->progress_idx = http_opt_function(L, 2, "progress");
    x->on_headers_idx = http_opt_function(L, 2, "on_headers");
}

/* nil, message, "write": a failure of the part file or of dest */
static int push_write_failure(lua_State *L, const char *msg)
{
    lua_pushnil(L);
    lua_pushstring(L, msg);
    lua_pushliteral(L, "write");
    return 3;
}

/* the part file: opened (created, with create) in the folder of dest,
 * which x->dirfd then holds. A part file to resume must be a regular file
 * of ours with one link: anything else under that name is left alone and
 * reported. 0, or -1 with a message pushed (nil, msg, "write"). */
static int open_part(lua_State *L, http_xfer *x, const download_opts *o, char name[NAME_MAX + 1])
{
    char err[TREE_ERR];
    const char *dest = o->dest, *part = o->part;
    x->dirfd = tree_walk(dest, 0, name, err, sizeof err);
    if (x->dirfd < 0) goto failed;
    struct stat st;
    if (o->create) {
        x->fd = openat(x->dirfd, part, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)o->mode);
        if (x->fd < 0) { snprintf(err, sizeof err, "%s (beside %s): %s", part, dest, strerror(errno)); goto failed; }
        if (fstat(x->fd, &st) == 0) tree_identity(&st, x->part_id, sizeof x->part_id);
        return 0;
    }
    x->fd = openat(x->dirfd, part, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (x->fd < 0) { snprintf(err, sizeof err, "%s (beside %s): %s", part, dest, strerror(errno)); goto failed; }
    char id[64] = "";
    if (fstat(x->fd, &st) == 0) tree_identity(&st, id, sizeof id);
    if (!S_ISREG(st.st_mode) || !tree_trusted_uid(st.st_uid) || st.st_nlink != 1 || !o->part_id
        || strcmp(id, o->part_id) != 0) {
        snprintf(err, sizeof err, "%s (beside %s): not the partial download made for this (another file was "
                 "put in its place): left alone", part, dest);
        close(x->fd);
        x->fd = -1;
        errno = EPERM;
        goto failed;
    }
    return 0;
failed:
    push_write_failure(L, err);
    return -1;
}

/* The part file, ready for the transfer: the digest set up, the file
 * opened, the kept prefix (offset) checked, truncated to it, and asked for
 * what follows it. 0, or -1 with the failure pushed (nil, msg, "write").
 * Raises only when out of memory. */
static int prepare_part(lua_State *L, http_xfer *x, download_opts *o, char name[NAME_MAX + 1])
{
    if (provision_digest_init(&x->dg, o->kind))
        return luaL_error(L, "http.download: cannot set up the %s digest", provision_digest_name(o->kind));
    if (open_part(L, x, o, name) < 0) return -1;
    if (!o->create) snprintf(x->part_id, sizeof x->part_id, "%s", o->part_id);
    http_sink_use_direct(x);
    lua_Integer offset = o->offset;
    struct stat st;
    if (fstat(x->fd, &st) < 0 || (offset > 0 && st.st_size < offset)) offset = 0;
    if (x->direct) offset -= offset % DIO_ALIGN;   /* direct writes go on from a boundary */
    x->offset = (curl_off_t)offset;
    /* the hasher hashes the kept prefix, read through a buffered descriptor
     * of the same file (not of the name, which another user might swap) */
    if (offset > 0) {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", x->fd);
        if ((x->rfd = open(proc, O_RDONLY | O_CLOEXEC)) < 0) offset = x->offset = 0;
    }
    if (ftruncate(x->fd, (off_t)offset) < 0) {
        int e = errno;
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", o->dest, strerror(e));
        lua_pushliteral(L, "write");
        return -1;
    }
    if (offset > 0) {   /* our own header, so that a 200 reply is not an error */
        char range[64];
        snprintf(range, sizeof range, "Range: bytes=%lld-", (long long)offset);
        if (http_add_header(x, range) < 0) return luaL_error(L, "http: out of memory");
    }
    o->offset = offset;
    return 0;
}

/* After perform: a reply without a body is decided on too, the sink
 * flushed (or stopped, when interrupted) and the file synced. rc, or the
 * error that ends the transfer. */
static CURLcode finish_transfer(http_xfer *x, const download_opts *o, CURLcode rc)
{
    if (rc == CURLE_OK) http_begin_body(x);   /* a reply with an empty body */
    if (rc == CURLE_OK && x->abort_kind) rc = CURLE_ABORTED_BY_CALLBACK;
    if (x->to_file && x->sink_on) {
        char msg[256] = "";
        if (rc != CURLE_OK && (x->abort_kind == AB_INTERRUPTED || provision_interrupted())) {
            http_sink_stop(x);
        } else if (http_sink_finish(x, msg, sizeof msg) < 0 && rc == CURLE_OK) {
            /* a failed transfer flushes too: a retry resumes after what arrived */
            char full[512];
            snprintf(full, sizeof full, "%s: %s", o->dest, errno == EINTR ? "interrupted" : msg);
            http_set_abort(x, errno == EINTR ? AB_INTERRUPTED : AB_WRITE, full);
            rc = CURLE_WRITE_ERROR;
        }
    }
    if (rc == CURLE_OK && x->to_file && o->do_fsync && fsync(x->fd) < 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s: fsync: %s", o->dest, strerror(errno));
        http_set_abort(x, AB_WRITE, msg);
        rc = CURLE_WRITE_ERROR;
    }
    return rc;
}

/* nil, message, kind, { bytes, size, status, headers, part_id } */
static int push_failure(lua_State *L, http_xfer *x, CURLcode rc, const char *errbuf, curl_off_t size)
{
    STACK_ENTER(L);
    if (provision_interrupted()) http_set_abort(x, AB_INTERRUPTED, "interrupted");
    int n = http_push_failure(L, x, rc, errbuf);   /* nil msg kind */
    lua_createtable(L, 0, 4);                      /* nil msg kind t */
    lua_pushinteger(L, (lua_Integer)x->written);
    lua_setfield(L, -2, "bytes");
    lua_pushinteger(L, (lua_Integer)(x->to_file ? size : x->offset));
    lua_setfield(L, -2, "size");
    long status = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    http_push_headers(L, x);
    lua_setfield(L, -2, "headers");
    lua_pushstring(L, x->part_id);
    lua_setfield(L, -2, "part_id");
    STACK_LEAVE(L, n + 1);
    return n + 1;
}

/* The download landed whole (and its digest is the one expected): give
 * the part file its mode, make it durable, rename it over dest in the same
 * folder, check that dest is now that very file, sync the folder. 0, or -1
 * with the message in msg. */
static int commit_part(http_xfer *x, const download_opts *o, const char *name, char *msg, size_t n)
{
    const char *dest = o->dest;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) { snprintf(msg, n, "%s: not a file name", dest); return -1; }
    struct stat mine, there;
    if (fchmod(x->fd, (mode_t)o->commit) < 0 || fsync(x->fd) < 0 || fstat(x->fd, &mine) < 0) {
        snprintf(msg, n, "%s: %s", dest, strerror(errno));
        return -1;
    }
    if (renameat(x->dirfd, o->part, x->dirfd, name) < 0) {
        snprintf(msg, n, "%s: %s", dest, strerror(errno));
        return -1;
    }
    if (fstatat(x->dirfd, name, &there, AT_SYMLINK_NOFOLLOW) < 0 || there.st_dev != mine.st_dev
        || there.st_ino != mine.st_ino) {
        snprintf(msg, n, "%s: replaced by another file while being moved into place", dest);
        return -1;
    }
    tree_sync_dir(x->dirfd);
    return 0;
}

/* { status, headers, url, seconds, bytes, size, resumed, committed,
 *   part_id, sha256 | xxh128, body } */
static void push_result(lua_State *L, http_xfer *x, double t0, curl_off_t size, const char *hx, int committed)
{
    STACK_ENTER(L);
    lua_createtable(L, 0, 11);
    http_push_common(L, x, t0);
    lua_pushinteger(L, (lua_Integer)x->written);
    lua_setfield(L, -2, "bytes");
    lua_pushinteger(L, (lua_Integer)size);
    lua_setfield(L, -2, "size");
    lua_pushboolean(L, x->to_file && x->offset > 0);
    lua_setfield(L, -2, "resumed");
    lua_pushboolean(L, committed);
    lua_setfield(L, -2, "committed");
    lua_pushstring(L, x->part_id);
    lua_setfield(L, -2, "part_id");
    if (x->to_file) {
        lua_pushstring(L, hx);
        lua_setfield(L, -2, provision_digest_name(x->dg.kind));
    }
    lua_pushlstring(L, x->body.p ? x->body.p : "", x->body.len);
    lua_setfield(L, -2, "body");
    STACK_LEAVE(L, 1);
}

int http_download(lua_State *L)
{
    http_handle *h = http_handle_check(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    http_xfer *x = http_xfer_new(L);                 /* h opts xfer */
    http_setup(L, h, x, 2, 0);
    x->download = 1;
    x->max_body = ERR_BODY_MAX;
    download_opts o;
    read_opts(L, x, &o);                             /* h opts xfer [progress] [on_headers] */
    STACK_ENTER(L);
    curl_easy_setopt(h->curl, CURLOPT_BUFFERSIZE, 256L * 1024);
    /* from here on, only the xfer userdata owns anything */
    char name[NAME_MAX + 1];
    if (prepare_part(L, x, &o, name) < 0) return 3;
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, errbuf);
    double t0 = provision_now();
    CURLcode rc = http_perform(x);
    curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, NULL);
    rc = finish_transfer(x, &o, rc);
    struct stat fin;
    curl_off_t size = fstat(x->fd, &fin) == 0 ? (curl_off_t)fin.st_size : 0;
    if (rc != CURLE_OK) {
        int n = push_failure(L, x, rc, errbuf, size);
        http_xfer_release(x);
        return n;
    }
    char hx[DIGEST_HEX_MAX] = "";
    if (x->to_file) provision_digest_hex(&x->dg, hx);
    int committed = 0;
    char cmsg[TREE_ERR] = "";
    if (x->to_file && o.commit >= 0 && (!o.expect || strcmp(o.expect, hx) == 0)) {
        if (commit_part(x, &o, name, cmsg, sizeof cmsg) < 0) {
            http_xfer_release(x);
            return push_write_failure(L, cmsg);
        }
        committed = 1;
    }
    push_result(L, x, t0, size, hx, committed);
    http_xfer_release(x);
    STACK_LEAVE(L, 1);
    return 1;
}
