/* redirect.c: the redirect policy of the http module. Redirects are
 * followed by http_perform (http.c), not by libcurl, so that this file
 * decides what each hop sends: one from https to plain http is refused,
 * and once one leads to another origin (scheme, host or port) the
 * caller's headers (but Accept*, Content-Type, User-Agent) and credentials
 * are no longer sent; 303 (and 301/302 of a POST) make the request a GET.
 * A URL shown (a message, a result) is without its user:password@. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>
#include "lazy_curl.h"
#include "http.h"

/* What a redirect to another origin keeps of the caller's headers: these
 * describe the request, never who makes it. Everything else (a token, a
 * cookie, an API key under any name) goes only to the first origin. */
static int keeps_across_origins(const char *line)
{
    static const char *const keep[] = { "accept", "accept-encoding", "accept-language", "content-type",
                                        "user-agent", NULL };
    size_t n = strcspn(line, ":;");   /* "Name: value", or "Name;" (empty) */
    for (int i = 0; keep[i]; i++)
        if (strlen(keep[i]) == n && strncasecmp(line, keep[i], n) == 0) return 1;
    return 0;
}

/* the header list of the next hop: own headers, and the caller's while
 * the redirects stay on the first origin (a few plain ones after). 0 or -1 */
int http_set_request_headers(http_xfer *x)
{
    struct curl_slist *all = NULL;
    for (struct curl_slist *h = x->own_headers; h; h = h->next)
        if (http_slist_add(&all, h->data) < 0) goto oom;
    for (struct curl_slist *h = x->user_headers; h; h = h->next)
        if ((!x->cross_origin || keeps_across_origins(h->data)) && http_slist_add(&all, h->data) < 0) goto oom;
    curl_easy_setopt(x->curl, CURLOPT_HTTPHEADER, all);
    if (x->req_headers) curl_slist_free_all(x->req_headers);
    x->req_headers = all;
    return 0;
oom:
    if (all) curl_slist_free_all(all);
    return -1;
}

/* ---- URLs */

/* The authority of an absolute URL: it starts at *a, after the "://" at
 * *sep, its host at *hp (after any user:password@), and ends at *end.
 * 0, or -1 when url is not absolute. */
static int url_authority(const char *url, const char **sep, const char **a, const char **hp, const char **end)
{
    *sep = strstr(url, "://");
    if (!*sep || *sep == url) return -1;
    *a = *sep + 3;
    *end = *a + strcspn(*a, "/?#");
    *hp = *a;
    for (const char *q = *a; q < *end; q++) if (*q == '@') *hp = q + 1;
    return 0;
}

/* url as it may be shown (a message, the result's url): without the
 * user:password@ that curl writes into a redirect's URL it resolves from
 * the options user and password */
static void url_shown(const char *url, char *out, size_t n)
{
    const char *sep, *a, *hp, *end;
    if (url_authority(url, &sep, &a, &hp, &end) < 0) snprintf(out, n, "%s", url);
    else snprintf(out, n, "%.*s%s", (int)(a - url), url, hp);
}

void http_push_url_shown(lua_State *L, const char *url)
{
    const char *sep, *a, *hp, *end;
    if (url_authority(url, &sep, &a, &hp, &end) < 0) { lua_pushstring(L, url); return; }
    lua_pushlstring(L, url, (size_t)(a - url));
    lua_pushstring(L, hp);
    lua_concat(L, 2);
}

/* The origin of an absolute URL: its scheme and host, lowercased, and its
 * port (the scheme's when none is written). 0, or -1 when it has none. */
static int url_origin(const char *url, char *scheme, size_t sl, char *host, size_t hl, long *port)
{
    const char *sep, *a, *h, *end;
    if (url_authority(url, &sep, &a, &h, &end) < 0 || (size_t)(sep - url) >= sl) return -1;
    for (size_t i = 0; url + i < sep; i++) scheme[i] = (char)(url[i] >= 'A' && url[i] <= 'Z' ? url[i] + 32 : url[i]);
    scheme[sep - url] = '\0';
    const char *he, *colon = NULL;
    if (*h == '[') {   /* [v6] */
        he = memchr(h, ']', (size_t)(end - h));
        if (!he) return -1;
        he++;
        if (he < end && *he == ':') colon = he;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        he = colon ? colon : end;
    }
    if ((size_t)(he - h) >= hl) return -1;
    for (size_t i = 0; h + i < he; i++) host[i] = (char)(h[i] >= 'A' && h[i] <= 'Z' ? h[i] + 32 : h[i]);
    host[he - h] = '\0';
    *port = colon && colon + 1 < end ? strtol(colon + 1, NULL, 10)
          : strcmp(scheme, "https") == 0 ? 443 : strcmp(scheme, "http") == 0 ? 80 : -1;
    return 0;
}

