/* dnsprobe.c - an A and an AAAA query through a resolver of the probe's own (one server),
 * their responses read record by record; the probe's timer bounds both. */
#include "diag/dnsprobe.h"

#include "dns/answer.h"
#include "dns/resolver.h"
#include "dns/wire.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <strings.h>

struct query {
    struct dnsprobe *p;
    int family_i; /* 0 A, 1 AAAA */
};

struct dnsprobe {
    struct loop *loop;
    struct query queries[2];
    struct dns_resolver *resolver;
    struct dnsprobe_result *out;
    struct loop_timer timer;
    struct loop_defer done;
    uint64_t start_us;
    int outstanding;
    probe_done_cb cb;
    void *arg;
};

static void
add_cname(struct dnsprobe_result *r, const char *name, const char *target, uint32_t ttl)
{
    for (int i = 0; i < r->ncnames; i++)
        if (strcasecmp(r->cnames[i].name, name) == 0)
            return; /* the A and the AAAA response both carry the chain */
    if (r->ncnames == DNSPROBE_MAX_CNAMES)
        return;
    struct dnsprobe_cname *c = &r->cnames[r->ncnames++];
    snprintf(c->name, sizeof(c->name), "%s", name);
    snprintf(c->target, sizeof(c->target), "%s", target);
    c->ttl = ttl;
}

static int
on_record(void *arg, const struct dns_rr *rr, const unsigned char *msg, int len)
{
    struct dnsprobe_result *r = arg;
    char target[256];
    if (rr->section == DNS_SECTION_AUTHORITY && rr->type == T_SOA && rr->rdlen >= 20) {
        const unsigned char *m = rr->rdata + rr->rdlen - 4;
        uint32_t minimum = (uint32_t)m[0] << 24 | (uint32_t)m[1] << 16 | m[2] << 8 | m[3];
        r->neg_ttl = MIN(minimum, rr->ttl);
    }
    if (rr->section != DNS_SECTION_ANSWER)
        return 0;
    if (rr->type == T_CNAME && dns_wire_name(msg, len, rr->rdata, target, sizeof(target)) == 0)
        add_cname(r, rr->name, target, rr->ttl);
    bool a = rr->type == T_A && rr->rdlen == 4, aaaa = rr->type == T_AAAA && rr->rdlen == 16;
    if ((a || aaaa) && r->naddrs < CONFIG_MAX_ADDRS) {
        struct dnsprobe_addr *ad = &r->addrs[r->naddrs++];
        ad->family = a ? AF_INET : AF_INET6;
        ad->ttl = rr->ttl;
        inet_ntop(ad->family, rr->rdata, ad->ip, sizeof(ad->ip));
    }
    return 0;
}

/* Both answers are in (or the time is up): the summary fields. */
static void
summarize(struct dnsprobe_result *r)
{
    char tmp[16];
    r->status = dns_status_from_ares(r->ares_status[0], r->ares_status[1], r->naddrs);
    int i = r->answered[0] ? 0 : 1;
    if (r->answered[i]) {
        /* NXDOMAIN or SERVFAIL on either query is the one to show */
        if (r->rcode[1 - i] > 0 && r->answered[1 - i])
            i = 1 - i;
        snprintf(r->rcode_text, sizeof(r->rcode_text), "%s", dns_wire_rcode_name(r->rcode[i], tmp));
    } else {
        bool timeout = r->ares_status[0] == ARES_ETIMEOUT || r->ares_status[1] == ARES_ETIMEOUT;
        snprintf(r->rcode_text, sizeof(r->rcode_text), "%s", timeout ? "TIMEOUT" : "ERROR");
    }
    if (!r->answered[0] && !r->answered[1] && r->error[0] == '\0')
        snprintf(r->error, sizeof(r->error), "no response from %s: %s", r->server,
                 ares_strerror(r->ares_status[0]));
}

static void
finish(struct dnsprobe *p)
{
    loop_timer_stop(p->loop, &p->timer);
    summarize(p->out);
    loop_defer(p->loop, &p->done);
}

static void
on_answer(void *arg, int status, const unsigned char *abuf, int alen)
{
    struct query *q = arg;
    struct dnsprobe *p = q->p;
    struct dnsprobe_result *r = p->out;
    int i = q->family_i;
    r->ares_status[i] = status;
    r->rcode[i] = dns_wire_rcode(abuf, alen);
    r->answered[i] = r->rcode[i] >= 0;
    r->us = probe_now_us() - p->start_us;
    if (r->answered[i] && dns_wire_walk(abuf, alen, on_record, r) < 0)
        snprintf(r->error, sizeof(r->error), "a malformed response from %s", r->server);
    if (--p->outstanding == 0)
        finish(p);
}

