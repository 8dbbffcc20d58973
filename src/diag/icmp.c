/* icmp.c - ICMP (RFC 792, RFC 1812) and ICMPv6 (RFC 4443) error types and codes. */
#include "diag/icmp.h"

enum icmp_kind
icmp_kind_of(const struct net_icmp *e)
{
    if (!e->origin_icmp)
        return ICMP_KIND_NONE;
    if (e->family == AF_INET6) {
        if (e->type == 3)
            return ICMP_KIND_TIME_EXCEEDED;
        if (e->type != 1)
            return ICMP_KIND_OTHER;
        switch (e->code) {
        case 0:
            return ICMP_KIND_NET_UNREACHABLE;
        case 1:
        case 5:
        case 6:
            return ICMP_KIND_ADMIN_PROHIBITED;
        case 3:
            return ICMP_KIND_HOST_UNREACHABLE;
        case 4:
            return ICMP_KIND_PORT_UNREACHABLE;
        default:
            return ICMP_KIND_OTHER;
        }
    }
    if (e->type == 11)
        return ICMP_KIND_TIME_EXCEEDED;
    if (e->type != 3)
        return ICMP_KIND_OTHER;
    switch (e->code) {
    case 0:
    case 6:
    case 11:
        return ICMP_KIND_NET_UNREACHABLE;
    case 1:
    case 7:
    case 12:
        return ICMP_KIND_HOST_UNREACHABLE;
    case 3:
        return ICMP_KIND_PORT_UNREACHABLE;
    case 9:
    case 10:
    case 13:
        return ICMP_KIND_ADMIN_PROHIBITED;
    default:
        return ICMP_KIND_OTHER;
    }
}

const char *
icmp_kind_name(enum icmp_kind k)
{
    static const char *const names[] = {"none",
                                        "time_exceeded",
                                        "port_unreachable",
                                        "admin_prohibited",
                                        "host_unreachable",
                                        "net_unreachable",
                                        "other"};
    return (size_t)k < ARRAY_SIZE(names) ? names[k] : "other";
}

const char *
icmp_kind_words(enum icmp_kind k)
{
    static const char *const w[] = {"error",
                                    "time exceeded",
                                    "port unreachable",
                                    "administratively prohibited",
                                    "host unreachable",
                                    "network unreachable",
                                    "error"};
    return (size_t)k < ARRAY_SIZE(w) ? w[k] : "error";
}

void
icmp_from_text(const struct net_icmp *e, char *out, size_t len)
{
    if (e->has_from)
        net_ip_text((const struct sockaddr *)&e->from, out, len);
    else if (len > 0)
        out[0] = '\0';
}

const char *
icmp_describe(const struct net_icmp *e, char *out, size_t len)
{
    char from[64];
    icmp_from_text(e, from, sizeof(from));
    snprintf(out, len, "%s %s (type %u, code %u)%s%s", e->family == AF_INET6 ? "ICMPv6" : "ICMP",
             icmp_kind_words(icmp_kind_of(e)), e->type, e->code, from[0] ? " from " : "", from);
    return out;
}
