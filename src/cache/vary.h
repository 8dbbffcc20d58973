/* vary.h - Vary (RFC 9110 12.5.5): the normalised field names a response varies on, and a
 * request's values for them, which pick the stored variant that may answer it. */
#ifndef VERGE_CACHE_VARY_H
#define VERGE_CACHE_VARY_H

#include "http/msg.h"

/* The normalised Vary names of a response ("accept-encoding,accept-language"), or NULL.
 * A response with a Content-Encoding other than identity varies on accept-encoding even
 * when its Vary does not say so (a coded body must not reach visitors that did not ask). */
char *cache_vary_names(const struct http_msg *resp);

/* Append the variant of a request for these Vary names to out ("accept-encoding=gzip;\n"
 * ...: values lower case, spaces removed, so equivalent requests share a variant). */
void cache_variant(const struct http_msg *req, const char *names, struct buf *out);

#endif
