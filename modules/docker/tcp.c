/* tcp.c: a tcp:// Docker engine (docker.h), plain HTTP or HTTPS with
 * mutual TLS, through libcurl: loaded when such an engine is opened
 * (docker_tcp_init), never for a unix socket. */
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
#include "docker.h"

static size_t docker_write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    docker_client *c = ud;
    size_t n = size * nmemb;
    if (c->max_body && n > c->max_body - c->len) { c->too_big = 1; return 0; }
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 16384;
        while (cap < c->len + n + 1) cap *= 2;
        char *b = realloc(c->buf, cap);
        if (!b) { c->oom = 1; return 0; }
        c->buf = b;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, data, n);
    c->len += n;
    return n;
}

static size_t docker_header_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    docker_client *c = ud;
    size_t n = size * nmemb;
    if (c->hlen + n + 1 > c->hcap) {
        size_t cap = c->hcap ? c->hcap : 1024;
        while (cap < c->hlen + n + 1) cap *= 2;
        char *b = realloc(c->hbuf, cap);
        if (!b) { c->oom = 1; return 0; }
        c->hbuf = b;
        c->hcap = cap;
    }
    memcpy(c->hbuf + c->hlen, data, n);
    c->hlen += n;
    return n;
}

static size_t docker_read_cb(char *dest, size_t size, size_t nmemb, void *ud)
{
    FILE *f = ud;
    size_t n = fread(dest, 1, size * nmemb, f);
    if (n == 0 && ferror(f)) return CURL_READFUNC_ABORT;
    return n;
}

static int docker_progress_cb(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)ud; (void)dt; (void)dn; (void)ut; (void)un;
    return provision_interrupted() ? 1 : 0;
}


/* why a request failed (rc: what curl_easy_perform said) */
static void tcp_explain(const docker_client *c, CURLcode rc, const char *method, const char *path,
                           double timeout, char *out, size_t outlen)
{
    if (provision_interrupted())
        snprintf(out, outlen, "docker %s %s: interrupted", method, path);
    else if (c->oom)
        snprintf(out, outlen, "docker %s %s: out of memory", method, path);
    else if (c->too_big)
        snprintf(out, outlen, "docker %s %s: the reply's body is over the %zu bytes allowed", method, path, c->max_body);
    else if (rc == CURLE_COULDNT_CONNECT)
        snprintf(out, outlen, "no Docker engine answers at %s: %s", c->host, curl_easy_strerror(rc));
    else if (c->tls && rc == CURLE_PEER_FAILED_VERIFICATION)
        snprintf(out, outlen, "the engine at %.100s is not the one DOCKER_CERT_PATH's %.120s vouches for: %.200s",
                 c->host, c->ca, c->curl_err[0] ? c->curl_err : curl_easy_strerror(rc));
    else if (c->tls && (rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_CACERT_BADFILE))
        snprintf(out, outlen, "TLS to %.100s: DOCKER_CERT_PATH's %.80s, %.80s or %.80s cannot be used: %.90s",
                 c->host, c->ca, c->cert, c->key, c->curl_err[0] ? c->curl_err : curl_easy_strerror(rc));
    else if (c->tls && (rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR))
        snprintf(out, outlen, "TLS to %.100s failed (is it a TLS endpoint that accepts %.120s?): %.200s",
                 c->host, c->cert, c->curl_err[0] ? c->curl_err : curl_easy_strerror(rc));
    else if (rc == CURLE_OPERATION_TIMEDOUT)
        snprintf(out, outlen, "docker %s %s: no answer within %gs (the engine at %.200s)", method, path, timeout,
                 c->host);
    else
        snprintf(out, outlen, "docker %s %s: %s (the engine at %.200s)", method, path, curl_easy_strerror(rc), c->host);
}

/* the TLS files of opts table t into c (each must be readable by us):
 * 0, or -1 with a message pushed */
int docker_tls_files(lua_State *L, int t, docker_client *c)
{
    static const char *const keys[] = { "ca", "cert", "key" };
    char *dest[] = { c->ca, c->cert, c->key };
    for (int i = 0; i < 3; i++) {
        lua_getfield(L, t, keys[i]);
        const char *p = lua_tostring(L, -1);
        if (!p || !*p || strlen(p) >= CERT_PATH_MAX) {
            lua_pushfstring(L, "docker TLS: no usable %s file given", keys[i]);
            return -1;
        }
        int fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) {
            lua_pushfstring(L, "DOCKER_CERT_PATH: %s: %s", p, strerror(errno));
            return -1;
        }
        close(fd);
        strcpy(dest[i], p);
        lua_pop(L, 1);
    }
    c->tls = 1;
    return 0;
}

