/* fuzz_dns.c - libFuzzer target: two raw DNS replies (the answers to the A and the AAAA
 * query for one name) through what resolver.c does with them: the status c-ares's
 * ares_query derives from the header, Verge's dns_collect (ares_parse_a_reply /
 * ares_parse_aaaa_reply, TTLs, the SOA minimum of a negative answer, one combined status),
 * then the shared DNS cache: store, look up while fresh and after, a failed refresh that
 * falls back to the last good answer.
 *
 * Input: 1 byte flags (bits 0-1 force the A query to time out or be refused, bits 2-3 the
 * same for AAAA), 2 bytes length of the A reply, the A reply, then the AAAA reply. */
#include "dns/answer.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <stdint.h>

static const struct config_resolver rc = {
    .min_ttl = 5000,
    .max_ttl = 3600000,
    .serve_stale = 3600000,
    .timeout = 2000,
    .attempts = 2,
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return ares_library_init(ARES_LIB_INIT_ALL) == ARES_SUCCESS ? 0 : -1;
}

/* The status ares_query hands its callback for a reply (c-ares 1.18 qcallback); a reply
 * shorter than a header never reaches it (read_answers drops it): that query times out. */
static int
query_status(const uint8_t *abuf, size_t alen, unsigned force)
{
    if (force == 1 || alen < HFIXEDSZ)
        return ARES_ETIMEOUT;
    if (force == 2)
        return ARES_ECONNREFUSED;
    unsigned ancount = (unsigned)abuf[6] << 8 | abuf[7];
    switch (abuf[3] & 0x0f) {
    case NOERROR:
        return ancount > 0 ? ARES_SUCCESS : ARES_ENODATA;
    case FORMERR:
        return ARES_EFORMERR;
    case SERVFAIL:
        return ARES_ESERVFAIL;
    case NXDOMAIN:
        return ARES_ENOTFOUND;
    case NOTIMP:
        return ARES_ENOTIMP;
    case REFUSED:
        return ARES_EREFUSED;
    default:
        return ARES_SUCCESS; /* c-ares passes other rcodes on as they are */
    }
}

static void
answer_one(struct dns_collect *c, int type, const uint8_t *abuf, size_t alen, unsigned force)
{
    int status = query_status(abuf, alen, force);
    bool delivered = status != ARES_ETIMEOUT && status != ARES_ECONNREFUSED;
    dns_collect_add(c, type, status, delivered ? abuf : NULL, delivered ? (int)alen : 0);
}

static void
check_answer(const struct dns_answer *a)
{
    if (a->naddrs < 0 || a->naddrs > CONFIG_MAX_ADDRS || (a->status == DNS_OK) != (a->naddrs > 0))
        abort();
    for (int i = 0; i < a->naddrs; i++) {
        int family = a->addrs[i].sa.ss_family;
        if ((family != AF_INET && family != AF_INET6) || a->addrs[i].text[0] == '\0')
            abort();
    }
}

/* The shared cache with this outcome, as resolver.c's finish() and later lookups use it. */
static void
use_cache(struct dns_collect *c, uint32_t ttl)
{
    struct dns_answer out;
    uint64_t now = 1000000;
    bool usable = dns_cache_store("fuzz.test", now, &rc, &c->answer, ttl);
    if (usable != (c->answer.status == DNS_OK))
        abort(); /* nothing good was cached before: no stale answer to fall back on */
    if (dns_cache_lookup("fuzz.test", now, &rc, &out) == DNS_LOOKUP_HIT)
        check_answer(&out);
    now += rc.max_ttl + 1;
    (void)dns_cache_lookup("fuzz.test", now, &rc, &out);
    struct dns_answer failed = {.status = DNS_SERVFAIL};
    if (dns_cache_store("fuzz.test", now, &rc, &failed, 0) != (c->answer.status == DNS_OK))
        abort(); /* a failed refresh serves the last good answer, if there was one */
    if (c->answer.status == DNS_OK && (!failed.stale || failed.naddrs != c->answer.naddrs))
        abort();
    dns_cache_clear();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    if (len < 3)
        return 0;
    unsigned flags = data[0];
    size_t alen = MIN((size_t)data[1] << 8 | data[2], len - 3);
    const uint8_t *a = data + 3, *aaaa = a + alen;
    struct dns_collect c;
    dns_collect_init(&c);
    answer_one(&c, T_A, a, alen, flags & 3);
    answer_one(&c, T_AAAA, aaaa, len - 3 - alen, flags >> 2 & 3);
    uint32_t ttl = dns_collect_finish(&c);
    check_answer(&c.answer);
    use_cache(&c, ttl);
    return 0;
}
