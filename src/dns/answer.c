/* answer.c - addresses, TTLs and the status of one name's A and AAAA answers. */
#include "dns/answer.h"

#include "dns/wire.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>

static uint32_t
get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int
on_soa(void *arg, const struct dns_rr *rr, const unsigned char *msg, int len)
{
    uint32_t *minimum = arg;
    if (rr->section != DNS_SECTION_AUTHORITY || rr->type != T_SOA || rr->rdlen < 20)
        return 0;
    *minimum = MIN(get32(rr->rdata + rr->rdlen - 4), rr->ttl);
    return 1;
}

/* The SOA MINIMUM of a negative answer's authority section (RFC 2308), or 0. */
static uint32_t
soa_minimum(const unsigned char *abuf, int alen)
{
    uint32_t minimum = 0;
    if (abuf == NULL || dns_wire_walk(abuf, alen, on_soa, &minimum) < 0)
        return 0;
    return minimum;
}

void
dns_answer_add_addr(struct dns_answer *a, int family, const void *ip)
{
    if (a->naddrs >= CONFIG_MAX_ADDRS)
        return;
    struct config_addr *out = &a->addrs[a->naddrs++];
    memset(out, 0, sizeof(*out));
    if (family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&out->sa;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, ip, 4);
        out->salen = sizeof(*s4);
        inet_ntop(AF_INET, ip, out->text, sizeof(out->text));
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->sa;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, ip, 16);
        out->salen = sizeof(*s6);
        inet_ntop(AF_INET6, ip, out->text, sizeof(out->text));
    }
}

static void
parse_addresses(struct dns_collect *c, int type, const unsigned char *abuf, int alen)
{
    int n = CONFIG_MAX_ADDRS;
    if (type == T_A) {
        struct ares_addrttl ttls[CONFIG_MAX_ADDRS];
        if (ares_parse_a_reply(abuf, alen, NULL, ttls, &n) != ARES_SUCCESS)
            return;
        for (int i = 0; i < n; i++) {
            dns_answer_add_addr(&c->answer, AF_INET, &ttls[i].ipaddr);
            c->ttl = MIN(c->ttl, (uint32_t)MAX(ttls[i].ttl, 0));
        }
    } else {
        struct ares_addr6ttl ttls[CONFIG_MAX_ADDRS];
        if (ares_parse_aaaa_reply(abuf, alen, NULL, ttls, &n) != ARES_SUCCESS)
            return;
        for (int i = 0; i < n; i++) {
            dns_answer_add_addr(&c->answer, AF_INET6, &ttls[i].ip6addr);
            c->ttl = MIN(c->ttl, (uint32_t)MAX(ttls[i].ttl, 0));
        }
    }
}

void
dns_collect_init(struct dns_collect *c)
{
    memset(c, 0, sizeof(*c));
    c->ttl = UINT32_MAX;
}

void
dns_collect_add(struct dns_collect *c, int type, int status, const unsigned char *abuf, int alen)
{
    c->status[type == T_A ? 0 : 1] = status;
    if (status == ARES_SUCCESS)
        parse_addresses(c, type, abuf, alen);
    else if (status == ARES_ENOTFOUND || status == ARES_ENODATA)
        c->neg_ttl = MAX(c->neg_ttl, soa_minimum(abuf, alen));
}

enum dns_status
dns_status_from_ares(int a_status, int aaaa_status, int naddrs)
{
    static const struct {
        int ares;
        enum dns_status status;
    } order[] = {{ARES_ENOTFOUND, DNS_NXDOMAIN},
                 {ARES_ETIMEOUT, DNS_TIMEOUT},
                 {ARES_ESERVFAIL, DNS_SERVFAIL},
                 {ARES_EREFUSED, DNS_REFUSED},
                 {ARES_ECONNREFUSED, DNS_FAILED}};
    if (naddrs > 0)
        return DNS_OK;
    for (size_t i = 0; i < ARRAY_SIZE(order); i++)
        if (a_status == order[i].ares || aaaa_status == order[i].ares)
            return order[i].status;
    if (a_status == ARES_ENODATA && aaaa_status == ARES_ENODATA)
        return DNS_NODATA;
    return DNS_FAILED;
}

uint32_t
dns_collect_finish(struct dns_collect *c)
{
    c->answer.status = dns_status_from_ares(c->status[0], c->status[1], c->answer.naddrs);
    return c->answer.status == DNS_OK ? c->ttl : c->neg_ttl;
}
