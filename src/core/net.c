/* net.c - listening and connecting sockets. */
#include "core/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/errqueue.h>
#include <netinet/tcp.h>
#include <sys/uio.h>
#include <unistd.h>

int
net_listen(const struct config_addr *addr, int backlog)
{
    int one = 1;
    int fd = socket(addr->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
        goto fail;
    if (addr->sa.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    /* Every accepted socket inherits it (Linux clones the listener's TCP state): one call
     * per listener, not one per connection. A response head can go out ahead of its body
     * (the body is not there yet): without it, Nagle's algorithm and the visitor's delayed
     * ACK would hold the body for 40 ms. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&addr->sa, addr->salen) < 0)
        goto fail;
    if (listen(fd, backlog) < 0)
        goto fail;
    return fd;
fail:;
    int e = errno;
    close(fd);
    return -e;
}

/* ttl < 0: an ordinary connect; ttl >= 0: a probe (ICMP errors queued, ttl if > 0). */
static int
connect_with(const struct sockaddr *sa, socklen_t salen, int ttl)
{
    int one = 1, e;
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (ttl >= 0 && (e = net_recverr_enable(fd, sa->sa_family)) < 0)
        goto fail;
    if (ttl > 0 && (e = net_ttl_set(fd, sa->sa_family, ttl)) < 0)
        goto fail;
    if (connect(fd, sa, salen) < 0 && errno != EINPROGRESS) {
        e = -errno;
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return e;
}

int
net_connect(const struct sockaddr *sa, socklen_t salen)
{
    return connect_with(sa, salen, -1);
}

int
net_connect_probe(const struct sockaddr *sa, socklen_t salen, int ttl)
{
    return connect_with(sa, salen, ttl > 0 ? ttl : 0);
}

int
net_recverr_enable(int fd, int family)
{
    int one = 1;
    int rc = family == AF_INET6 ? setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &one, sizeof(one))
                                : setsockopt(fd, IPPROTO_IP, IP_RECVERR, &one, sizeof(one));
    return rc < 0 ? -errno : 0;
}

int
net_ttl_set(int fd, int family, int ttl)
{
    int rc = family == AF_INET6
                 ? setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof(ttl))
                 : setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl));
    return rc < 0 ? -errno : 0;
}

int
net_icmp_read(int fd, struct net_icmp *out)
{
    char data[512], control[512];
    struct iovec iov = {data, sizeof(data)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                        .msg_controllen = sizeof(control)};
    memset(out, 0, sizeof(*out));
    if (recvmsg(fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
        if (!((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) ||
              (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR)))
            continue;
        const struct sock_extended_err *ee = (const void *)CMSG_DATA(c);
        const struct sockaddr *from = SO_EE_OFFENDER(ee);
        out->origin_icmp = ee->ee_origin == SO_EE_ORIGIN_ICMP ||
                           ee->ee_origin == SO_EE_ORIGIN_ICMP6;
        out->family = ee->ee_origin == SO_EE_ORIGIN_ICMP6 ? AF_INET6 : AF_INET;
        out->type = ee->ee_type;
        out->code = ee->ee_code;
        out->err = (int)ee->ee_errno;
        if (from->sa_family == AF_INET || from->sa_family == AF_INET6) {
            size_t n = from->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                                  : sizeof(struct sockaddr_in6);
            memcpy(&out->from, from, n);
            out->has_from = true;
        }
        return 1;
    }
    return 0;
}

int
net_socket_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return errno;
    return err;
}

void
net_ip_text(const struct sockaddr *sa, char *out, size_t outlen)
{
    if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)outlen);
    else if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)outlen);
    else
        snprintf(out, outlen, "unix");
}

void
net_addr_text(const struct sockaddr *sa, char *out, size_t outlen)
{
    char ip[INET6_ADDRSTRLEN];
    net_ip_text(sa, ip, sizeof(ip));
    if (sa->sa_family == AF_INET6)
        snprintf(out, outlen, "[%s]:%u", ip, ntohs(((const struct sockaddr_in6 *)sa)->sin6_port));
    else if (sa->sa_family == AF_INET)
        snprintf(out, outlen, "%s:%u", ip, ntohs(((const struct sockaddr_in *)sa)->sin_port));
    else
        snprintf(out, outlen, "%s", ip);
}
