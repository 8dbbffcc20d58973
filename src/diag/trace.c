/* trace.c - one socket per TTL, sent together as a wave; each answer read from that
 * socket's error queue (core/net net_icmp_read) or, for TCP, from the connect result. */
#include "diag/trace.h"

#include <unistd.h>

#define TRACE_NEXT_WAVE 4 /* TTLs per wave after the first */

struct hop_probe {
    struct trace *t;
    struct loop_io io;
    int ttl;
    uint64_t sent_us;
};

struct trace {
    struct loop *loop;
    enum trace_proto proto;
    struct sockaddr_storage dst;
    socklen_t dstlen;
    struct trace_result *out;
    struct hop_probe probes[TRACE_MAX_HOPS];
    int wave_from, wave_to;
    uint64_t timeout;
    struct loop_timer wave_timer;
    struct loop_defer done, next_wave;
    probe_done_cb cb;
    void *arg;
};

static void start_wave(struct trace *t, int from, int to);

static bool
same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
    return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
           ((const struct sockaddr_in *)b)->sin_addr.s_addr;
}

static void
probe_close(struct hop_probe *p)
{
    if (!p->io.registered)
        return;
    loop_io_stop(p->t->loop, &p->io);
    close(p->io.fd);
}

/* An ICMP answer at this TTL: a router on the way, the destination, or a rejection. */
static void
hop_icmp(struct trace *t, struct trace_hop *h, int ttl, const struct net_icmp *e)
{
    enum icmp_kind k = icmp_kind_of(e);
    bool from_dst = e->has_from && same_ip(&e->from, &t->dst);
    h->has_icmp = true;
    h->icmp = *e;
    icmp_from_text(e, h->address, sizeof(h->address));
    if (k == ICMP_KIND_TIME_EXCEEDED) {
        snprintf(h->what, sizeof(h->what), "time exceeded");
        return;
    }
    snprintf(h->what, sizeof(h->what), "%s (type %u, code %u)", icmp_kind_words(k), e->type,
             e->code);
    if (k == ICMP_KIND_PORT_UNREACHABLE && t->proto == TRACE_UDP && from_dst) {
        h->reached = true; /* the expected answer of a closed UDP port */
        return;
    }
    h->reached = from_dst;
    if (!t->out->blocked || ttl < t->out->blocked_ttl)
        t->out->blocked_ttl = ttl;
    t->out->blocked = true;
}

/* The TCP probe's connect ended with err and no ICMP message: the destination answered. */
static void
hop_tcp(struct trace *t, struct trace_hop *h, int err)
{
    net_ip_text((const struct sockaddr *)&t->dst, h->address, sizeof(h->address));
    h->reached = err == 0 || err == ECONNREFUSED;
    snprintf(h->what, sizeof(h->what), "%s",
             err == 0              ? "SYN-ACK (port open)"
             : err == ECONNREFUSED ? "reset (port closed)"
                                   : strerror(err));
}

static bool wave_over(const struct trace *t);

static void
probe_end(struct hop_probe *p)
{
    struct trace *t = p->t;
    struct trace_hop *h = &t->out->hops[p->ttl - 1];
    struct net_icmp e;
    int err = t->proto == TRACE_TCP ? net_socket_error(p->io.fd) : 0;
    h->us = probe_now_us() - p->sent_us;
    if (net_icmp_read(p->io.fd, &e) == 1 && e.origin_icmp)
        hop_icmp(t, h, p->ttl, &e);
    else if (t->proto == TRACE_TCP)
        hop_tcp(t, h, err);
    else { /* a UDP answer from the destination itself */
        net_ip_text((const struct sockaddr *)&t->dst, h->address, sizeof(h->address));
        h->reached = true;
        snprintf(h->what, sizeof(h->what), "UDP answer");
    }
    h->answered = true;
    probe_close(p);
    t->out->last_ttl = MAX(t->out->last_ttl, p->ttl);
    if (h->reached && (!t->out->reached || p->ttl < t->out->reached_ttl)) {
        t->out->reached = true;
        t->out->reached_ttl = p->ttl;
    }
    if (wave_over(t))
        loop_defer(t->loop, &t->next_wave);
}

static void
on_probe(struct loop_io *io, uint32_t events)
{
    probe_end(container_of(io, struct hop_probe, io));
}

/* The wave can end: every probe answered, or every one below the TTL where the
 * destination answered (or a rejection came from) did. */
static bool
wave_over(const struct trace *t)
{
    int end = t->wave_to;
    for (int ttl = t->wave_from; ttl <= t->wave_to; ttl++) {
        const struct trace_hop *h = &t->out->hops[ttl - 1];
        if (h->answered &&
            (h->reached || (h->has_icmp && icmp_kind_of(&h->icmp) != ICMP_KIND_TIME_EXCEEDED))) {
            end = ttl;
            break;
        }
    }
    for (int ttl = t->wave_from; ttl <= end; ttl++)
        if (t->probes[ttl - 1].io.registered)
            return false;
    return true;
}

static void
on_next_wave(struct loop_defer *d)
{
    struct trace *t = container_of(d, struct trace, next_wave);
    struct trace_result *r = t->out;
    loop_timer_stop(t->loop, &t->wave_timer);
    for (int ttl = t->wave_from; ttl <= t->wave_to; ttl++)
        probe_close(&t->probes[ttl - 1]);
    const struct trace_hop *top = &r->hops[t->wave_to - 1];
    bool more = !r->reached && !r->blocked && top->answered && t->wave_to < r->max_hops;
    if (more) {
        start_wave(t, t->wave_to + 1, MIN(t->wave_to + TRACE_NEXT_WAVE, r->max_hops));
        return;
    }
    if (r->reached) /* later TTLs reached it too: the path ends where it first did */
        r->last_ttl = r->reached_ttl;
    r->done = true;
    loop_defer(t->loop, &t->done);
}