int docker_tcp_init(docker_client *c, char *err, size_t errlen)
{
    char why[256];
    if (provision_curl_ready(why, sizeof why) < 0) {
        snprintf(err, errlen, "docker: %s", why);
        return -1;
    }
    c->curl = curl_easy_init();
    if (!c->curl) {
        snprintf(err, errlen, "docker: cannot create a curl handle");
        return -1;
    }
    return 0;
}

void docker_tcp_free(docker_client *c)
{
    if (c->curl) { curl_easy_cleanup(c->curl); c->curl = NULL; }
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
    free(c->hbuf);
    c->hbuf = NULL;
    c->hlen = c->hcap = 0;
}

/* one request through libcurl: status, body [, headers] | nil, msg [, errno] */
int docker_tcp_request(lua_State *L, docker_client *c, const docker_req *r)
{
    char hdr_ctype[200];
    snprintf(hdr_ctype, sizeof hdr_ctype, "Content-Type: %s", r->ctype);
    lua_pushfstring(L, "%s%s", c->base_url, r->path);
    const char *url = lua_tostring(L, -1);
    STACK_ENTER(L);

    /* From here on: no Lua call that can raise until cleanup. */
    char err[512] = "";
    int err_no = 0;   /* the file's errno, when it is what failed */
    FILE *f = NULL;
    struct curl_slist *headers = NULL;
    long status = 0;
    CURLcode rc;
    CURL *h = c->curl;
    curl_easy_reset(h);
    c->len = 0;
    c->hlen = 0;
    c->oom = c->too_big = 0;
    c->max_body = r->max_body;
    if (r->want_headers) {
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, docker_header_cb);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    c->curl_err[0] = 0;
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->curl_err);
    if (c->tls) {
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca);
        curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert);
        curl_easy_setopt(h, CURLOPT_SSLKEY, c->key);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    }
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(r->timeout * 1000));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(r->connect_timeout * 1000));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, docker_write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, docker_progress_cb);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "provision");
    headers = curl_slist_append(headers, "Expect:");
    if (r->body || r->file) headers = curl_slist_append(headers, hdr_ctype);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    if (r->file) {
        /* reached as core/tree.h says: no link of another user's, no FIFO */
        struct stat st;
        char terr[TREE_ERR];
        int ffd = tree_open_regular(r->file, terr, sizeof terr);
        f = ffd >= 0 ? fdopen(ffd, "rb") : NULL;
        if (!f || fstat(fileno(f), &st) < 0) {
            err_no = errno;
            if (ffd < 0) snprintf(err, sizeof err, "%.500s", terr);
            else snprintf(err, sizeof err, "%s: %s", r->file, strerror(err_no));
            if (ffd >= 0 && !f) close(ffd);
            goto cleanup;
        }
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, docker_read_cb);
        curl_easy_setopt(h, CURLOPT_READDATA, f);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)st.st_size);
    } else if (r->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    }
    if (strcmp(r->method, "GET") != 0 && !(strcmp(r->method, "POST") == 0 && (r->body || r->file)))
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
    if (strcmp(r->method, "POST") == 0 && !r->body && !r->file) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    if (strcmp(r->method, "HEAD") == 0) curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        tcp_explain(c, rc, r->method, r->path, r->timeout, err, sizeof err);
        goto cleanup;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
cleanup:
    if (f) fclose(f);
    curl_slist_free_all(headers);
    if (err_no) return provision_fail(L, err_no, "%s", err);
    if (err[0]) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushinteger(L, status);
    lua_pushlstring(L, c->buf ? c->buf : "", c->len);
    if (c->cap > (1u << 22)) { free(c->buf); c->buf = NULL; c->cap = 0; }
    c->len = 0;
    if (!r->want_headers) { STACK_LEAVE(L, 2); return 2; }
    docker_push_headers(L, c->hbuf ? c->hbuf : "", c->hlen);
    c->hlen = 0;
    STACK_LEAVE(L, 3);
    return 3;
}
