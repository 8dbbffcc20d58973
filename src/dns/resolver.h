/* resolver.h - asynchronous DNS for one worker: a c-ares channel driven by the worker's
 * event loop (its socket-state callback, ares_timeout and ares_process_fd), answering from
 * the shared cache (cache.h) when it can. /etc/hosts is consulted first. */
#ifndef VERGE_DNS_RESOLVER_H
#define VERGE_DNS_RESOLVER_H

#include "core/loop.h"
#include "dns/cache.h"

struct dns_resolver;
struct dns_request;

/* Called from the event loop (never from inside dns_resolve) with the outcome. */
typedef void (*dns_resolve_cb)(void *arg, const struct dns_answer *answer);

/* A resolver for loop, using rc's servers (NULL servers: /etc/resolv.conf). NULL with a
 * message in err on failure. */
struct dns_resolver *dns_resolver_new(struct loop *loop, const struct config_resolver *rc,
                                      char *err, size_t errlen);
/* Take new settings (reload). 0, or -1 with a message. */
int dns_resolver_configure(struct dns_resolver *r, const struct config_resolver *rc, char *err,
                           size_t errlen);
/* Pending requests are dropped without callbacks. NULLs *r. */
void dns_resolver_free(struct dns_resolver **r);

/* Resolve name. Returns 1 with *out filled when the cache (or /etc/hosts) answers at once
 * (out->status says whether it is usable; out->stale when past its TTL); returns 0 when
 * the answer will come through cb, with *req set to a handle for dns_request_cancel. */
int dns_resolve(struct dns_resolver *r, const char *name, const struct config_resolver *rc,
                struct dns_answer *out, dns_resolve_cb cb, void *arg, struct dns_request **req);

/* The caller is no longer interested: cb will not be called. NULLs *req. */
void dns_request_cancel(struct dns_request **req);

/* Diagnosis (verge check): one query of type (1 = A, 28 = AAAA, ...) for name, past the
 * cache and /etc/hosts, nothing stored. cb runs from the event loop with c-ares' status
 * (ARES_SUCCESS, ARES_ENOTFOUND, ARES_ESERVFAIL, ARES_ETIMEOUT, ...) and the response as
 * received (abuf NULL when none arrived), only valid during the call. Not called when the
 * resolver is freed first; called inside dns_query when c-ares fails at once (a bad
 * name). */
typedef void (*dns_query_cb)(void *arg, int ares_status, const unsigned char *abuf, int alen);
void dns_query(struct dns_resolver *r, const char *name, int type, dns_query_cb cb, void *arg);


/* Resolver servers in words, for messages ("127.0.0.1:5353", "the resolvers in
 * /etc/resolv.conf"). */
const char *dns_resolver_servers_text(const struct dns_resolver *r);

#endif
