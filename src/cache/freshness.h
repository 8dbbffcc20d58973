/* freshness.h - RFC 9111 rules as pure functions: Cache-Control parsing, whether a
 * response may be stored by a shared cache, its freshness lifetime, its current age, and
 * how long it may be served stale (RFC 5861 stale-if-error). No I/O, no clock: times are
 * passed in (seconds since the epoch). */
#ifndef VERGE_CACHE_FRESHNESS_H
#define VERGE_CACHE_FRESHNESS_H

#include "http/msg.h"

#include <time.h>

#define CC_UNSET (-1) /* a delta-seconds directive that is absent */

/* The Cache-Control directives a shared cache acts on. Deltas are seconds or CC_UNSET. */
struct cache_control {
    bool no_store, no_cache, private_, public_, must_revalidate, proxy_revalidate;
    bool only_if_cached;
    int64_t max_age, s_maxage, min_fresh, max_stale, stale_if_error, stale_while_revalidate;
    bool max_stale_any; /* max-stale without a value */
};

/* Parse every Cache-Control field of m (comma lists, several fields, quoted values,
 * unknown directives ignored). */
void cache_control_parse(const struct http_msg *m, struct cache_control *cc);

/* The last second an IMF-fixdate can write: Fri, 31 Dec 9999 23:59:59 GMT. */
#define HTTP_DATE_MAX ((time_t)253402300799)

/* An HTTP-date (IMF-fixdate, RFC 850 or asctime) as seconds since the epoch, at most
 * HTTP_DATE_MAX; -1 if invalid. */
time_t http_date_parse(const char *s, size_t len);

/* Format t as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), t clamped to
 * [0, HTTP_DATE_MAX]; out needs 30 bytes. */
void http_date_format(time_t t, char out[30]);

/* May a shared cache store this response to this request (RFC 9111 section 3)? Only GET
 * responses are considered; why gets a short reason when the answer is no. Negative
 * answers follow the same rules (404 and 410 with explicit or heuristic freshness); a 5xx
 * is stored only with an explicit lifetime (max-age, s-maxage or Expires), never on
 * public alone. */
bool cache_storable(const struct http_msg *req, const struct http_msg *resp, char *why,
                    size_t whylen);
/* The same question: NULL when it may be stored, else the reason, a static string
 * ("no-store"). */
const char *cache_refusal(const struct http_msg *req, const struct http_msg *resp);
/* Is this refusal the request's doing (Authorization without a response that says it may
 * be shared), not the response's alone: another request may get an answer to store? */
bool cache_refusal_by_request(const char *why);

/* Freshness lifetime in seconds (RFC 9111 4.2.1): s-maxage, max-age, Expires - Date, or
 * the heuristic (10% of Date - Last-Modified, at most heuristic_cap; 0 disables it) for
 * heuristically cacheable statuses. 0 when none applies. */
int64_t cache_freshness_lifetime(const struct http_msg *resp, int64_t heuristic_cap);

/* The same, from resp's Cache-Control parsed already (cache_control_parse) into cc: for
 * a caller that asks several of these questions of one response. */
int64_t cache_lifetime_by(const struct http_msg *resp, const struct cache_control *cc,
                          int64_t heuristic_cap);

/* Age of a stored response (RFC 9111 4.2.3): request_time and response_time are when the
 * request went out and the response arrived; now is the time of the question. */
int64_t cache_current_age(const struct http_msg *resp, time_t request_time,
                          time_t response_time, time_t now);

/* Seconds past its freshness a stored response may be served when the origin fails:
 * the response's stale-if-error, else zone_default; 0 when must-revalidate,
 * proxy-revalidate or s-maxage forbid serving it stale. */
int64_t cache_stale_if_error(const struct http_msg *resp, int64_t zone_default);

/* Seconds past its freshness a stored response may be served while it is refreshed in the
 * background (RFC 5861 stale-while-revalidate), else zone_default; 0 when forbidden. */
int64_t cache_stale_while_revalidate(const struct http_msg *resp, int64_t zone_default);

/* Either window from a parsed Cache-Control: stale-if-error when if_error, else
 * stale-while-revalidate. */
int64_t cache_stale_window_by(const struct cache_control *cc, bool if_error, int64_t zone_default);

#endif
