/* answer.c - addresses, TTLs and the status of one name's A and AAAA answers. */
#include "dns/answer.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>

static unsigned
get16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static uint32_t
get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The SOA MINIMUM of a negative answer's authority section (RFC 2308), or 0. */
static uint32_t
soa_minimum(const unsigned char *abuf, int alen)
{
    if (abuf == NULL || alen < HFIXEDSZ)
        return 0;
    int qd = (int)get16(abuf + 4), an = (int)get16(abuf + 6), ns = (int)get16(abuf + 8);
    const unsigned char *p = abuf + HFIXEDSZ, *end = abuf + alen;
    char *name;
    long len;
    for (int i = 0; i < qd + an + ns; i++) {
        if (ares_expand_name(p, abuf, alen, &name, &len) != ARES_SUCCESS)
            return 0;
        ares_free_string(name);
        p += len;
        if (i < qd) {
            p += QFIXEDSZ;
            continue;
        }
        if (p + RRFIXEDSZ > end)
            return 0;
        int type = (int)get16(p), rdlen = (int)get16(p + 8);
        uint32_t ttl = get32(p + 4);
        const unsigned char *rd = p + RRFIXEDSZ;
        if (rd + rdlen > end)
            return 0;
        if (i >= qd + an && type == T_SOA && rdlen >= 20) {
            uint32_t minimum = get32(rd + rdlen - 4);
            return MIN(minimum, ttl);
        }
        p = rd + rdlen;
    }
    return 0;
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

/* The two queries' outcomes as one status: addresses win, then the most telling failure. */
static enum dns_status
combine(const struct dns_collect *c)
{
    static const struct {
        int ares;
        enum dns_status status;
    } order[] = {{ARES_ENOTFOUND, DNS_NXDOMAIN},
                 {ARES_ETIMEOUT, DNS_TIMEOUT},
                 {ARES_ESERVFAIL, DNS_SERVFAIL},
                 {ARES_EREFUSED, DNS_REFUSED},
                 {ARES_ECONNREFUSED, DNS_FAILED}};
    if (c->answer.naddrs > 0)
        return DNS_OK;
    for (size_t i = 0; i < ARRAY_SIZE(order); i++)
        if (c->status[0] == order[i].ares || c->status[1] == order[i].ares)
            return order[i].status;
    if (c->status[0] == ARES_ENODATA && c->status[1] == ARES_ENODATA)
        return DNS_NODATA;
    return DNS_FAILED;
}

uint32_t
dns_collect_finish(struct dns_collect *c)
{
    c->answer.status = combine(c);
    return c->answer.status == DNS_OK ? c->ttl : c->neg_ttl;
}
