/* resolver.c - c-ares in the worker's loop: A and AAAA queries per name, TTLs and SOA
 * minimums read from the answers, outcomes stored in the shared cache and handed to the
 * waiting fetches at the end of the loop iteration. */
#include "dns/resolver.h"

#include "dns/answer.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <pthread.h>

#define DNS_MAX_SOCKETS 16

struct dns_request {
    struct dns_request *next;
    dns_resolve_cb cb; /* NULL once cancelled */
    void *arg;
};

/* One name being resolved: its two queries and who waits for it. */
struct pending {
    struct pending *next;
    struct dns_resolver *r;
    char *name;
    struct config_resolver rc;
    int outstanding; /* queries not answered yet */
    struct dns_collect got;
    struct dns_request *waiters;
    struct loop_defer notify;
};

struct dns_socket {
    struct loop_io io;
    struct dns_resolver *r;
    bool used;
};

struct dns_resolver {
    struct loop *loop;
    ares_channel channel;
    struct loop_timer timer;
    struct dns_socket sockets[DNS_MAX_SOCKETS];
    struct pending *pending;
    char servers[256];
    bool destroying;
};

static pthread_once_t library_once = PTHREAD_ONCE_INIT;

static void
library_init(void)
{
    ares_library_init(ARES_LIB_INIT_ALL);
}

/* ---------------------------------------------------------------- loop integration */

static void
rearm(struct dns_resolver *r)
{
    struct timeval tv, *t = ares_timeout(r->channel, NULL, &tv);
    if (t == NULL)
        loop_timer_stop(r->loop, &r->timer);
    else
        loop_timer_set(r->loop, &r->timer, (uint64_t)t->tv_sec * 1000 + (uint64_t)(t->tv_usec + 999) / 1000);
}

static void
on_socket(struct loop_io *io, uint32_t events)
{
    struct dns_socket *s = container_of(io, struct dns_socket, io);
    struct dns_resolver *r = s->r;
    int fd = io->fd;
    ares_process_fd(r->channel, (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? fd : ARES_SOCKET_BAD,
                    (events & EPOLLOUT) ? fd : ARES_SOCKET_BAD);
    rearm(r);
}

static void
on_timer(struct loop_timer *t)
{
    struct dns_resolver *r = container_of(t, struct dns_resolver, timer);
    ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    rearm(r);
}

/* c-ares tells us which sockets it wants watched, and for what. */
static void
on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns_resolver *r = data;
    struct dns_socket *free_slot = NULL, *s = NULL;
    for (size_t i = 0; i < DNS_MAX_SOCKETS && s == NULL; i++) {
        if (r->sockets[i].used && r->sockets[i].io.fd == fd)
            s = &r->sockets[i];
        else if (!r->sockets[i].used && free_slot == NULL)
            free_slot = &r->sockets[i];
    }
    uint32_t events = (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0);
    if (s != NULL && events == 0) {
        loop_io_stop(r->loop, &s->io);
        s->used = false;
    } else if (s != NULL) {
        loop_io_set(r->loop, &s->io, events);
    } else if (events != 0 && free_slot != NULL) {
        free_slot->r = r;
        free_slot->used = loop_io_start(r->loop, &free_slot->io, fd, events, on_socket) == 0;
    }
}

/* ---------------------------------------------------------------- answers */

static void
describe(struct pending *q)
{
    struct dns_answer *a = &q->got.answer;
    const char *what = a->status == DNS_TIMEOUT ? "no answer (timed out)"
                       : a->status == DNS_NODATA ? "no A or AAAA record"
                       : a->status == DNS_FAILED ? ares_strerror(q->got.status[0])
                                                 : dns_status_name(a->status);
    if (a->status == DNS_OK)
        snprintf(a->detail, sizeof(a->detail), "%.100s resolved to %d addresses", q->name,
                 a->naddrs);
    else
        snprintf(a->detail, sizeof(a->detail), "%.64s: %s%s from %.60s", q->name,
                 a->status == DNS_NXDOMAIN || a->status == DNS_SERVFAIL ||
                         a->status == DNS_REFUSED
                     ? "rcode="
                     : "",
                 what, q->r->servers);
}

