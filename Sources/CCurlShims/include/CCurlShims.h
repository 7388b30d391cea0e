#ifndef HERALD_CCURLSHIMS_H
#define HERALD_CCURLSHIMS_H

// Typed wrappers around libcurl's variadic functions (curl_easy_setopt, curl_easy_getinfo),
// which Swift cannot call, and a once-only curl_global_init.

#include <curl/curl.h>

/// The signature of CURLOPT_READFUNCTION and CURLOPT_HEADERFUNCTION callbacks.
typedef size_t (*herald_curl_data_callback)(char *buffer, size_t size, size_t count, void *context);

CURLcode herald_curl_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode herald_curl_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode herald_curl_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode herald_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value);
CURLcode herald_curl_setopt_callback(CURL *handle, CURLoption option, herald_curl_data_callback value);

/// The signature of a CURLOPT_DEBUGFUNCTION callback.
typedef int (*herald_curl_debug_callback)(CURL *handle, curl_infotype type, char *data, size_t size, void *context);

CURLcode herald_curl_setopt_debug_callback(CURL *handle, CURLoption option, herald_curl_debug_callback value);

CURLcode herald_curl_getinfo_long(CURL *handle, CURLINFO info, long *value);

/// CURLINFO_CERTINFO: the server's certificate chain as libcurl describes it (with
/// CURLOPT_CERTINFO set before the transfer); owned by the handle.
CURLcode herald_curl_getinfo_certinfo(CURL *handle, struct curl_certinfo **value);

/// curl_global_init(CURL_GLOBAL_DEFAULT) exactly once per process (pthread_once); every
/// call returns the result of that one call. curl_global_init itself is not thread-safe.
CURLcode herald_curl_global_init_once(void);

/// CURL_ERROR_SIZE, which Swift does not import (a macro).
size_t herald_curl_error_size(void);

#endif