/* Follow the redirect that the reply just read asks for, if any: 1 when
 * the next hop is set up, 0 when this reply is the answer, -1 when it must
 * not be followed (abort set: https to http, too many). To another origin
 * (scheme, host or port) the caller's headers and credentials do not go,
 * from then on; 303 (and 301/302 of a POST) turn the request into a GET. */
int http_next_hop(http_xfer *x, int hops)
{
    long status = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
    if (!http_is_redirect(status)) return 0;
    char *loc = NULL, *cur = NULL, *method = NULL;
    curl_easy_getinfo(x->curl, CURLINFO_REDIRECT_URL, &loc);
    if (!loc) return 0;
    curl_easy_getinfo(x->curl, CURLINFO_EFFECTIVE_URL, &cur);
    curl_easy_getinfo(x->curl, CURLINFO_EFFECTIVE_METHOD, &method);
    return http_follow(x, hops, status, loc, cur, method);
}

/* the redirect status to loc from the reply to cur, of method: as above
 * (also for a first hop made without libcurl: plain.c) */
int http_follow(http_xfer *x, int hops, long status, const char *loc, const char *cur, const char *method)
{
    char msg[512], shown[320];
    url_shown(loc, shown, sizeof shown);
    if (hops >= x->max_redirects) {
        snprintf(msg, sizeof msg, "stopped after %ld redirects (the last to %s)", x->max_redirects, shown);
        http_set_abort(x, AB_REDIRECTS, msg);
        return -1;
    }
    char s1[16], s2[16], h1[256], h2[256];
    long p1 = -1, p2 = -1;
    int o1 = cur ? url_origin(cur, s1, sizeof s1, h1, sizeof h1, &p1) : -1;
    int o2 = url_origin(loc, s2, sizeof s2, h2, sizeof h2, &p2);
    if (o2 < 0 || (strcmp(s2, "http") != 0 && strcmp(s2, "https") != 0)) {
        snprintf(msg, sizeof msg, "refusing a redirect to %s (not an http or https URL)", shown);
        http_set_abort(x, AB_REDIRECTS, msg);
        return -1;
    }
    if (o1 == 0 && strcmp(s1, "https") == 0 && strcmp(s2, "http") == 0) {
        snprintf(msg, sizeof msg, "refusing a redirect from https to plain http (%s): "
                 "what is sent or received there is not protected", shown);
        http_set_abort(x, AB_REDIRECTS, msg);
        return -1;
    }
    if (o1 < 0 || strcmp(s1, s2) != 0 || strcmp(h1, h2) != 0 || p1 != p2) {
        if (!x->cross_origin) {
            x->cross_origin = 1;
            curl_easy_setopt(x->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_NONE);
            curl_easy_setopt(x->curl, CURLOPT_USERNAME, (char *)NULL);
            curl_easy_setopt(x->curl, CURLOPT_PASSWORD, (char *)NULL);
        }
    }
    char *next = strdup(loc);   /* loc may be curl's, valid until the next perform */
    if (!next) { http_set_abort(x, AB_WRITE, "out of memory"); return -1; }
    free(x->next_url);
    x->next_url = next;
    /* a GET or a HEAD stays what it is; another method (PUT, DELETE) keeps
     * its method and body through a 301/302, as only a POST turns into a GET */
    if (method && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0
        && (status == 303 || ((status == 301 || status == 302) && strcmp(method, "POST") == 0))) {
        curl_easy_setopt(x->curl, CURLOPT_CUSTOMREQUEST, (char *)NULL);
        curl_easy_setopt(x->curl, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(x->curl, CURLOPT_URL, x->next_url);
    /* the next reply starts afresh */
    x->body_started = x->stopped = x->truncated = 0;
    x->body.len = 0;
    if (x->body.p) x->body.p[0] = '\0';
    return 1;
}
