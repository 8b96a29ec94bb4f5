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

/* a function's name and where its address goes */
struct slot { const char *name; void **at; };

/* dlopen soname once and fill every slot, or say which symbol is missing
 * (the table is used only once *loaded is set: all of it, or none) */
static int load(const char *soname, int *loaded, const struct slot *slots, size_t n, char *err, size_t errlen)
{
    if (*loaded) return 0;
    void *h = dlopen(soname, RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
        snprintf(err, errlen, "cannot load %s: %s", soname, dlerror());
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!(*slots[i].at = dlsym(h, slots[i].name))) {   /* (dlsym's way to a function pointer) */
            snprintf(err, errlen, "%s: no symbol %s", soname, slots[i].name);
            return -1;
        }
    }
    *loaded = 1;
    return 0;
}

#define X(f) { #f, (void **)&provision_curl_api.f },
static const struct slot curl_slots[] = { PROVISION_CURL_FUNCS(X) };
#undef X
#define X(f) { #f, (void **)&provision_archive_api.f },
static const struct slot archive_slots[] = { PROVISION_ARCHIVE_FUNCS(X) };
#undef X
#define X(f) { #f, (void **)&provision_crypto_api.f },
static const struct slot crypto_slots[] = { PROVISION_CRYPTO_FUNCS(X) };
#undef X
#define COUNT(a) (sizeof a / sizeof *a)

int provision_load_curl(char *err, size_t errlen)
{
    static int loaded;
    return load(PROVISION_CURL_SONAME, &loaded, curl_slots, COUNT(curl_slots), err, errlen);
}

int provision_load_archive(char *err, size_t errlen)
{
    static int loaded;
    return load(PROVISION_ARCHIVE_SONAME, &loaded, archive_slots, COUNT(archive_slots), err, errlen);
}

int provision_load_crypto(char *err, size_t errlen)
{
    static int loaded;
    return load(PROVISION_CRYPTO_SONAME, &loaded, crypto_slots, COUNT(crypto_slots), err, errlen);
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
