/* lazy_crypto.h: calls to libcrypto's SHA256_* go through
 * provision_crypto_api (see lazylib.h). Include after <openssl/sha.h>; call
 * provision_load_crypto() before the first call. */
#ifndef PROVISION_LAZY_CRYPTO_H
#define PROVISION_LAZY_CRYPTO_H
#include "lazylib.h"
#undef SHA256_Final
#define SHA256_Final (provision_crypto_api.SHA256_Final)
#undef SHA256_Init
#define SHA256_Init (provision_crypto_api.SHA256_Init)
#undef SHA256_Update
#define SHA256_Update (provision_crypto_api.SHA256_Update)
#endif