static void
on_notify(struct loop_defer *d)
{
    struct pending *q = container_of(d, struct pending, notify);
    struct dns_resolver *r = q->r; /* NULL: the resolver is gone, nobody is told */
    for (struct pending **pp = r ? &r->pending : NULL; pp && *pp != NULL; pp = &(*pp)->next)
        if (*pp == q) {
            *pp = q->next;
            break;
        }
    while (q->waiters != NULL) {
        struct dns_request *w = q->waiters;
        q->waiters = w->next;
        if (w->cb != NULL && r != NULL)
            w->cb(w->arg, &q->got.answer); /* the owner drops its handle here */
        free(w);
    }
    free(q->name);
    free(q);
}

static void
finish(struct pending *q)
{
    uint32_t ttl = dns_collect_finish(&q->got);
    describe(q);
    dns_cache_store(q->name, loop_now(q->r->loop), &q->rc, &q->got.answer, ttl);
    loop_defer(q->r->loop, &q->notify);
}

static void
on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen, int type)
{
    struct pending *q = arg;
    if (q->r->destroying)
        return;
    dns_collect_add(&q->got, type, status, abuf, alen);
    if (--q->outstanding == 0)
        finish(q);
}

static void
on_a(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    on_answer(arg, status, timeouts, abuf, alen, T_A);
}

static void
on_aaaa(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    on_answer(arg, status, timeouts, abuf, alen, T_AAAA);
}

/* ---------------------------------------------------------------- lookups */

/* /etc/hosts answers at once, as a positive answer kept for max_ttl. */
static bool
from_hosts_file(struct dns_resolver *r, const char *name, struct dns_answer *out)
{
    static const int families[] = {AF_INET, AF_INET6};
    memset(out, 0, sizeof(*out));
    for (size_t f = 0; f < ARRAY_SIZE(families); f++) {
        struct hostent *h = NULL;
        if (ares_gethostbyname_file(r->channel, name, families[f], &h) != ARES_SUCCESS)
            continue;
        for (char **p = h->h_addr_list; *p != NULL && out->naddrs < CONFIG_MAX_ADDRS; p++)
            dns_answer_add_addr(out, h->h_addrtype, *p);
        ares_free_hostent(h);
    }
    if (out->naddrs == 0)
        return false;
    out->status = DNS_OK;
    snprintf(out->detail, sizeof(out->detail), "%.100s from /etc/hosts", name);
    return true;
}

static struct pending *
pending_find(struct dns_resolver *r, const char *name)
{
    for (struct pending *q = r->pending; q != NULL; q = q->next)
        if (strcmp(q->name, name) == 0)
            return q;
    return NULL;
}

static struct pending *
pending_start(struct dns_resolver *r, const char *name, const struct config_resolver *rc)
{
    struct pending *q = xcalloc(1, sizeof(*q));
    q->r = r;
    q->name = xstrdup(name);
    q->rc = *rc;
    q->rc.servers = NULL; /* not needed, and not owned */
    dns_collect_init(&q->got);
    q->outstanding = 2;
    loop_defer_init(&q->notify, on_notify);
    q->next = r->pending;
    r->pending = q;
    ares_query(r->channel, name, C_IN, T_A, on_a, q);
    ares_query(r->channel, name, C_IN, T_AAAA, on_aaaa, q);
    rearm(r);
    return q;
}

int
dns_resolve(struct dns_resolver *r, const char *name, const struct config_resolver *rc,
            struct dns_answer *out, dns_resolve_cb cb, void *arg, struct dns_request **req)
{
    *req = NULL;
    if (dns_cache_lookup(name, loop_now(r->loop), rc, out) != DNS_LOOKUP_MISS)
        return 1;
    if (from_hosts_file(r, name, out)) {
        dns_cache_store(name, loop_now(r->loop), rc, out, (uint32_t)(rc->max_ttl / 1000));
        return 1;
    }
    struct pending *q = pending_find(r, name);
    if (q == NULL)
        q = pending_start(r, name, rc);
    struct dns_request *w = xcalloc(1, sizeof(*w));
    w->cb = cb;
    w->arg = arg;
    w->next = q->waiters;
    q->waiters = w;
    *req = w;
    return 0;
}

