/* dnsprobe.h - one resolver asked directly for a name's A and AAAA records (dig's view):
 * rcode, the CNAME chain, each address with its TTL, the negative TTL, the time taken.
 * Past the edge's cache and /etc/hosts, through the edge's own c-ares loop integration
 * (dns/resolver.h dns_query) and message reader (dns/wire.h). */
#ifndef VERGE_DIAG_DNSPROBE_H
#define VERGE_DIAG_DNSPROBE_H

#include "core/config.h"
#include "core/loop.h"
#include "diag/probe.h"
#include "dns/cache.h"

#include <arpa/inet.h>

#define DNSPROBE_MAX_CNAMES 8

struct dnsprobe_cname {
    char name[256], target[256];
    uint32_t ttl;
};

struct dnsprobe_addr {
    char ip[INET6_ADDRSTRLEN];
    int family;
    uint32_t ttl;
};

struct dnsprobe_result {
    char server[80];  /* "127.0.0.1:5353", or "system" (/etc/resolv.conf) */
    bool answered[2]; /* a response arrived to the A / the AAAA query */
    int rcode[2];     /* their rcodes (-1 without a response) */
    int ares_status[2];
    enum dns_status status; /* both judged together as the edge judges them */
    char rcode_text[16];    /* NOERROR, NXDOMAIN, SERVFAIL, REFUSED, TIMEOUT, ERROR */
    uint64_t us;            /* until the slower of the two answers */
    struct dnsprobe_cname cnames[DNSPROBE_MAX_CNAMES];
    int ncnames;
    struct dnsprobe_addr addrs[CONFIG_MAX_ADDRS];
    int naddrs;
    uint32_t neg_ttl; /* SOA minimum of a negative answer, 0 if none */
    char error[128];  /* what went wrong, "" when it answered */
};

struct dnsprobe;

/* Ask server ("IP[:port]", NULL: the resolvers of /etc/resolv.conf) about name, with rc's
 * attempts, every query bounded by timeout_ms. *out is filled as answers come. */
struct dnsprobe *dnsprobe_start(struct loop *loop, const char *name, const char *server,
                                const struct config_resolver *rc, uint64_t timeout_ms,
                                struct dnsprobe_result *out, probe_done_cb cb, void *arg);
void dnsprobe_free(struct dnsprobe **p);

/* Do these resolvers disagree about the addresses (or whether the name exists)? When they
 * do, detail says how, and *settle_s is how long until every cached copy of the answers
 * seen has expired (the largest TTL among them). */
bool dnsprobe_disagree(const struct dnsprobe_result *r, int n, char *detail, size_t len,
                       uint32_t *settle_s);

#endif
