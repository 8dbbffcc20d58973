/* verdict.c - the pipeline's order decides: DNS, the edge's address policy, TCP, TLS,
 * HTTP; the first step that fails names the culprit. */
#include "diag/verdict.h"

#include "diag/firewall.h"

#include <stdarg.h>

const char *
verdict_name(enum check_verdict v)
{
    switch (v) {
    case CHECK_OK:
        return "OK";
    case CHECK_USAGE:
        return "usage";
    case CHECK_DNS:
        return "DNS does not resolve";
    case CHECK_ORIGIN_DOWN:
        return "origin down";
    case CHECK_FIREWALL:
        return "firewall blocking";
    case CHECK_INVALID:
        return "invalid response";
    case CHECK_SLOW:
        return "origin too slow";
    case CHECK_REFUSED_BY_POLICY:
        return "origin address refused by the edge";
    case CHECK_TLS:
        return "TLS problem";
    case CHECK_INTERRUPTED:
        return "interrupted";
    }
    return "unknown";
}

static const char *
next_step(enum check_verdict v)
{
    switch (v) {
    case CHECK_DNS:
        return "check the name's A/AAAA records at its DNS provider, and the resolvers the edge "
               "uses (resolver.servers or /etc/resolv.conf)";
    case CHECK_ORIGIN_DOWN:
        return "start the origin server, or check that it listens on this address and port";
    case CHECK_FIREWALL:
        return "allow this edge's address to reach the origin's port in the firewalls in "
               "between (origin host, cloud security group)";
    case CHECK_INVALID:
        return "look at the origin's response (curl -v) and its error log";
    case CHECK_SLOW:
        return "look at the origin application's load and logs; raise timeouts.header only if "
               "slow answers are expected";
    case CHECK_REFUSED_BY_POLICY:
        return "point the origin URL or its DNS record at the real origin server, or allow "
               "private addresses (allow_private)";
    case CHECK_TLS:
        return "install a certificate for this name from a trusted CA, with its full chain, on "
               "the origin (verge check --ca FILE trusts a private CA)";
    default:
        return "nothing to do";
    }
}

