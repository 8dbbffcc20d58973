/* ping.c - echo requests on a non-blocking ICMP socket in the caller's loop. */
#include "diag/ping.h"

#include <netinet/icmp6.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <unistd.h>

struct ping {
    struct loop *loop;
    struct sockaddr_storage dst;
    socklen_t dstlen;
    struct ping_result *out;
    struct loop_io io;
    struct loop_timer next, deadline;
    struct loop_defer done;
    bool raw;
    uint16_t id;
    uint64_t sent_us[PING_MAX];
    bool replied[PING_MAX];
    uint64_t interval, timeout;
    probe_done_cb cb;
    void *arg;
};

static uint16_t
checksum(const unsigned char *p, size_t n)
{
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (n & 1)
        sum += (uint32_t)(p[n - 1] << 8);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static void
finish(struct ping *p)
{
    loop_timer_stop(p->loop, &p->next);
    loop_timer_stop(p->loop, &p->deadline);
    loop_defer(p->loop, &p->done);
}

static void
send_echo(struct ping *p)
{
    unsigned char pkt[24] = {0};
    int seq = p->out->sent;
    bool v6 = p->dst.ss_family == AF_INET6;
    pkt[0] = v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO;
    pkt[4] = (unsigned char)(p->id >> 8);
    pkt[5] = (unsigned char)p->id;
    pkt[6] = (unsigned char)(seq >> 8);
    pkt[7] = (unsigned char)seq;
    memcpy(pkt + 8, "verge-check-ping", 16);
    if (!v6) { /* ICMPv6 checksums are the kernel's */
        uint16_t c = checksum(pkt, sizeof(pkt));
        pkt[2] = (unsigned char)(c >> 8);
        pkt[3] = (unsigned char)c;
    }
    p->sent_us[seq] = probe_now_us();
    p->out->sent++;
    if (sendto(p->io.fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&p->dst, p->dstlen) < 0) {
        snprintf(p->out->detail, sizeof(p->out->detail), "sending an echo request failed: %s",
                 strerror(errno));
        p->out->errors++;
    }
    if (p->out->sent < p->out->count)
        loop_timer_set(p->loop, &p->next, p->interval);
    else
        loop_timer_set(p->loop, &p->deadline, p->timeout);
}

static void
on_next(struct loop_timer *t)
{
    send_echo(container_of(t, struct ping, next));
}

static void
on_deadline(struct loop_timer *t)
{
    finish(container_of(t, struct ping, deadline));
}

/* An echo reply in pkt (ICMP header first): count it if it is one of ours. */
static void
take_reply(struct ping *p, const unsigned char *pkt, size_t n)
{
    struct ping_result *r = p->out;
    bool v6 = p->dst.ss_family == AF_INET6;
    if (n < 8 || pkt[0] != (v6 ? ICMP6_ECHO_REPLY : ICMP_ECHOREPLY))
        return;
    unsigned id = (unsigned)pkt[4] << 8 | pkt[5], seq = (unsigned)pkt[6] << 8 | pkt[7];
    if ((p->raw && id != p->id) || seq >= (unsigned)r->sent || p->replied[seq])
        return; /* an unprivileged socket's id is the kernel's, and filtered by it */
    p->replied[seq] = true;
    uint64_t us = probe_now_us() - p->sent_us[seq];
    r->min_us = r->received ? MIN(r->min_us, us) : us;
    r->max_us = MAX(r->max_us, us);
    r->avg_us = (r->avg_us * (uint64_t)r->received + us) / (uint64_t)(r->received + 1);
    r->received++;
    if (r->received + r->errors >= r->count)
        finish(p);
}

static void
on_io(struct loop_io *io, uint32_t events)
{
    struct ping *p = container_of(io, struct ping, io);
    unsigned char buf[1500];
    struct net_icmp e;
    while (net_icmp_read(io->fd, &e) == 1) {
        if (!e.origin_icmp)
            continue;
        if (!p->out->has_icmp)
            p->out->icmp = e;
        p->out->has_icmp = true;
        if (++p->out->errors + p->out->received >= p->out->count)
            finish(p);
    }
    ssize_t n;
    while ((n = recv(io->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
        size_t skip = 0;
        if (p->raw && p->dst.ss_family == AF_INET)
            skip = (size_t)(buf[0] & 0x0f) * 4; /* a raw IPv4 socket sees the IP header */
        if ((size_t)n > skip)
            take_reply(p, buf + skip, (size_t)n - skip);
    }
}

static void
on_done(struct loop_defer *d)
{
    struct ping *p = container_of(d, struct ping, done);
    p->cb(p->arg);
}

/* An ICMP socket: unprivileged if allowed, raw if root; -errno of the last try. */
static int
open_socket(struct ping *p)
{
    int family = p->dst.ss_family;
    int proto = family == AF_INET6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
    int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
    if (fd < 0) {
        fd = socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
        p->raw = fd >= 0;
    }
    if (fd < 0)
        return -errno;
    if (p->raw && family == AF_INET6) {
        struct icmp6_filter f;
        ICMP6_FILTER_SETBLOCKALL(&f);
        ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &f);
        setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof(f));
    }
    net_recverr_enable(fd, family);
    snprintf(p->out->detail, sizeof(p->out->detail), "%s",
             p->raw ? "raw ICMP socket" : "unprivileged ICMP socket");
    return fd;
}

static void
skip(struct ping *p, int err)
{
    char range[64] = "?";
    FILE *f = fopen("/proc/sys/net/ipv4/ping_group_range", "r");
    if (f != NULL) {
        if (fgets(range, sizeof(range), f) != NULL)
            range[strcspn(range, "\n")] = '\0';
        fclose(f);
    }
    p->out->skipped = true;
    snprintf(p->out->detail, sizeof(p->out->detail),
             "skipped: no ICMP socket (%s); this needs root, or group %u within "
             "net.ipv4.ping_group_range (now \"%s\")",
             strerror(err), (unsigned)getgid(), range);
    finish(p);
}

struct ping *
ping_start(struct loop *loop, const struct sockaddr *sa, int count, uint64_t interval_ms,
           uint64_t timeout_ms, struct ping_result *out, probe_done_cb cb, void *arg)
{
    struct ping *p = xcalloc(1, sizeof(*p));
    p->loop = loop;
    p->dstlen =
        sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    memcpy(&p->dst, sa, p->dstlen);
    ((struct sockaddr_in *)&p->dst)->sin_port = 0; /* same offset in sockaddr_in6 */
    p->out = out;
    p->interval = interval_ms;
    p->timeout = timeout_ms;
    p->cb = cb;
    p->arg = arg;
    p->id = (uint16_t)(getpid() ^ (uintptr_t)p);
    memset(out, 0, sizeof(*out));
    net_ip_text(sa, out->address, sizeof(out->address));
    out->count = MAX(1, MIN(count, PING_MAX));
    loop_timer_init(&p->next, on_next);
    loop_timer_init(&p->deadline, on_deadline);
    loop_defer_init(&p->done, on_done);
    int fd = open_socket(p);
    if (fd < 0) {
        skip(p, -fd);
        return p;
    }
    if (loop_io_start(loop, &p->io, fd, EPOLLIN, on_io) < 0) {
        close(fd);
        skip(p, EBADF);
        return p;
    }
    loop_timer_set(loop, &p->next, 0);
    return p;
}

void
ping_free(struct ping **pp)
{
    struct ping *p = *pp;
    if (p == NULL)
        return;
    *pp = NULL;
    loop_timer_stop(p->loop, &p->next);
    loop_timer_stop(p->loop, &p->deadline);
    loop_defer_cancel(p->loop, &p->done);
    if (p->io.registered) {
        loop_io_stop(p->loop, &p->io);
        close(p->io.fd);
    }
    free(p);
}
