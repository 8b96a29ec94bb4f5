/* lazylib.c: dlopen libcurl, libarchive and libcrypto when a module first
 * needs them (why: lazylib.h). Each table is filled completely or not at all.
 *
 * PROVISION_STATIC (make static: ./provision-static): the libraries are
 * linked in, and the tables point at their own functions. Nothing of them
 * runs before a module asks for it: none has a constructor, and
 * curl_global_init (which initialises OpenSSL) is still called at the first
 * request that needs libcurl (provision_curl_ready), not at startup. */
#include <dlfcn.h>
#include <stdio.h>
#include "lazylib.h"

#ifdef PROVISION_STATIC

#define X(f) .f = &f,
struct provision_curl_api provision_curl_api = { PROVISION_CURL_FUNCS(X) };
struct provision_archive_api provision_archive_api = { PROVISION_ARCHIVE_FUNCS(X) };
struct provision_crypto_api provision_crypto_api = { PROVISION_CRYPTO_FUNCS(X) };
#undef X

int provision_load_curl(char *err, size_t errlen) { (void)err; (void)errlen; return 0; }
int provision_load_archive(char *err, size_t errlen) { (void)err; (void)errlen; return 0; }
int provision_load_crypto(char *err, size_t errlen) { (void)err; (void)errlen; return 0; }

#else

struct provision_curl_api provision_curl_api;
struct provision_archive_api provision_archive_api;
struct provision_crypto_api provision_crypto_api;

#define LOAD(api, f) \
    if (!(api.f = (__typeof__(api.f))dlsym(h, #f))) { \
        snprintf(err, errlen, "%s: no symbol %s", soname, #f); \
        return -1; \
    }

static void *open_lib(const char *soname, char *err, size_t errlen)
{
    void *h = dlopen(soname, RTLD_NOW | RTLD_GLOBAL);
    if (!h) snprintf(err, errlen, "cannot load %s: %s", soname, dlerror());
    return h;
}

int provision_load_curl(char *err, size_t errlen)
{
    static int loaded;
    const char *soname = PROVISION_CURL_SONAME;
    if (loaded) return 0;
    void *h = open_lib(soname, err, errlen);
    if (!h) return -1;
#define X(f) LOAD(provision_curl_api, f)
    PROVISION_CURL_FUNCS(X)
#undef X
    loaded = 1;
    return 0;
}

int provision_load_archive(char *err, size_t errlen)
{
    static int loaded;
    const char *soname = PROVISION_ARCHIVE_SONAME;
    if (loaded) return 0;
    void *h = open_lib(soname, err, errlen);
    if (!h) return -1;
#define X(f) LOAD(provision_archive_api, f)
    PROVISION_ARCHIVE_FUNCS(X)
#undef X
    loaded = 1;
    return 0;
}

int provision_load_crypto(char *err, size_t errlen)
{
    static int loaded;
    const char *soname = PROVISION_CRYPTO_SONAME;
    if (loaded) return 0;
    void *h = open_lib(soname, err, errlen);
    if (!h) return -1;
#define X(f) LOAD(provision_crypto_api, f)
    PROVISION_CRYPTO_FUNCS(X)
#undef X
    loaded = 1;
    return 0;
}

#endif

int provision_curl_ready(char *err, size_t errlen)
{
    static int ready;
    if (ready) return 0;
    if (provision_load_curl(err, errlen) < 0) return -1;
    CURLcode rc = provision_curl_api.curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "libcurl: curl_global_init failed (%d)", (int)rc);
        return -1;
    }
    ready = 1;
    return 0;
}