static void
on_wave_timeout(struct loop_timer *timer)
{
    struct trace *t = container_of(timer, struct trace, wave_timer);
    loop_defer(t->loop, &t->next_wave);
}

/* One probe with this TTL: 0, or -errno (the hop is recorded as failed to send). */
static int
probe_send(struct trace *t, struct hop_probe *p)
{
    int fd;
    p->sent_us = probe_now_us();
    if (t->proto == TRACE_TCP) {
        fd = net_connect_probe((const struct sockaddr *)&t->dst, t->dstlen, p->ttl);
        if (fd >= 0 && loop_io_start(t->loop, &p->io, fd, EPOLLOUT, on_probe) < 0) {
            close(fd);
            fd = -EBADF;
        }
        return fd < 0 ? fd : 0;
    }
    struct sockaddr_storage to = t->dst;
    ((struct sockaddr_in *)&to)->sin_port = htons((uint16_t)(TRACE_UDP_PORT + p->ttl - 1));
    fd = socket(t->dst.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = net_recverr_enable(fd, t->dst.ss_family);
    if (rc == 0)
        rc = net_ttl_set(fd, t->dst.ss_family, p->ttl);
    if (rc == 0 && (connect(fd, (struct sockaddr *)&to, t->dstlen) < 0 ||
                    send(fd, "verge-check-trace", 17, 0) < 0))
        rc = -errno;
    if (rc == 0 && loop_io_start(t->loop, &p->io, fd, EPOLLIN, on_probe) < 0)
        rc = -EBADF;
    if (rc < 0)
        close(fd);
    return rc;
}

static void
start_wave(struct trace *t, int from, int to)
{
    t->wave_from = from;
    t->wave_to = to;
    t->out->sent_up_to = to;
    for (int ttl = from; ttl <= to; ttl++) {
        struct hop_probe *p = &t->probes[ttl - 1];
        p->t = t;
        p->ttl = ttl;
        int rc = probe_send(t, p);
        if (rc < 0) {
            struct trace_hop *h = &t->out->hops[ttl - 1];
            snprintf(h->what, sizeof(h->what), "not sent: %s", strerror(-rc));
        }
    }
    loop_timer_set(t->loop, &t->wave_timer, t->timeout);
    if (wave_over(t))
        loop_defer(t->loop, &t->next_wave);
}

static void
on_done(struct loop_defer *d)
{
    struct trace *t = container_of(d, struct trace, done);
    t->cb(t->arg);
}

struct trace *
trace_start(struct loop *loop, enum trace_proto proto, const struct sockaddr *dst, int max_hops,
            int first_wave, uint64_t timeout_ms, struct trace_result *out, probe_done_cb cb,
            void *arg)
{
    struct trace *t = xcalloc(1, sizeof(*t));
    t->loop = loop;
    t->proto = proto;
    t->dstlen =
        dst->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    memcpy(&t->dst, dst, t->dstlen);
    t->out = out;
    t->timeout = timeout_ms;
    t->cb = cb;
    t->arg = arg;
    memset(out, 0, sizeof(*out));
    out->proto = proto;
    out->max_hops = MAX(1, MIN(max_hops, TRACE_MAX_HOPS));
    if (proto == TRACE_TCP)
        net_addr_text(dst, out->target, sizeof(out->target));
    else
        net_ip_text(dst, out->target, sizeof(out->target));
    loop_timer_init(&t->wave_timer, on_wave_timeout);
    loop_defer_init(&t->done, on_done);
    loop_defer_init(&t->next_wave, on_next_wave);
    start_wave(t, 1, MAX(1, MIN(first_wave, out->max_hops)));
    return t;
}

void
trace_free(struct trace **tp)
{
    struct trace *t = *tp;
    if (t == NULL)
        return;
    *tp = NULL;
    loop_timer_stop(t->loop, &t->wave_timer);
    loop_defer_cancel(t->loop, &t->done);
    loop_defer_cancel(t->loop, &t->next_wave);
    for (int i = 0; i < TRACE_MAX_HOPS; i++)
        if (t->probes[i].t != NULL)
            probe_close(&t->probes[i]);
    free(t);
}

const char *
trace_summary(const struct trace_result *r, char *out, size_t len)
{
    const struct trace_hop *last = r->last_ttl ? &r->hops[r->last_ttl - 1] : NULL;
    if (r->reached) {
        const struct trace_hop *h = &r->hops[r->reached_ttl - 1];
        snprintf(out, len, "reached %s at hop %d (%s)%s", r->target, r->reached_ttl, h->what,
                 r->blocked ? ", which rejects it" : "");
    } else if (r->blocked) {
        const struct trace_hop *h = &r->hops[r->blocked_ttl - 1];
        snprintf(out, len, "hop %d (%s) rejects it: %s", r->blocked_ttl, h->address, h->what);
    } else if (last != NULL) {
        snprintf(out, len, "stops after hop %d (%s): no answer from hop %d on", r->last_ttl,
                 last->address, r->last_ttl + 1);
    } else {
        snprintf(out, len, "no answer from any hop (%d tried)", r->sent_up_to);
    }
    return out;
}
