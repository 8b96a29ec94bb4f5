/* lazy_curl.h: calls to libcurl go through provision_curl_api (see
 * lazylib.h). Include after <curl/curl.h>; call provision_load_curl() before
 * the first call. */
#ifndef PROVISION_LAZY_CURL_H
#define PROVISION_LAZY_CURL_H
#include "lazylib.h"
#undef curl_easy_cleanup
#define curl_easy_cleanup (provision_curl_api.curl_easy_cleanup)
#undef curl_easy_getinfo
#define curl_easy_getinfo (provision_curl_api.curl_easy_getinfo)
#undef curl_easy_init
#define curl_easy_init (provision_curl_api.curl_easy_init)
#undef curl_easy_perform
#define curl_easy_perform (provision_curl_api.curl_easy_perform)
#undef curl_easy_reset
#define curl_easy_reset (provision_curl_api.curl_easy_reset)
#undef curl_easy_setopt
#define curl_easy_setopt (provision_curl_api.curl_easy_setopt)
#undef curl_easy_strerror
#define curl_easy_strerror (provision_curl_api.curl_easy_strerror)
#undef curl_global_init
#define curl_global_init (provision_curl_api.curl_global_init)
#undef curl_slist_append
#define curl_slist_append (provision_curl_api.curl_slist_append)
#undef curl_slist_free_all
#define curl_slist_free_all (provision_curl_api.curl_slist_free_all)
#undef curl_version
#define curl_version (provision_curl_api.curl_version)
#endif
