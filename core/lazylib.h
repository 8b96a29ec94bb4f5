/* lazylib.h: libcurl, libarchive and libcrypto, loaded at first use.
 *
 * Linking them outright costs every run ~5 ms before main(): libcurl brings
 * GnuTLS, Kerberos, LDAP, p11-kit and their constructors, libarchive brings
 * libxml2 and ICU; libcrypto alone is 2.5 M instructions of the dynamic
 * linker (3,500 symbol relocations: 80 % of what `provision --version`
 * cost), for the three SHA256_* functions core/digest.c calls. Most runs
 * (--version, a recipe of fs steps, a no-op re-run that touches no network
 * and hashes nothing) need none of them. So the modules that use them
 * (http.c, docker.c use libcurl; archive.c uses libarchive) call through the
 * tables below, which provision_load_curl() / provision_load_archive() fill
 * with dlopen/dlsym the first time one is needed: libcrypto at the first
 * SHA-256 (provision_digest_init); libarchive when the
 * archive module is opened; libcurl at the first request that goes through
 * it (provision_curl_ready: http.new, a tcp:// Docker engine), not when
 * provision._http or provision._docker is required, so that a recipe whose
 * http.file is in place, or whose Docker engine is the local socket
 * (core/uhttp.c), never loads it.
 *
 * A module includes lazy_curl.h, lazy_archive.h or lazy_crypto.h after the library's own
 * header: those turn each call (curl_easy_init(...)) into a call through the
 * table, so the module's code reads as plain libcurl/libarchive code.
 *
 * In the static build (make static, -DPROVISION_STATIC) the libraries are
 * linked in and the tables hold their functions from the start: no dlopen,
 * and still no initialisation before the first module that needs one. */
#ifndef PROVISION_LAZYLIB_H
#define PROVISION_LAZYLIB_H
#include <stddef.h>
#include <curl/curl.h>
#include <archive.h>
#include <archive_entry.h>
#ifndef OPENSSL_SUPPRESS_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED   /* SHA256_*: deprecated for EVP, which is what costs (digest.c) */
#endif
#include <openssl/sha.h>

#define PROVISION_CURL_SONAME "libcurl.so.4"
#define PROVISION_ARCHIVE_SONAME "libarchive.so.13"
#define PROVISION_CRYPTO_SONAME "libcrypto.so.3"

#define PROVISION_CRYPTO_FUNCS(X) \
    X(SHA256_Final) \
    X(SHA256_Init) \
    X(SHA256_Update)

#define PROVISION_CURL_FUNCS(X) \
    X(curl_easy_cleanup) \
    X(curl_easy_getinfo) \
    X(curl_easy_init) \
    X(curl_easy_perform) \
    X(curl_easy_reset) \
    X(curl_easy_setopt) \
    X(curl_easy_strerror) \
    X(curl_global_init) \
    X(curl_slist_append) \
    X(curl_slist_free_all) \
    X(curl_version)

#define PROVISION_ARCHIVE_FUNCS(X) \
    X(archive_entry_copy_gname) \
    X(archive_entry_copy_hardlink) \
    X(archive_entry_copy_pathname) \
    X(archive_entry_copy_stat) \
    X(archive_entry_copy_symlink) \
    X(archive_entry_copy_uname) \
    X(archive_entry_filetype) \
    X(archive_entry_free) \
    X(archive_entry_gid) \
    X(archive_entry_hardlink) \
    X(archive_entry_mode) \
    X(archive_entry_mtime) \
    X(archive_entry_new) \
    X(archive_entry_pathname) \
    X(archive_entry_set_dev) \
    X(archive_entry_set_gid) \
    X(archive_entry_set_ino64) \
    X(archive_entry_set_mtime) \
    X(archive_entry_set_nlink) \
    X(archive_entry_set_size) \
    X(archive_entry_set_uid) \
    X(archive_entry_size) \
    X(archive_entry_symlink) \
    X(archive_entry_uid) \
    X(archive_entry_uname) \
    X(archive_entry_unset_atime) \
    X(archive_entry_unset_birthtime) \
    X(archive_entry_unset_ctime) \
    X(archive_error_string) \
    X(archive_read_data_block) \
    X(archive_read_free) \
    X(archive_read_new) \
    X(archive_read_next_header) \
    X(archive_read_open_fd) \
    X(archive_read_open_filename) \
    X(archive_read_support_filter_all) \
    X(archive_read_support_format_all) \
    X(archive_version_details) \
    X(archive_write_add_filter_gzip) \
    X(archive_write_add_filter_xz) \
    X(archive_write_close) \
    X(archive_write_data) \
    X(archive_write_data_block) \
    X(archive_write_disk_new) \
    X(archive_write_disk_set_options) \
    X(archive_write_disk_set_standard_lookup) \
    X(archive_write_finish_entry) \
    X(archive_write_free) \
    X(archive_write_header) \
    X(archive_write_new) \
    X(archive_write_open_fd) \
    X(archive_write_set_bytes_in_last_block) \
    X(archive_write_set_filter_option) \
    X(archive_write_set_format_pax_restricted) \
    X(archive_write_set_format_zip)

/* &f names the function even where the library's header also defines f as
 * a function-like macro (curl's type-checking curl_easy_setopt). */
#define PROVISION_LAZY_MEMBER(f) __typeof__(&f) f;
struct provision_curl_api { PROVISION_CURL_FUNCS(PROVISION_LAZY_MEMBER) };
struct provision_archive_api { PROVISION_ARCHIVE_FUNCS(PROVISION_LAZY_MEMBER) };
struct provision_crypto_api { PROVISION_CRYPTO_FUNCS(PROVISION_LAZY_MEMBER) };
#undef PROVISION_LAZY_MEMBER

extern struct provision_curl_api provision_curl_api;
extern struct provision_archive_api provision_archive_api;
extern struct provision_crypto_api provision_crypto_api;

/* 0, or -1 with the reason in err (the library is missing or too old). */
int provision_load_curl(char *err, size_t errlen);
/* libcurl loaded and curl_global_init'ed, once, at the first request that
 * needs it (http.new, a tcp:// Docker engine): 0, or -1 with err */
int provision_curl_ready(char *err, size_t errlen);
int provision_load_archive(char *err, size_t errlen);
int provision_load_crypto(char *err, size_t errlen);

#endif
