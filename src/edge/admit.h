/* admit.h - what the edge checks on a visitor's request head before it routes it, and
 * what it reads from the head once for the rest of the request (the target split, the
 * host it names, the target the origin gets): pure functions of the parsed head (no
 * connection, no clock), shared by client.c and the request fuzz target. */
#ifndef VERGE_EDGE_ADMIT_H
#define VERGE_EDGE_ADMIT_H

#include "http/validate.h"

/* What an admitted head says, read once. Pointers are into the message's strings (or
 * static ""): valid while the message is. */
struct admit_facts {
    struct http_target target; /* the request target, split (http_target_parse) */
    const char *host;          /* the host it names: the authority of an absolute-form
                                * target, else its Host field, else "" */
    size_t host_len;
    const char *origin_target; /* what the origin gets: an origin-form target as it is, the
                                * path of an absolute-form one ("/" when it has none; it
                                * may start with '?') */
    size_t origin_target_len;
};

/* Why a request is refused before it reaches an origin: 0 (and *f filled), or a status
 * with *reason a static string. 400, 501 or 505 when it breaks RFC 9110/9112
 * (http_request_check: *reason says what broke, for the log); 405 for CONNECT and 417 for
 * an Expect other than 100-continue (*reason is then a sentence for the visitor). */
int admit_head_check(const struct http_msg *m, struct admit_facts *f, const char **reason);

/* Is a visitor's X-Request-Id kept as it is: 1..max bytes of [A-Za-z0-9-_.:]? */
bool admit_request_id_valid(const char *s, size_t len, size_t max);

#endif