static bool conclude(struct evidence_origin *e, enum check_verdict v, const char *next,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static bool
conclude(struct evidence_origin *e, enum check_verdict v, const char *next, const char *fmt, ...)
{
    va_list ap;
    e->verdict = v;
    va_start(ap, fmt);
    vsnprintf(e->evidence, sizeof(e->evidence), fmt, ap);
    va_end(ap);
    snprintf(e->next, sizeof(e->next), "%s", next ? next : next_step(v));
    return true;
}

static bool
judge_dns(struct evidence_origin *e)
{
    if (!e->dns_done || e->naddrs > 0)
        return false;
    const char *next = next_step(CHECK_DNS);
    if (e->dns_flags & DNS_FLAG_SERVFAIL)
        next = "SERVFAIL: the resolver could not get an answer from the name's authoritative "
               "servers (unreachable servers, a broken delegation or a DNSSEC failure): check "
               "them with dig +trace, and the resolvers the edge uses";
    else if (e->dns_flags & DNS_FLAG_NXDOMAIN)
        next = "the name does not exist: check its spelling in the origin URL, and its records "
               "at its DNS provider";
    return conclude(e, CHECK_DNS, next, "%s", e->answer.detail);
}

static bool
judge_policy(struct evidence_origin *e)
{
    for (int i = 0; i < e->naddrs; i++)
        if (e->addrs[i].policy != PROXY_ERR_NONE)
            return conclude(e, CHECK_REFUSED_BY_POLICY, NULL, "%s", e->addrs[i].policy_why);
    return false;
}

static bool
judge_tcp(struct evidence_origin *e)
{
    int tried = 0, refused = 0, silent = 0, unreachable = 0;
    for (int i = 0; i < e->naddrs; i++) {
        const struct tcpprobe_result *t = &e->addrs[i].tcp;
        if (!e->addrs[i].ran_tcp || t->done == 0)
            continue;
        if (t->open > 0)
            return false;
        tried++;
        refused += t->outcome == TCPPROBE_REFUSED;
        silent += t->outcome == TCPPROBE_NO_ANSWER;
        unreachable += t->outcome == TCPPROBE_UNREACHABLE || t->outcome == TCPPROBE_ERROR;
    }
    const struct config_origin *o = e->origin;
    if (tried == 0)
        return false;
    if (refused == tried)
        return conclude(e, CHECK_ORIGIN_DOWN, NULL,
                        "every address of %s refuses connections on "
                        "port %u",
                        o->host, o->port);
    return conclude(e, CHECK_FIREWALL, e->fw.found ? e->fw.allow : NULL,
                    "%d of %d addresses of %s do not answer on port %u (%d silent, %d "
                    "unreachable)",
                    silent + unreachable, tried, o->host, o->port, silent, unreachable);
}

static bool
judge_tls(struct evidence_origin *e)
{
    const struct tls_result *t = &e->tls;
    const char *host = e->origin->host;
    if (!t->attempted || !t->connected)
        return false;
    if (!t->handshake_ok && t->reset_after_hello)
        return conclude(e, CHECK_FIREWALL, e->fw.found ? e->fw.allow : NULL,
                        "%s: the connection is reset right after the TLS ClientHello", t->address);
    if (!t->handshake_ok) {
        char next[300];
        snprintf(next, sizeof(next),
                 "check that port %u speaks TLS, and the origin's TLS "
                 "setup: openssl s_client -connect %s -servername %s",
                 e->origin->port, t->address, host);
        return conclude(e, CHECK_TLS, next, "%s: %s", t->address, t->error);
    }
    if (t->days_left < 0)
        return conclude(e, CHECK_TLS, "renew the origin's certificate (and automate renewal)",
                        "the certificate of %s expired on %s (%d days ago)", host, t->not_after,
                        -t->days_left);
    if (!t->name_ok)
        return conclude(e, CHECK_TLS,
                        "install a certificate whose names (subjectAltName) "
                        "include this host, or point the origin URL at a name it covers",
                        "the certificate of %s is not valid for that name (subject %s)", host,
                        t->subject);
    if (!t->chain_ok)
        return conclude(e, CHECK_TLS, NULL,
                        "the certificate of %s does not verify: %s (issuer "
                        "%s)",
                        host, t->chain_error, t->issuer);
    return false;
}

static enum check_verdict
verdict_of(enum proxy_error_type t)
{
    switch (t) {
    case PROXY_ERR_DNS_ERROR:
    case PROXY_ERR_DNS_TIMEOUT:
        return CHECK_DNS;
    case PROXY_ERR_CONNECTION_REFUSED:
        return CHECK_ORIGIN_DOWN;
    case PROXY_ERR_CONNECTION_TIMEOUT:
    case PROXY_ERR_DESTINATION_IP_UNROUTABLE:
    case PROXY_ERR_DESTINATION_UNAVAILABLE:
        return CHECK_FIREWALL;
    case PROXY_ERR_PROXY_LOOP_DETECTED:
    case PROXY_ERR_DESTINATION_IP_PROHIBITED:
        return CHECK_REFUSED_BY_POLICY;
    case PROXY_ERR_HTTP_RESPONSE_TIMEOUT:
    case PROXY_ERR_CONNECTION_READ_TIMEOUT:
        return CHECK_SLOW;
    default:
        return CHECK_INVALID;
    }
}

static bool
judge_http(struct evidence_origin *e)
{
    const struct httpcheck_result *h = &e->http;
    if (!h->attempted)
        return false;
    if (h->error != PROXY_ERR_NONE)
        return conclude(e, verdict_of(h->error), NULL, "%s: %s (%s)", h->address, h->detail,
                        proxy_error_name(h->error));
    if (e->fw.found && (h->waf[0] != '\0' || h->rate_limited))
        return conclude(e, CHECK_FIREWALL, e->fw.allow, "%s answers HTTP %d to the edge: %s",
                        h->address, h->status, e->fw.likely);
    return false;
}

void
verdict_judge(struct evidence_origin *e)
{
    e->verdict = CHECK_OK;
    e->evidence[0] = e->next[0] = '\0';
    firewall_fingerprint(e);
    if (judge_dns(e) || judge_policy(e) || judge_tcp(e) || judge_tls(e) || judge_http(e))
        return;
    if (e->http.attempted && e->http.finished)
        snprintf(e->evidence, sizeof(e->evidence),
                 "resolves, accepts connections and answers "
                 "(HTTP %d)",
                 e->http.status);
}

enum check_verdict
verdict_overall(const struct evidence_origin *origins, size_t n, bool interrupted,
                const struct evidence_origin **which)
{
    *which = NULL;
    for (size_t i = 0; i < n; i++)
        if (origins[i].started && origins[i].verdict != CHECK_OK) {
            *which = &origins[i];
            return origins[i].verdict;
        }
    return interrupted ? CHECK_INTERRUPTED : CHECK_OK;
}
