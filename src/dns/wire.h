/* wire.h - reading DNS responses as received (RFC 1035 section 4): the header's rcode and
 * each resource record, for the resolver's negative TTLs and for verge check's view of
 * CNAME chains and TTLs. Pure functions over a buffer. */
#ifndef VERGE_DNS_WIRE_H
#define VERGE_DNS_WIRE_H

#include "core/base.h"

enum dns_section { DNS_SECTION_ANSWER = 1, DNS_SECTION_AUTHORITY, DNS_SECTION_ADDITIONAL };

/* One resource record; name and rdata point into the walker's buffers, valid only during
 * the callback. */
struct dns_rr {
    enum dns_section section;
    const char *name; /* owner name, dotted, without the final dot */
    int type;         /* 1 A, 5 CNAME, 6 SOA, 28 AAAA, ... */
    uint32_t ttl;
    const unsigned char *rdata;
    int rdlen;
};

/* Called for each record; return non-zero to stop the walk. */
typedef int (*dns_rr_cb)(void *arg, const struct dns_rr *rr, const unsigned char *msg, int len);

/* The response code of a message header (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED),
 * or -1 when msg is shorter than a header. */
int dns_wire_rcode(const unsigned char *msg, int len);

/* Name of an rcode ("NOERROR", "NXDOMAIN", ..., "RCODE12"); out needs 16 bytes. */
const char *dns_wire_rcode_name(int rcode, char out[16]);

/* Walk every record of msg in order. 0 when all were read (or cb stopped the walk), -1
 * when the message is malformed. */
int dns_wire_walk(const unsigned char *msg, int len, dns_rr_cb cb, void *arg);

/* The domain name at rdata (a CNAME target) into out, dotted. 0 or -1. */
int dns_wire_name(const unsigned char *msg, int len, const unsigned char *at, char *out,
                  size_t outlen);

#endif
