/* tcpprobe.c - non-blocking connects with IP_RECVERR (core/net), one slot per attempt. */
#include "diag/tcpprobe.h"

#include <unistd.h>

struct slot {
    struct tcpprobe *p;
    struct loop_io io;
    struct loop_timer timer;
    uint64_t start_us;
    bool running;
};

struct tcpprobe {
    struct loop *loop;
    struct config_addr addr;
    struct tcpprobe_result *out;
    struct slot slots[TCPPROBE_MAX];
    int started;
    uint64_t interval, timeout;
    struct loop_timer next; /* starts the next attempt */
    struct loop_defer done;
    probe_done_cb cb;
    void *arg;
};

static void start_try(struct tcpprobe *p);

const char *
tcpprobe_outcome_name(enum tcpprobe_outcome o)
{
    static const char *const names[] = {"stopped",   "open",        "refused",
                                        "no_answer", "unreachable", "error"};
    return (size_t)o < ARRAY_SIZE(names) ? names[o] : "error";
}

const char *
tcpprobe_try_text(const struct tcpprobe_try *t, char *out, size_t len)
{
    char icmp[160];
    switch (t->outcome) {
    case TCPPROBE_OPEN:
        snprintf(out, len, "open");
        break;
    case TCPPROBE_REFUSED:
        snprintf(out, len, "refused (origin down or port closed)");
        break;
    case TCPPROBE_NO_ANSWER:
        snprintf(out, len, "no answer (a firewall is probably dropping the packets)");
        break;
    case TCPPROBE_UNREACHABLE:
        if (t->has_icmp)
            snprintf(out, len, "unreachable (%s)", icmp_describe(&t->icmp, icmp, sizeof(icmp)));
        else
            snprintf(out, len, "unreachable (%s: no route, or no answer to ARP/ND)",
                     strerror(t->err));
        break;
    case TCPPROBE_ERROR:
        snprintf(out, len, "error (%s)", strerror(t->err));
        break;
    default:
        snprintf(out, len, "stopped before an answer");
    }
    return out;
}

/* The outcome of a connect that ended with err (0: connected). */
static void
classify(struct tcpprobe_try *t, int fd, int err)
{
    t->err = err;
    t->type = err == 0 ? PROXY_ERR_NONE : proxy_error_from_errno(PROXY_PHASE_CONNECT, err);
    t->has_icmp = fd >= 0 && err != 0 && net_icmp_read(fd, &t->icmp) == 1 && t->icmp.origin_icmp;
    if (err == 0)
        t->outcome = TCPPROBE_OPEN;
    else if (t->has_icmp)
        t->outcome = TCPPROBE_UNREACHABLE;
    else if (err == ECONNREFUSED)
        t->outcome = TCPPROBE_REFUSED;
    else if (err == ETIMEDOUT)
        t->outcome = TCPPROBE_NO_ANSWER;
    else if (err == EHOSTUNREACH || err == ENETUNREACH || err == EHOSTDOWN || err == ENETDOWN)
        t->outcome = TCPPROBE_UNREACHABLE;
    else
        t->outcome = TCPPROBE_ERROR;
}

static void
tally(struct tcpprobe_result *r, const struct tcpprobe_try *t)
{
    r->done++;
    r->open += t->outcome == TCPPROBE_OPEN;
    r->refused += t->outcome == TCPPROBE_REFUSED;
    r->silent += t->outcome == TCPPROBE_NO_ANSWER;
    r->unreachable += t->outcome == TCPPROBE_UNREACHABLE;
    r->errors += t->outcome == TCPPROBE_ERROR;
    if (r->done == 1 || t->outcome == TCPPROBE_OPEN)
        r->outcome = t->outcome;
    if (t->outcome == TCPPROBE_NO_ANSWER || t->outcome == TCPPROBE_ERROR)
        return;
    r->min_us = r->answered ? MIN(r->min_us, t->us) : t->us;
    r->max_us = MAX(r->max_us, t->us);
    r->avg_us = (r->avg_us * (uint64_t)r->answered + t->us) / (uint64_t)(r->answered + 1);
    r->answered++;
}

