/* icmp.h - what an ICMP / ICMPv6 error read from a socket's error queue means, for the
 * probes and the firewall fingerprint: time exceeded (a router on the path), port
 * unreachable, administratively prohibited (a firewall's REJECT), host or network
 * unreachable. */
#ifndef VERGE_DIAG_ICMP_H
#define VERGE_DIAG_ICMP_H

#include "core/net.h"

enum icmp_kind {
    ICMP_KIND_NONE = 0,
    ICMP_KIND_TIME_EXCEEDED,
    ICMP_KIND_PORT_UNREACHABLE,
    ICMP_KIND_ADMIN_PROHIBITED,
    ICMP_KIND_HOST_UNREACHABLE,
    ICMP_KIND_NET_UNREACHABLE,
    ICMP_KIND_OTHER,
};

enum icmp_kind icmp_kind_of(const struct net_icmp *e);

/* "time_exceeded", "port_unreachable", "admin_prohibited", ... (JSON, stable). */
const char *icmp_kind_name(enum icmp_kind k);

/* "port unreachable", "administratively prohibited", ... (for people). */
const char *icmp_kind_words(enum icmp_kind k);

/* "ICMP port unreachable (type 3, code 3) from 198.18.0.9" into out; returns out. */
const char *icmp_describe(const struct net_icmp *e, char *out, size_t len);

/* The sender of the ICMP message as text ("198.18.0.9"), "" when unknown. */
void icmp_from_text(const struct net_icmp *e, char *out, size_t len);

#endif
