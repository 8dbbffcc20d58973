/* admit.h - what the edge checks on a visitor's request head before it routes it: pure
 * functions of the parsed head (no connection, no clock), shared by client.c and the
 * request fuzz target. */
#ifndef VERGE_EDGE_ADMIT_H
#define VERGE_EDGE_ADMIT_H

#include "http/msg.h"

/* Why a request is refused before it reaches an origin: 0, or a status with *reason a
 * static string. 400, 501 or 505 when it breaks RFC 9110/9112 (http_request_check in
 * http/validate.h: *reason says what broke, for the log); 405 for CONNECT and 417 for an
 * Expect other than 100-continue (*reason is then a sentence for the visitor). */
int admit_head_check(const struct http_msg *m, const char **reason);

/* The authority of an absolute-form target ("http://host:port/path"), or NULL when url is
 * not a valid absolute-form target (http_target_parse). *alen gets its length; *path the rest ("/path", "?q", or "" at the
 * end of url) and *plen its length. Pointers are into url. */
const char *admit_target_authority(const char *url, size_t len, size_t *alen, const char **path,
                                   size_t *plen);

/* The target the origin gets: url itself in origin form, the path of an absolute-form url
 * ("/" when it has none). *tlen gets its length. */
const char *admit_origin_target(const char *url, size_t len, size_t *tlen);

/* The host a request names: the authority of an absolute-form target, else its Host field,
 * else "" (*len 0). Points into m's strings (or a static ""). */
const char *admit_host(const struct http_msg *m, size_t *len);

/* Is a visitor's X-Request-Id kept as it is: 1..max bytes of [A-Za-z0-9-_.:]? */
bool admit_request_id_valid(const char *s, size_t len, size_t max);

#endif
