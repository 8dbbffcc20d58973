/* report.c - text for people (aligned steps, colour on a terminal) and JSON for programs,
 * from the same evidence. */
#include "diag/report.h"

#include "diag/verdict.h"

#define RED "\033[31m"
#define GREEN "\033[32m"
#define BOLD "\033[1m"
#define RESET "\033[0m"
#define INDENT "           " /* continuation lines under a step */

static const char *const flag_names[DNS_FLAG_COUNT] = {
    "nxdomain", "servfail", "refused",     "timeout",  "no_address",
    "loopback", "private",  "edge_itself", "disagree",
};

void
report_dns_flags(unsigned flags, char *out, size_t len)
{
    size_t off = 0;
    out[0] = '\0';
    for (int i = 0; i < DNS_FLAG_COUNT && off < len; i++)
        if (flags & (1u << i))
            off += (size_t)snprintf(out + off, len - off, "%s%s", off ? ", " : "", flag_names[i]);
}

/* ---------------------------------------------------------------- text: steps */

static void
text_dns_resolver(struct buf *b, const struct dnsprobe_result *r)
{
    bool system = strcmp(r->server, "system") == 0;
    buf_printf(b, "  dns    via %s: %s in %.1f ms%s%s\n",
               system ? "the system's resolvers (/etc/resolv.conf)" : r->server, r->rcode_text, probe_ms(r->us),
               r->error[0] ? ", " : "", r->error);
    for (int i = 0; i < r->ncnames; i++)
        buf_printf(b, INDENT "CNAME %s -> %s (ttl %u s)\n", r->cnames[i].name, r->cnames[i].target,
                   r->cnames[i].ttl);
    for (int i = 0; i < r->naddrs; i++)
        buf_printf(b, INDENT "%s %s (ttl %u s)\n", r->addrs[i].family == AF_INET6 ? "AAAA" : "A",
                   r->addrs[i].ip, r->addrs[i].ttl);
    if (r->status == DNS_NODATA)
        buf_printf(b, INDENT "no A or AAAA record (this negative answer is cached %u s)\n",
                   r->neg_ttl);
    else if (r->status == DNS_NXDOMAIN)
        buf_printf(b, INDENT "the name does not exist (this negative answer is cached %u s)\n",
                   r->neg_ttl);
}

static void
text_dns_warnings(struct buf *b, const struct evidence_origin *e)
{
    if (e->dns_flags & DNS_FLAG_LOOPBACK)
        buf_printf(b,
                   "  dns    warning: %s points at loopback: the origin must run on this "
                   "machine\n",
                   e->origin->host);
    if (e->dns_flags & DNS_FLAG_PRIVATE)
        buf_printf(b,
                   "  dns    warning: %s points into private address space: only reachable "
                   "from inside that network\n",
                   e->origin->host);
    if (e->dns_flags & DNS_FLAG_EDGE_ITSELF)
        buf_printf(b,
                   "  dns    warning: %s points at this machine itself: if the edge "
                   "listens there, it would call itself\n",
                   e->origin->host);
    if (e->dns_flags & DNS_FLAG_DISAGREE)
        buf_printf(b,
                   "  dns    resolvers disagree: %s; a change may still be propagating: "
                   "every cached copy of these answers expires within %u s\n",
                   e->disagree, e->settle_s);
}

static void
text_dns(struct buf *b, const struct evidence_origin *e)
{
    const struct config_origin *o = e->origin;
    if (o->literal) {
        buf_printf(b, "  dns    %s is an address: no lookup\n", o->host);
        return;
    }
    if (!e->dns_done) {
        buf_printf(b, "  dns    %s: not finished\n", o->host);
        return;
    }
    buf_printf(b, "  dns    %s: %s%s, in %llu ms (the edge's own lookup)\n", o->host,
               e->answer.status == DNS_OK ? "" : "FAILED: ", e->answer.detail,
               (unsigned long long)e->dns_ms);
    for (int i = 0; i < e->naddrs; i++)
        buf_printf(b, INDENT "%s\n", e->addrs[i].addr.text);
    for (int i = 0; i < e->nresolvers; i++)
        text_dns_resolver(b, &e->resolvers[i]);
    text_dns_warnings(b, e);
}