static void
slot_end(struct slot *s, int err)
{
    struct tcpprobe *p = s->p;
    struct tcpprobe_try *t = &p->out->tries[s - p->slots];
    t->us = probe_now_us() - s->start_us;
    classify(t, s->io.registered ? s->io.fd : -1, err);
    loop_timer_stop(p->loop, &s->timer);
    if (s->io.registered) {
        loop_io_stop(p->loop, &s->io);
        close(s->io.fd);
    }
    s->running = false;
    tally(p->out, t);
    if (p->out->done == p->out->count)
        loop_defer(p->loop, &p->done);
}

static void
on_io(struct loop_io *io, uint32_t events)
{
    struct slot *s = container_of(io, struct slot, io);
    slot_end(s, net_socket_error(io->fd));
}

static void
on_timeout(struct loop_timer *t)
{
    slot_end(container_of(t, struct slot, timer), ETIMEDOUT);
}

static void
on_next(struct loop_timer *t)
{
    start_try(container_of(t, struct tcpprobe, next));
}

static void
start_try(struct tcpprobe *p)
{
    struct slot *s = &p->slots[p->started++];
    struct sockaddr_storage local;
    socklen_t len = sizeof(local);
    s->running = true;
    s->start_us = probe_now_us();
    int fd = net_connect_probe((const struct sockaddr *)&p->addr.sa, p->addr.salen, 0);
    if (p->started < p->out->count)
        loop_timer_set(p->loop, &p->next, p->interval);
    if (fd < 0) {
        slot_end(s, -fd);
        return;
    }
    if (p->out->local[0] == '\0' && getsockname(fd, (struct sockaddr *)&local, &len) == 0)
        net_ip_text((const struct sockaddr *)&local, p->out->local, sizeof(p->out->local));
    if (loop_io_start(p->loop, &s->io, fd, EPOLLOUT, on_io) < 0) {
        close(fd);
        slot_end(s, EBADF);
        return;
    }
    loop_timer_set(p->loop, &s->timer, p->timeout);
}

static void
on_done(struct loop_defer *d)
{
    struct tcpprobe *p = container_of(d, struct tcpprobe, done);
    p->cb(p->arg);
}

struct tcpprobe *
tcpprobe_start(struct loop *loop, const struct config_addr *a, int count, uint64_t interval_ms,
               uint64_t timeout_ms, struct tcpprobe_result *out, probe_done_cb cb, void *arg)
{
    struct tcpprobe *p = xcalloc(1, sizeof(*p));
    p->loop = loop;
    p->addr = *a;
    p->out = out;
    p->interval = interval_ms;
    p->timeout = timeout_ms;
    p->cb = cb;
    p->arg = arg;
    memset(out, 0, sizeof(*out));
    snprintf(out->address, sizeof(out->address), "%s", a->text);
    out->count = MAX(1, MIN(count, TCPPROBE_MAX));
    loop_timer_init(&p->next, on_next);
    loop_defer_init(&p->done, on_done);
    for (int i = 0; i < TCPPROBE_MAX; i++) {
        p->slots[i].p = p;
        loop_timer_init(&p->slots[i].timer, on_timeout);
    }
    loop_timer_set(loop, &p->next, 0);
    return p;
}

void
tcpprobe_free(struct tcpprobe **pp)
{
    struct tcpprobe *p = *pp;
    if (p == NULL)
        return;
    *pp = NULL;
    loop_timer_stop(p->loop, &p->next);
    loop_defer_cancel(p->loop, &p->done);
    for (int i = 0; i < p->started; i++) {
        struct slot *s = &p->slots[i];
        loop_timer_stop(p->loop, &s->timer);
        if (s->io.registered) {
            loop_io_stop(p->loop, &s->io);
            close(s->io.fd);
        }
    }
    free(p);
}
