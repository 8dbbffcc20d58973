/* policy.c - refusing origin addresses that point back at the edge or into private space. */
#include "edge/policy.h"

#include <arpa/inet.h>
#include <ifaddrs.h>

/* An IPv4 address in host order, also from an IPv4-mapped IPv6 address. */
static bool
ipv4_of(const struct sockaddr *sa, uint32_t *ip)
{
    if (sa->sa_family == AF_INET) {
        *ip = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
        return true;
    }
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (sa->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(a6)) {
        memcpy(ip, &a6->s6_addr[12], 4);
        *ip = ntohl(*ip);
        return true;
    }
    return false;
}

static bool
ipv4_private(uint32_t ip)
{
    static const struct {
        uint32_t net, mask;
    } nets[] = {
        {0x00000000, 0xff000000}, /* 0.0.0.0/8 */
        {0x0a000000, 0xff000000}, /* 10/8 */
        {0x64400000, 0xffc00000}, /* 100.64/10 (CGNAT) */
        {0x7f000000, 0xff000000}, /* 127/8 */
        {0xa9fe0000, 0xffff0000}, /* 169.254/16 */
        {0xac100000, 0xfff00000}, /* 172.16/12 */
        {0xc0a80000, 0xffff0000}, /* 192.168/16 */
    };
    for (size_t i = 0; i < ARRAY_SIZE(nets); i++)
        if ((ip & nets[i].mask) == nets[i].net)
            return true;
    return false;
}

bool
policy_addr_is_private(const struct sockaddr *sa)
{
    uint32_t ip;
    if (ipv4_of(sa, &ip))
        return ipv4_private(ip);
    if (sa->sa_family != AF_INET6)
        return false;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LINKLOCAL(a) ||
           (a->s6_addr[0] & 0xfe) == 0xfc; /* fc00::/7 unique local */
}

static uint16_t
port_of(const struct sockaddr *sa)
{
    return ntohs(sa->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)sa)->sin6_port
                                           : ((const struct sockaddr_in *)sa)->sin_port);
}

static bool
same_ip(const struct sockaddr *a, const struct sockaddr *b)
{
    uint32_t x, y;
    if (ipv4_of(a, &x) && ipv4_of(b, &y))
        return x == y;
    if (a->sa_family != AF_INET6 || b->sa_family != AF_INET6)
        return false;
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
}

static bool
is_unspecified(const struct sockaddr *sa)
{
    uint32_t ip;
    if (ipv4_of(sa, &ip))
        return ip == 0;
    return sa->sa_family == AF_INET6 &&
           IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

bool
policy_addr_is_loopback(const struct sockaddr *sa)
{
    uint32_t ip;
    return (ipv4_of(sa, &ip) && (ip >> 24) == 127) ||
           (sa->sa_family == AF_INET6 &&
            IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr));
}

bool
policy_addr_is_local(const struct sockaddr *sa)
{
    if (policy_addr_is_loopback(sa))
        return true;
    struct ifaddrs *ifs, *i;
    bool found = false;
    if (getifaddrs(&ifs) != 0)
        return false;
    for (i = ifs; i != NULL && !found; i = i->ifa_next)
        found = i->ifa_addr != NULL && same_ip(i->ifa_addr, sa);
    freeifaddrs(ifs);
    return found;
}

/* Would connecting to sa reach the listener bound to l? */
static bool
reaches(const struct config_addr *l, const struct sockaddr *sa)
{
    const struct sockaddr *ls = (const struct sockaddr *)&l->sa;
    if (port_of(ls) != port_of(sa))
        return false;
    if (same_ip(ls, sa))
        return true;
    return is_unspecified(ls) && policy_addr_is_local(sa);
}

enum proxy_error_type
policy_check_addr(const struct config *cfg, const struct config_zone *z,
                  const struct sockaddr *sa, char *why, size_t whylen)
{
    for (size_t i = 0; i < cfg->nlistens; i++) {
        if (reaches(&cfg->listens[i], sa)) {
            snprintf(why, whylen, "the origin address is this edge's own listener %s",
                     cfg->listens[i].text);
            return PROXY_ERR_PROXY_LOOP_DETECTED;
        }
    }
    if (cfg->admin_enabled && reaches(&cfg->admin_listen, sa)) {
        snprintf(why, whylen, "the origin address is this edge's admin listener %s",
                 cfg->admin_listen.text);
        return PROXY_ERR_PROXY_LOOP_DETECTED;
    }
    if (!z->allow_private && policy_addr_is_private(sa)) {
        snprintf(why, whylen, "the origin address is loopback, private or link-local and "
                              "zone \"%s\" has allow_private: false", z->name);
        return PROXY_ERR_DESTINATION_IP_PROHIBITED;
    }
    return PROXY_ERR_NONE;
}
