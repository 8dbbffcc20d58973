/* httpcheck.h - the HTTP step of verge check: the request the edge would send (method,
 * Host, its headers), sent through the edge's own fetch path (edge/upstream.h) for http
 * origins, or over the TLS step's connection for https ones; either way the response is
 * read with the edge's parser and limits. It says when each phase ended, whether the edge
 * would accept the response or which RFC 9209 error it would raise, whether and for how
 * long the edge's cache would keep it (cache/freshness.h), and whether it looks like a
 * web application firewall or a rate limit refusing the edge. */
#ifndef VERGE_DIAG_HTTPCHECK_H
#define VERGE_DIAG_HTTPCHECK_H

#include "core/config.h"
#include "diag/probe.h"
#include "diag/tls.h"
#include "edge/proxy_error.h"
#include "edge/worker.h"

#define HTTPCHECK_FIELDS 14
#define HTTPCHECK_MAX_BODY (8u << 20) /* read no further: enough to judge the response */

struct httpcheck_field {
    char name[40];
    char value[200];
};

struct httpcheck_result {
    bool attempted;
    bool finished; /* false: stopped (Ctrl-C) before the response was judged */
    char path[512];
    char host[256];   /* the Host sent */
    char address[64]; /* the origin address that answered */
    int status;
    char reason[64];
    bool head_ok;                /* a response header the edge accepts */
    bool complete;               /* and the whole response, well framed */
    bool body_truncated;         /* stopped after HTTPCHECK_MAX_BODY bytes */
    enum proxy_error_type error; /* PROXY_ERR_NONE: the edge accepts it */
    enum proxy_phase phase;
    char detail[200];
    /* milliseconds since connecting began, cumulative as curl -w gives them (connect done,
     * TLS handshake done, first response byte, header complete, all done); 0 when the
     * phase did not happen */
    uint64_t connect_ms, tls_ms, first_byte_ms, header_ms, total_ms;
    uint64_t body_bytes;
    struct httpcheck_field fields[HTTPCHECK_FIELDS]; /* the response fields that matter */
    int nfields;
    /* the edge's cache */
    bool zone_caches;    /* the zone has cache: true */
    bool storable;       /* a shared cache may store it */
    char cache_why[160]; /* why not, or where its lifetime comes from */
    int64_t lifetime_s, age_s, stale_if_error_s, stale_while_revalidate_s;
    /* someone in front of the origin refusing the edge */
    bool rate_limited; /* 429 */
    char waf[64];      /* "Cloudflare", ...; "" when none recognised */
    char waf_evidence[160];
};

struct httpcheck;

/* GET path from the zone's origin origin_index. tls: an established connection from the
 * TLS step and its result (the check takes the connection over and frees it), NULL for
 * http origins. The header must come within timeout_ms, and each body read after it too. */
struct httpcheck *httpcheck_start(struct worker *w, const struct config *cfg,
                                  const struct config_zone *zone, int origin_index,
                                  const char *path, struct tls_conn *tls,
                                  const struct tls_result *tr, uint64_t timeout_ms,
                                  struct httpcheck_result *out, probe_done_cb cb, void *arg);
void httpcheck_free(struct httpcheck **h);

#endif