static void
text_tcp(struct buf *b, const struct evidence_addr *a, uint64_t timeout)
{
    const struct tcpprobe_result *t = &a->tcp;
    char what[240];
    if (a->policy != PROXY_ERR_NONE) {
        buf_printf(b, "  tcp    %-24s not tried: %s\n", a->addr.text, a->policy_why);
        return;
    }
    if (!a->ran_tcp)
        return;
    const struct tcpprobe_try *first = NULL;
    for (int i = 0; i < t->done && first == NULL; i++)
        if (t->tries[i].outcome == t->outcome)
            first = &t->tries[i];
    if (first == NULL) {
        buf_printf(b, "  tcp    %-24s stopped before an answer\n", a->addr.text);
        return;
    }
    tcpprobe_try_text(first, what, sizeof(what));
    buf_printf(b, "  tcp    %-24s %s, %d/%d answered", a->addr.text, what, t->answered, t->done);
    if (t->answered > 0)
        buf_printf(b, ", min/avg/max %.2f/%.2f/%.2f ms", probe_ms(t->min_us), probe_ms(t->avg_us),
                   probe_ms(t->max_us));
    if (t->silent > 0)
        buf_printf(b, ", %d unanswered after %llu ms", t->silent, (unsigned long long)timeout);
    buf_append_str(b, "\n");
}

static void
text_ping(struct buf *b, const struct evidence_addr *a)
{
    const struct ping_result *p = &a->ping;
    char icmp[160];
    if (!a->ran_ping)
        return;
    if (p->skipped) {
        buf_printf(b, "  ping   %-24s %s\n", p->address, p->detail);
        return;
    }
    buf_printf(b, "  ping   %-24s %d/%d replies", p->address, p->received, p->sent);
    if (p->received > 0)
        buf_printf(b, ", min/avg/max %.2f/%.2f/%.2f ms", probe_ms(p->min_us), probe_ms(p->avg_us),
                   probe_ms(p->max_us));
    if (p->has_icmp)
        buf_printf(b, ", %s", icmp_describe(&p->icmp, icmp, sizeof(icmp)));
    else if (p->received == 0)
        buf_printf(b, " (ICMP echo may be filtered; that alone proves nothing)");
    buf_printf(b, " (%s)\n", p->detail);
}

static void
text_trace(struct buf *b, const struct trace_result *t, bool ran)
{
    char summary[240];
    if (!ran)
        return;
    buf_printf(b, "  trace  %s to %s: %s%s\n", t->proto == TRACE_TCP ? "tcp" : "udp", t->target,
               trace_summary(t, summary, sizeof(summary)), t->done ? "" : " (stopped)");
    int last = t->reached ? t->reached_ttl : MIN(t->last_ttl + 1, t->sent_up_to);
    if (t->blocked && !t->reached)
        last = t->blocked_ttl;
    for (int ttl = 1; ttl <= last; ttl++) {
        const struct trace_hop *h = &t->hops[ttl - 1];
        if (h->answered)
            buf_printf(b, INDENT "%2d  %-20s %8.2f ms  %s\n", ttl, h->address, probe_ms(h->us),
                       h->what);
        else
            buf_printf(b, INDENT "%2d  *%s%s\n", ttl, h->what[0] ? "  " : "", h->what);
    }
}

static void
text_tls(struct buf *b, const struct tls_result *t)
{
    if (!t->attempted)
        return;
    if (!t->handshake_ok) {
        buf_printf(b, "  tls    %s: FAILED: %s\n", t->address, t->error);
        return;
    }
    buf_printf(b, "  tls    %s: %s %s, handshake in %.1f ms%s%s\n", t->address, t->protocol,
               t->cipher, probe_ms(t->handshake_us - t->connect_us), t->sni[0] ? ", SNI " : "",
               t->sni);
    buf_printf(b, INDENT "certificate %s, issued by %s\n", t->subject, t->issuer);
    buf_printf(b, INDENT "chain: %s%s; name: %s; expires %s (%s%d days)\n",
               t->chain_ok ? "valid" : "NOT VALID: ", t->chain_ok ? "" : t->chain_error,
               t->name_ok ? "matches" : "DOES NOT MATCH the host", t->not_after,
               t->days_left < 0 ? "EXPIRED " : "", t->days_left < 0 ? -t->days_left : t->days_left);
}