void
dns_request_cancel(struct dns_request **req)
{
    if (*req != NULL)
        (*req)->cb = NULL;
    *req = NULL;
}

struct raw_query {
    struct dns_resolver *r;
    dns_query_cb cb;
    void *arg;
};

static void
on_raw(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct raw_query *q = arg;
    if (!q->r->destroying)
        q->cb(q->arg, status, abuf, alen);
    free(q);
}

void
dns_query(struct dns_resolver *r, const char *name, int type, dns_query_cb cb, void *arg)
{
    struct raw_query *q = xcalloc(1, sizeof(*q));
    q->r = r;
    q->cb = cb;
    q->arg = arg;
    ares_query(r->channel, name, C_IN, type, on_raw, q);
    rearm(r);
}

/* ---------------------------------------------------------------- setup */

static int
set_servers(struct dns_resolver *r, const struct config_resolver *rc, char *err, size_t errlen)
{
    if (rc->servers == NULL) {
        snprintf(r->servers, sizeof(r->servers), "the resolvers in /etc/resolv.conf");
        return 0;
    }
    int rcode = ares_set_servers_ports_csv(r->channel, rc->servers);
    if (rcode != ARES_SUCCESS) {
        snprintf(err, errlen, "resolver servers \"%s\": %s", rc->servers, ares_strerror(rcode));
        return -1;
    }
    snprintf(r->servers, sizeof(r->servers), "%s", rc->servers);
    return 0;
}

struct dns_resolver *
dns_resolver_new(struct loop *loop, const struct config_resolver *rc, char *err, size_t errlen)
{
    struct ares_options opts = {0};
    struct dns_resolver *r = xcalloc(1, sizeof(*r));
    pthread_once(&library_once, library_init);
    r->loop = loop;
    loop_timer_init(&r->timer, on_timer);
    opts.sock_state_cb = on_sock_state;
    opts.sock_state_cb_data = r;
    opts.timeout = (int)MIN(rc->timeout, (uint64_t)INT32_MAX);
    opts.tries = rc->attempts;
    /* SERVFAIL and REFUSED reach us as such (not as "could not contact DNS servers"), so
     * the owner sees the rcode; timeouts still move on to the next server. */
    opts.flags = ARES_FLAG_NOCHECKRESP;
    int rcode = ares_init_options(&r->channel, &opts,
                                  ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
                                      ARES_OPT_FLAGS);
    if (rcode != ARES_SUCCESS) {
        snprintf(err, errlen, "cannot start the DNS resolver: %s", ares_strerror(rcode));
        free(r);
        return NULL;
    }
    if (set_servers(r, rc, err, errlen) < 0) {
        dns_resolver_free(&r);
        return NULL;
    }
    return r;
}

int
dns_resolver_configure(struct dns_resolver *r, const struct config_resolver *rc, char *err,
                       size_t errlen)
{
    return set_servers(r, rc, err, errlen);
}

void
dns_resolver_free(struct dns_resolver **rp)
{
    struct dns_resolver *r = *rp;
    if (r == NULL)
        return;
    *rp = NULL;
    r->destroying = true;
    ares_destroy(r->channel); /* callbacks see destroying and do nothing */
    loop_timer_stop(r->loop, &r->timer);
    for (size_t i = 0; i < DNS_MAX_SOCKETS; i++)
        if (r->sockets[i].used)
            loop_io_stop(r->loop, &r->sockets[i].io);
    while (r->pending != NULL) {
        struct pending *q = r->pending;
        r->pending = q->next;
        if (q->notify.queued) {
            q->r = NULL; /* on_notify frees it at the end of this loop iteration */
            continue;
        }
        while (q->waiters != NULL) {
            struct dns_request *w = q->waiters;
            q->waiters = w->next;
            free(w);
        }
        free(q->name);
        free(q);
    }
    free(r);
}

const char *
dns_resolver_servers_text(const struct dns_resolver *r)
{
    return r->servers;
}
