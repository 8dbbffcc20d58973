/* cache.h - the DNS answers shared by all workers: positive answers kept for their TTL
 * (clamped), negative ones for the SOA minimum (clamped), and the last good answer kept
 * past its TTL for serve_stale (RFC 8767) while the resolver fails. Thread-safe. */
#ifndef VERGE_DNS_CACHE_H
#define VERGE_DNS_CACHE_H

#include "core/config.h"

enum dns_status {
    DNS_OK = 0,
    DNS_NXDOMAIN,  /* the name does not exist */
    DNS_NODATA,    /* the name exists without A/AAAA records */
    DNS_SERVFAIL,
    DNS_REFUSED,
    DNS_TIMEOUT,   /* no resolver answered */
    DNS_FAILED,    /* anything else (bad response, no servers) */
};

/* What a lookup gives the caller: a copy, safe to keep. Ports in addrs are 0. */
struct dns_answer {
    enum dns_status status;
    struct config_addr addrs[CONFIG_MAX_ADDRS];
    int naddrs;
    bool stale;          /* the last good answer, served past its TTL */
    uint64_t age_ms;     /* stale: how long past its TTL */
    char detail[160];    /* "NXDOMAIN from 127.0.0.1:5353", "resolver timed out" */
};

enum dns_lookup {
    DNS_LOOKUP_HIT,      /* *out holds a fresh answer (positive or negative) */
    DNS_LOOKUP_STALE,    /* *out holds a stale answer to use now; the resolver failed lately */
    DNS_LOOKUP_MISS,     /* resolve it (then call dns_cache_store) */
};

/* Look name up at monotonic time now_ms. */
enum dns_lookup dns_cache_lookup(const char *name, uint64_t now_ms,
                                 const struct config_resolver *rc, struct dns_answer *out);

/* Store a resolution's outcome. ttl_s is the answer's TTL (positive) or the SOA minimum
 * (negative), before clamping to rc's min_ttl/max_ttl. For failures (SERVFAIL, REFUSED,
 * TIMEOUT, FAILED) nothing is cached as an answer; instead, when a last good answer is
 * within serve_stale, *out becomes that stale answer (and true is returned), so the caller
 * keeps working and logs a warning. Returns whether *out is usable addresses. */
bool dns_cache_store(const char *name, uint64_t now_ms, const struct config_resolver *rc,
                     struct dns_answer *out, uint32_t ttl_s);

/* Forget everything (tests, reload of resolver settings). */
void dns_cache_clear(void);

const char *dns_status_name(enum dns_status s);

#endif