static const char *
uncacheable(const char *why)
{
    static const struct {
        const char *code, *words;
    } reasons[] = {
        {"method", "only GET responses are stored"},
        {"no-store", "the request or the response says no-store"},
        {"private", "the response is Cache-Control: private"},
        {"authorization", "the request carries Authorization and the response does not allow "
                          "sharing it"},
        {"set-cookie", "the response sets a cookie (Set-Cookie)"},
        {"vary-star", "the response says Vary: *"},
        {"status", "its status is not cacheable without explicit freshness"},
        {"no-freshness", "no freshness information (max-age, Expires) and no validator "
                         "(Last-Modified, ETag)"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(reasons); i++)
        if (strcmp(why, reasons[i].code) == 0)
            return reasons[i].words;
    return why;
}

static void
text_cache(struct buf *b, const struct httpcheck_result *h)
{
    if (!h->storable) {
        buf_printf(b, INDENT "cache: not stored: %s\n", uncacheable(h->cache_why));
        return;
    }
    int64_t fresh = MAX(h->lifetime_s - h->age_s, (int64_t)0);
    if (h->zone_caches)
        buf_printf(b, INDENT "cache: the edge stores it, fresh for %lld s (%s; age %lld s)",
                   (long long)fresh, h->cache_why, (long long)h->age_s);
    else
        buf_printf(b,
                   INDENT "cache: this zone does not cache (cache: false); with cache: true "
                          "the edge would keep it fresh for %lld s (%s; age %lld s)",
                   (long long)fresh, h->cache_why, (long long)h->age_s);
    if (h->stale_if_error_s > 0)
        buf_printf(b, ", then serve it stale up to %lld s while the origin fails",
                   (long long)h->stale_if_error_s);
    buf_append_str(b, "\n");
}

static void
text_http(struct buf *b, const struct evidence_origin *e)
{
    const struct httpcheck_result *h = &e->http;
    if (!h->attempted) {
        buf_printf(b, "  http   not tried: %s\n", e->http_skipped[0] ? e->http_skipped : "stopped");
        return;
    }
    if (!h->finished && !h->head_ok) {
        buf_printf(b, "  http   GET %s: %s\n", h->path, h->detail);
        return;
    }
    if (h->error != PROXY_ERR_NONE)
        buf_printf(b, "  http   GET %s: FAILED, %s: %s (%s) after %llu ms\n", h->path, h->address,
                   h->detail, proxy_error_name(h->error), (unsigned long long)h->total_ms);
    else
        buf_printf(b, "  http   GET %s: %d %s, from %s (Host: %s); the edge accepts it%s\n",
                   h->path, h->status, h->reason, h->address, h->host,
                   h->body_truncated ? " (stopped reading the body after 8 MiB)"
                   : h->complete     ? ""
                                     : " (body not read to its end)");
    buf_printf(b, INDENT "phases (ms, cumulative): dns %llu, connect %llu, ",
               (unsigned long long)e->dns_ms, (unsigned long long)h->connect_ms);
    if (e->tls.attempted)
        buf_printf(b, "tls %llu, ", (unsigned long long)h->tls_ms);
    buf_printf(b, "first byte %llu, header %llu, total %llu; %llu body bytes\n",
               (unsigned long long)h->first_byte_ms, (unsigned long long)h->header_ms,
               (unsigned long long)h->total_ms, (unsigned long long)h->body_bytes);
    if (!h->head_ok)
        return;
    for (int i = 0; i < h->nfields; i++)
        buf_printf(b, INDENT "%s: %s\n", h->fields[i].name, h->fields[i].value);
    text_cache(b, h);
}

/* ---------------------------------------------------------------- text: the whole */

static void
text_verdict(struct buf *b, const struct evidence_origin *o, size_t n, const struct report_info *ri)
{
    bool ok = ri->verdict == CHECK_OK || ri->verdict == CHECK_INTERRUPTED;
    const struct evidence_origin *c = ri->culprit;
    buf_printf(b, "%sverdict: %s", ri->colour ? (ok ? BOLD GREEN : BOLD RED) : "",
               verdict_name(ri->verdict));
    if (c != NULL)
        buf_printf(b, ": %s", c->evidence);
    else if (ri->verdict == CHECK_INTERRUPTED)
        buf_append_str(b, ": stopped (Ctrl-C) before any failure was found");
    else
        buf_printf(b, ": every origin resolves, accepts connections and answers (HTTP %d)",
                   n > 0 ? o[0].http.status : 0);
    if (ri->interrupted && c != NULL)
        buf_append_str(b, " (interrupted: judged on partial evidence)");
    buf_printf(b, "%s\n", ri->colour ? RESET : "");
    if (c != NULL && c->fw.found)
        buf_printf(b, "firewall: %s, at %s\n", c->fw.likely, c->fw.where);
    if (c != NULL)
        buf_printf(b, "next: %s\n", c->next);
}

void
report_text(const struct evidence_origin *origins, size_t n, const struct report_info *ri,
            struct buf *out)
{
    text_verdict(out, origins, n, ri);
    for (size_t i = 0; i < n; i++) {
        const struct evidence_origin *e = &origins[i];
        if (!e->started)
            continue;
        buf_printf(out, "origin %s (zone %s)\n", e->origin->url, e->zone->name);
        text_dns(out, e);
        for (int k = 0; k < e->naddrs; k++)
            text_tcp(out, &e->addrs[k], ri->timeout);
        for (int k = 0; k < e->naddrs; k++)
            text_ping(out, &e->addrs[k]);
        for (int k = 0; k < e->naddrs; k++) {
            text_trace(out, &e->addrs[k].udp_trace, e->addrs[k].ran_udp_trace);
            text_trace(out, &e->addrs[k].tcp_trace, e->addrs[k].ran_tcp_trace);
        }
        text_tls(out, &e->tls);
        text_http(out, e);
    }
}

/* ---------------------------------------------------------------- JSON */

/* A key (NULL inside an array), with the comma the previous member needs. */
static void
jkey(struct buf *b, const char *k)
{
    char last = b->len > b->off ? b->data[b->len - 1] : '{';
    if (last != '{' && last != '[' && last != ':')
        buf_append_str(b, ",");
    if (k != NULL) {
        buf_append_json_string(b, k);
        buf_append_str(b, ":");
    }
}

static void
jstr(struct buf *b, const char *k, const char *v)
{
    jkey(b, k);
    if (v == NULL)
        buf_append_str(b, "null");
    else
        buf_append_json_string(b, v);
}

static void
jint(struct buf *b, const char *k, long long v)
{
    jkey(b, k);
    buf_printf(b, "%lld", v);
}

static void
jbool(struct buf *b, const char *k, bool v)
{
    jkey(b, k);
    buf_append_str(b, v ? "true" : "false");
}

/* Microseconds as milliseconds; null when nothing was measured. */
static void
jms(struct buf *b, const char *k, uint64_t us, bool measured)
{
    jkey(b, k);
    if (measured)
        buf_printf(b, "%.3f", probe_ms(us));
    else
        buf_append_str(b, "null");
}

static void
jopen(struct buf *b, const char *k, char bracket)
{
    jkey(b, k);
    buf_append(b, &bracket, 1);
}

static void
jclose(struct buf *b, char bracket)
{
    buf_append(b, &bracket, 1);
}

static void
jnull(struct buf *b, const char *k)
{
    jkey(b, k);
    buf_append_str(b, "null");
}

static void
json_icmp(struct buf *b, const char *k, const struct net_icmp *m, bool has)
{
    char from[64];
    if (!has) {
        jnull(b, k);
        return;
    }
    icmp_from_text(m, from, sizeof(from));
    jopen(b, k, '{');
    jint(b, "type", m->type);
    jint(b, "code", m->code);
    jstr(b, "kind", icmp_kind_name(icmp_kind_of(m)));
    jstr(b, "from", from[0] ? from : NULL);
    jclose(b, '}');
}

static void
json_resolver(struct buf *b, const struct dnsprobe_result *r)
{
    jopen(b, NULL, '{');
    jstr(b, "server", r->server);
    jstr(b, "rcode", r->rcode_text);
    jstr(b, "status", dns_status_name(r->status));
    jms(b, "ms", r->us, true);
    jopen(b, "cname", '[');
    for (int i = 0; i < r->ncnames; i++) {
        jopen(b, NULL, '{');
        jstr(b, "name", r->cnames[i].name);
        jstr(b, "target", r->cnames[i].target);
        jint(b, "ttl", r->cnames[i].ttl);
        jclose(b, '}');
    }
    jclose(b, ']');
    jopen(b, "addresses", '[');
    for (int i = 0; i < r->naddrs; i++) {
        jopen(b, NULL, '{');
        jstr(b, "address", r->addrs[i].ip);
        jint(b, "family", r->addrs[i].family == AF_INET6 ? 6 : 4);
        jint(b, "ttl", r->addrs[i].ttl);
        jclose(b, '}');
    }
    jclose(b, ']');
    jint(b, "negative_ttl", r->neg_ttl);
    jstr(b, "error", r->error[0] ? r->error : NULL);
    jclose(b, '}');
}

static void
json_dns(struct buf *b, const struct evidence_origin *e)
{
    jopen(b, "dns", '{');
    jstr(b, "name", e->origin->host);
    jstr(b, "status",
         e->origin->literal ? "literal"
         : !e->dns_done     ? "unfinished"
         : e->answer.stale  ? "STALE"
                            : dns_status_name(e->answer.status));
    jstr(b, "detail", e->origin->literal ? "an IP address: no lookup" : e->answer.detail);
    jint(b, "ms", (long long)e->dns_ms);
    jopen(b, "addresses", '[');
    for (int i = 0; i < e->naddrs; i++)
        jstr(b, NULL, e->addrs[i].addr.text);
    jclose(b, ']');
    jopen(b, "resolvers", '[');
    for (int i = 0; i < e->nresolvers; i++)
        json_resolver(b, &e->resolvers[i]);
    jclose(b, ']');
    jopen(b, "flags", '[');
    for (int i = 0; i < DNS_FLAG_COUNT; i++)
        if (e->dns_flags & (1u << i))
            jstr(b, NULL, flag_names[i]);
    jclose(b, ']');
    if (e->dns_flags & DNS_FLAG_DISAGREE) {
        jopen(b, "disagreement", '{');
        jstr(b, "detail", e->disagree);
        jint(b, "settles_in_s", e->settle_s);
        jclose(b, '}');
    } else {
        jnull(b, "disagreement");
    }
    jclose(b, '}');
}

static void
json_tcp(struct buf *b, const struct evidence_addr *a)
{
    const struct tcpprobe_result *t = &a->tcp;
    char what[240] = "";
    jopen(b, NULL, '{');
    jstr(b, "address", a->addr.text);
    if (a->policy != PROXY_ERR_NONE) {
        jstr(b, "result", "refused_by_policy");
        jstr(b, "detail", a->policy_why);
        jint(b, "ms", 0);
        jclose(b, '}');
        return;
    }
    if (t->done > 0)
        tcpprobe_try_text(&t->tries[0], what, sizeof(what));
    jstr(b, "result", tcpprobe_outcome_name(t->outcome));
    jstr(b, "detail", what);
    jint(b, "ms", t->done > 0 ? (long long)(t->tries[0].us / 1000) : 0);
    jstr(b, "local", t->local[0] ? t->local : NULL);
    jbool(b, "this_machine", a->this_machine);
    jint(b, "sent", t->done);
    jint(b, "answered", t->answered);
    jms(b, "min_ms", t->min_us, t->answered > 0);
    jms(b, "avg_ms", t->avg_us, t->answered > 0);
    jms(b, "max_ms", t->max_us, t->answered > 0);
    jopen(b, "attempts", '[');
    for (int i = 0; i < t->done; i++) {
        const struct tcpprobe_try *x = &t->tries[i];
        jopen(b, NULL, '{');
        jstr(b, "result", tcpprobe_outcome_name(x->outcome));
        jms(b, "ms", x->us, true);
        jstr(b, "error", x->outcome == TCPPROBE_OPEN ? NULL : proxy_error_name(x->type));
        json_icmp(b, "icmp", &x->icmp, x->has_icmp);
        jclose(b, '}');
    }
    jclose(b, ']');
    jclose(b, '}');
}

static const char *
ping_outcome(const struct ping_result *p)
{
    if (p->skipped)
        return "skipped";
    if (p->received == p->count)
        return "ok";
    if (p->received > 0)
        return "partial";
    return p->has_icmp ? "unreachable" : "lost";
}

static void
json_ping(struct buf *b, const struct ping_result *p)
{
    jopen(b, NULL, '{');
    jstr(b, "address", p->address);
    jstr(b, "result", ping_outcome(p));
    jint(b, "sent", p->sent);
    jint(b, "received", p->received);
    jms(b, "min_ms", p->min_us, p->received > 0);
    jms(b, "avg_ms", p->avg_us, p->received > 0);
    jms(b, "max_ms", p->max_us, p->received > 0);
    jstr(b, "detail", p->detail);
    json_icmp(b, "icmp", &p->icmp, p->has_icmp);
    jclose(b, '}');
}

static void
json_trace(struct buf *b, const char *k, const struct trace_result *t, bool ran)
{
    char summary[240];
    if (!ran) {
        jnull(b, k);
        return;
    }
    jopen(b, k, '{');
    jstr(b, "target", t->target);
    jbool(b, "reached", t->reached);
    jint(b, "reached_hop", t->reached ? t->reached_ttl : 0);
    jint(b, "last_hop", t->last_ttl);
    jbool(b, "blocked", t->blocked);
    jint(b, "blocked_hop", t->blocked ? t->blocked_ttl : 0);
    jbool(b, "finished", t->done);
    jstr(b, "summary", trace_summary(t, summary, sizeof(summary)));
    jopen(b, "hops", '[');
    int last = t->reached ? t->reached_ttl : MIN(t->last_ttl + 1, t->sent_up_to);
    for (int ttl = 1; ttl <= last; ttl++) {
        const struct trace_hop *h = &t->hops[ttl - 1];
        jopen(b, NULL, '{');
        jint(b, "hop", ttl);
        jstr(b, "address", h->answered ? h->address : NULL);
        jms(b, "ms", h->us, h->answered);
        jstr(b, "what", h->answered ? h->what : "no answer");
        jbool(b, "reached", h->reached);
        json_icmp(b, "icmp", &h->icmp, h->has_icmp);
        jclose(b, '}');
    }
    jclose(b, ']');
    jclose(b, '}');
}

static void
json_tls(struct buf *b, const struct tls_result *t)
{
    if (!t->attempted) {
        jnull(b, "tls");
        return;
    }
    jopen(b, "tls", '{');
    jstr(b, "address", t->address);
    jstr(b, "sni", t->sni[0] ? t->sni : NULL);
    jbool(b, "handshake", t->handshake_ok);
    jstr(b, "error", t->error[0] ? t->error : NULL);
    jbool(b, "reset_after_client_hello", t->reset_after_hello);
    jstr(b, "protocol", t->handshake_ok ? t->protocol : NULL);
    jstr(b, "cipher", t->handshake_ok ? t->cipher : NULL);
    jbool(b, "chain_valid", t->chain_ok);
    jstr(b, "chain_error", t->handshake_ok && !t->chain_ok ? t->chain_error : NULL);
    jbool(b, "name_match", t->name_ok);
    jstr(b, "subject", t->handshake_ok ? t->subject : NULL);
    jstr(b, "issuer", t->handshake_ok ? t->issuer : NULL);
    jstr(b, "not_after", t->handshake_ok ? t->not_after : NULL);
    jint(b, "days_left", t->days_left);
    jms(b, "connect_ms", t->connect_us, t->connected);
    jms(b, "handshake_ms", t->handshake_us, t->handshake_ok);
    jclose(b, '}');
}

static void
json_cache(struct buf *b, const struct httpcheck_result *h)
{
    jopen(b, "cache", '{');
    jbool(b, "zone_caches", h->zone_caches);
    jbool(b, "storable", h->storable);
    jstr(b, "why", h->storable ? h->cache_why : uncacheable(h->cache_why));
    jint(b, "lifetime_s", h->lifetime_s);
    jint(b, "age_s", h->age_s);
    jint(b, "fresh_for_s", h->storable ? MAX(h->lifetime_s - h->age_s, (int64_t)0) : 0);
    jint(b, "stale_if_error_s", h->stale_if_error_s);
    jint(b, "stale_while_revalidate_s", h->stale_while_revalidate_s);
    jclose(b, '}');
}

static void
json_http(struct buf *b, const struct evidence_origin *e)
{
    const struct httpcheck_result *h = &e->http;
    if (!h->attempted) {
        jnull(b, "http");
        return;
    }
    bool failed = h->error != PROXY_ERR_NONE;
    jopen(b, "http", '{');
    jbool(b, "finished", h->finished);
    jstr(b, "path", h->path);
    jstr(b, "host", h->host);
    jstr(b, "address", h->address);
    if (h->head_ok)
        jint(b, "status", h->status);
    else
        jnull(b, "status");
    jstr(b, "reason", h->head_ok ? h->reason : NULL);
    jbool(b, "accepted", !failed && h->head_ok);
    jbool(b, "complete", h->complete);
    jstr(b, "error", failed ? proxy_error_name(h->error) : NULL);
    jstr(b, "detail", failed || !h->finished ? h->detail : NULL);
    jint(b, "ms", (long long)(failed ? h->total_ms : h->header_ms));
    jopen(b, "phases", '{');
    jint(b, "dns", (long long)e->dns_ms);
    jint(b, "connect", (long long)h->connect_ms);
    jint(b, "tls", (long long)h->tls_ms);
    jint(b, "first_byte", (long long)h->first_byte_ms);
    jint(b, "header", (long long)h->header_ms);
    jint(b, "total", (long long)h->total_ms);
    jclose(b, '}');
    jint(b, "body_bytes", (long long)h->body_bytes);
    jopen(b, "fields", '{');
    for (int i = 0; i < h->nfields; i++)
        jstr(b, h->fields[i].name, h->fields[i].value);
    jclose(b, '}');
    if (h->head_ok)
        json_cache(b, h);
    else
        jnull(b, "cache");
    jstr(b, "waf", h->waf[0] ? h->waf : NULL);
    jbool(b, "rate_limited", h->rate_limited);
    jclose(b, '}');
}

static void
json_origin(struct buf *b, const struct evidence_origin *e)
{
    jopen(b, NULL, '{');
    jstr(b, "url", e->origin->url);
    jstr(b, "zone", e->zone->name);
    jstr(b, "verdict", verdict_name(e->verdict));
    jstr(b, "evidence", e->evidence);
    json_dns(b, e);
    jopen(b, "tcp", '[');
    for (int i = 0; i < e->naddrs; i++)
        if (e->addrs[i].ran_tcp || e->addrs[i].policy != PROXY_ERR_NONE)
            json_tcp(b, &e->addrs[i]);
    jclose(b, ']');
    jopen(b, "ping", '[');
    for (int i = 0; i < e->naddrs; i++)
        if (e->addrs[i].ran_ping)
            json_ping(b, &e->addrs[i].ping);
    jclose(b, ']');
    jopen(b, "trace", '[');
    for (int i = 0; i < e->naddrs; i++) {
        const struct evidence_addr *a = &e->addrs[i];
        if (!a->ran_udp_trace && !a->ran_tcp_trace)
            continue;
        jopen(b, NULL, '{');
        jstr(b, "address", a->addr.text);
        json_trace(b, "udp", &a->udp_trace, a->ran_udp_trace);
        json_trace(b, "tcp", &a->tcp_trace, a->ran_tcp_trace);
        jclose(b, '}');
    }
    jclose(b, ']');
    json_tls(b, &e->tls);
    json_http(b, e);
    jclose(b, '}');
}

void
report_json(const struct evidence_origin *origins, size_t n, const struct report_info *ri,
            struct buf *dst)
{
    const struct evidence_origin *c = ri->culprit;
    struct buf doc, *out = &doc; /* its own buffer: commas are placed by what precedes */
    buf_init(&doc, SIZE_MAX);
    jopen(out, NULL, '{');
    jstr(out, "verdict", verdict_name(ri->verdict));
    jint(out, "exit", ri->verdict);
    jstr(out, "evidence", c ? c->evidence : "");
    jstr(out, "next", c ? c->next : "");
    jbool(out, "interrupted", ri->interrupted);
    if (c != NULL && c->fw.found) {
        jopen(out, "firewall", '{');
        jstr(out, "kind", c->fw.kind);
        jstr(out, "where", c->fw.where);
        jstr(out, "likely", c->fw.likely);
        jstr(out, "allow", c->fw.allow);
        jclose(out, '}');
    } else {
        jnull(out, "firewall");
    }
    jopen(out, "origins", '[');
    for (size_t i = 0; i < n; i++)
        if (origins[i].started)
            json_origin(out, &origins[i]);
    jclose(out, ']');
    jclose(out, '}');
    buf_append_str(out, "\n");
    buf_append(dst, buf_head(&doc), buf_used(&doc));
    buf_free(&doc);
}
