/* answer.h - what the A and AAAA answers for one name add up to: c-ares parses each reply,
 * this collects the addresses and their smallest TTL, reads a negative answer's SOA
 * minimum (RFC 2308), and combines the two queries' outcomes into one status. Pure: no
 * I/O, no clock, no logging; resolver.c and the DNS fuzz target drive it. */
#ifndef VERGE_DNS_ANSWER_H
#define VERGE_DNS_ANSWER_H

#include "dns/cache.h"

/* The outcome of the two queries (A and AAAA) for one name, collected as they answer. */
struct dns_collect {
    struct dns_answer answer; /* addresses so far; .status set by dns_collect_finish */
    int status[2];            /* the ares status of the A and the AAAA query */
    uint32_t ttl;             /* smallest TTL of the addresses (UINT32_MAX before any) */
    uint32_t neg_ttl;         /* largest SOA minimum of the negative answers (0 if none) */
};

/* Append one address (AF_INET: 4 bytes, AF_INET6: 16) with its text form, port 0; ignored
 * once a holds CONFIG_MAX_ADDRS. */
void dns_answer_add_addr(struct dns_answer *a, int family, const void *ip);

void dns_collect_init(struct dns_collect *c);

/* One query answered, as a c-ares query callback reports it: type T_A or T_AAAA, its ares
 * status, and the raw reply (abuf may be NULL, alen 0, as on a timeout). Any bytes are
 * safe: a reply that does not parse adds nothing. */
void dns_collect_add(struct dns_collect *c, int type, int status, const unsigned char *abuf,
                     int alen);

/* Both queries answered: sets c->answer.status (addresses win, then the most telling
 * failure) and returns the TTL to cache it for (the addresses' TTL, or the SOA minimum of
 * a negative answer). */
uint32_t dns_collect_finish(struct dns_collect *c);

/* The outcome of an A and an AAAA query (c-ares statuses) as one status, the way the edge
 * judges it: addresses win, then the most telling failure. */
enum dns_status dns_status_from_ares(int a_status, int aaaa_status, int naddrs);

#endif
