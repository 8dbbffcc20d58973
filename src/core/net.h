/* net.h - socket helpers: listeners with SO_REUSEPORT, non-blocking connects, address text.
 * Low layer: returns -errno, never logs. */
#ifndef VERGE_CORE_NET_H
#define VERGE_CORE_NET_H

#include "core/config.h"

/* A non-blocking listening socket on addr (IPv6 sockets are v6-only), with SO_REUSEPORT
 * so each worker has its own. Returns the fd or -errno. */
int net_listen(const struct config_addr *addr, int backlog);

/* Start a non-blocking TCP connect to sa. Returns the fd (connect in progress or done)
 * or -errno (e.g. -ECONNREFUSED for a local refusal detected at once). */
int net_connect(const struct sockaddr *sa, socklen_t salen);

/* net_connect for diagnosis: the socket also queues ICMP errors (IP_RECVERR / IPV6_RECVERR,
 * read with net_icmp_read) and, when ttl > 0, its packets carry that TTL / hop limit (a
 * traceroute probe). Returns the fd or -errno. */
int net_connect_probe(const struct sockaddr *sa, socklen_t salen, int ttl);

/* Ask the kernel to queue ICMP errors on fd (IP_RECVERR / IPV6_RECVERR). 0 or -errno. */
int net_recverr_enable(int fd, int family);
/* Set the TTL (IPv4) or unicast hop limit (IPv6) of fd's packets. 0 or -errno. */
int net_ttl_set(int fd, int family, int ttl);

/* One error from a socket's error queue: an ICMP/ICMPv6 message about a packet we sent
 * (origin_icmp), or a local error. from is the address that sent the ICMP message. */
struct net_icmp {
    bool origin_icmp;
    int family; /* AF_INET: ICMP; AF_INET6: ICMPv6 */
    uint8_t type, code;
    int err; /* the errno the kernel maps it to */
    struct sockaddr_storage from;
    bool has_from;
};
/* Read one queued error of fd (non-blocking). 1 with *out filled, 0 when the queue is
 * empty, -errno on failure. */
int net_icmp_read(int fd, struct net_icmp *out);

/* The pending error of a socket whose connect finished (SO_ERROR): 0 or an errno value. */
int net_socket_error(int fd);

/* "1.2.3.4" / "::1" without port. */
void net_ip_text(const struct sockaddr *sa, char *out, size_t outlen);
/* "1.2.3.4:80" / "[::1]:80". */
void net_addr_text(const struct sockaddr *sa, char *out, size_t outlen);

#endif