static void
on_timeout(struct loop_timer *t)
{
    struct dnsprobe *p = container_of(t, struct dnsprobe, timer);
    for (int i = 0; i < 2; i++)
        if (!p->out->answered[i] && p->out->ares_status[i] == ARES_SUCCESS)
            p->out->ares_status[i] = ARES_ETIMEOUT;
    p->out->us = probe_now_us() - p->start_us;
    dns_resolver_free(&p->resolver); /* the queries still out are dropped */
    p->outstanding = 0;
    finish(p);
}

static void
on_done(struct loop_defer *d)
{
    struct dnsprobe *p = container_of(d, struct dnsprobe, done);
    p->cb(p->arg);
}

struct dnsprobe *
dnsprobe_start(struct loop *loop, const char *name, const char *server,
               const struct config_resolver *rc, uint64_t timeout_ms, struct dnsprobe_result *out,
               probe_done_cb cb, void *arg)
{
    static const int types[] = {T_A, T_AAAA};
    struct dnsprobe *p = xcalloc(1, sizeof(*p));
    struct config_resolver mine = *rc;
    p->loop = loop;
    p->out = out;
    p->cb = cb;
    p->arg = arg;
    p->start_us = probe_now_us();
    memset(out, 0, sizeof(*out));
    out->rcode[0] = out->rcode[1] = -1;
    snprintf(out->server, sizeof(out->server), "%s", server ? server : "system");
    loop_timer_init(&p->timer, on_timeout);
    loop_defer_init(&p->done, on_done);
    mine.servers = (char *)server;
    mine.timeout = MIN(rc->timeout, timeout_ms);
    p->resolver = dns_resolver_new(loop, &mine, out->error, sizeof(out->error));
    if (p->resolver == NULL) {
        out->ares_status[0] = out->ares_status[1] = ARES_ESERVFAIL;
        finish(p);
        return p;
    }
    p->outstanding = 2;
    loop_timer_set(loop, &p->timer, timeout_ms);
    for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
        p->queries[i] = (struct query){p, (int)i};
        dns_query(p->resolver, name, types[i], on_answer, &p->queries[i]);
    }
    return p;
}

void
dnsprobe_free(struct dnsprobe **pp)
{
    struct dnsprobe *p = *pp;
    if (p == NULL)
        return;
    *pp = NULL;
    loop_timer_stop(p->loop, &p->timer);
    loop_defer_cancel(p->loop, &p->done);
    dns_resolver_free(&p->resolver);
    free(p);
}

/* "10.0.0.5 10.0.0.6" (sorted as answered), "NXDOMAIN", or NULL when it did not answer. */
static const char *
answer_key(const struct dnsprobe_result *r, char *out, size_t len, uint32_t *ttl)
{
    size_t off = 0;
    *ttl = 0;
    if (r->status == DNS_NXDOMAIN || r->status == DNS_NODATA) {
        *ttl = r->neg_ttl;
        return r->status == DNS_NXDOMAIN ? "NXDOMAIN" : "no address";
    }
    if (r->status != DNS_OK)
        return NULL;
    out[0] = '\0';
    for (int family = AF_INET; family != 0; family = family == AF_INET ? AF_INET6 : 0)
        for (int i = 0; i < r->naddrs; i++)
            if (r->addrs[i].family == family && off < len) {
                off +=
                    (size_t)snprintf(out + off, len - off, "%s%s", off ? " " : "", r->addrs[i].ip);
                *ttl = MAX(*ttl, r->addrs[i].ttl);
            }
    return out;
}

bool
dnsprobe_disagree(const struct dnsprobe_result *r, int n, char *detail, size_t len,
                  uint32_t *settle_s)
{
    char first[512], key[512];
    const char *k0 = NULL;
    bool differ = false;
    size_t off = 0;
    *settle_s = 0;
    detail[0] = '\0';
    for (int i = 0; i < n; i++) {
        uint32_t ttl;
        const char *k = answer_key(&r[i], k0 ? key : first, sizeof(key), &ttl);
        if (k == NULL)
            continue;
        if (k0 == NULL)
            k0 = k;
        else if (strcmp(k0, k) != 0)
            differ = true;
        *settle_s = MAX(*settle_s, ttl);
        if (off < len)
            off += (size_t)snprintf(detail + off, len - off, "%s%s says %s (ttl %u s)",
                                    off ? "; " : "", r[i].server, k, ttl);
    }
    if (!differ)
        *settle_s = 0;
    return differ;
}
