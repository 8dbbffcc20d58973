/* check.c - verge check's orchestration: a worker's loop on the calling thread runs the
 * steps of each origin in order (DNS, then TCP/ping/traceroute to every address at once,
 * then TLS, then HTTP), each step's probes in parallel; then verdict.c judges and
 * report.c writes. Ctrl-C stops the probes and reports what was found. */
#include "diag/check.h"

#include "core/log.h"
#include "diag/report.h"
#include "diag/verdict.h"
#include "dns/resolver.h"
#include "edge/policy.h"

#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <unistd.h>

/* The step whose probes are running (STEP_BEGIN: none yet for the current origin). */
enum check_step { STEP_BEGIN, STEP_DNS, STEP_PROBE, STEP_TLS, STEP_HTTP };

static const char *const step_names[] = {"start", "dns", "reachability", "tls", "http"};

enum ref_kind {
    REF_DNSPROBE,
    REF_TCP,
    REF_PING,
    REF_UDP_TRACE,
    REF_TCP_TRACE,
    REF_TLS,
    REF_HTTP,
    REF_KINDS
};

/* A probe's callback argument: which probe of which check finished. */
struct probe_ref {
    struct check *ck;
    enum ref_kind kind;
    int i;
};

struct check {
    struct worker *w;
    struct config *cfg;
    const struct config_zone *zone;
    const struct check_opts *o;
    struct evidence_origin *origins;
    size_t norigins, cur;
    bool only_one;
    enum check_step step;
    int pending; /* probes of the current step still running */
    struct probe_ref refs[REF_KINDS][CONFIG_MAX_ADDRS];
    struct zone_stats *stats; /* the check's own counters: the edge's count visitors only */
    char resolver_names[CHECK_MAX_RESOLVERS][80];
    const char *resolvers[CHECK_MAX_RESOLVERS];
    int nresolvers;
    /* the current origin's running probes */
    struct dns_request *dns;
    struct loop_timer dns_timer; /* bounds the edge's own lookup by the probe timeout */
    uint64_t dns_start;
    struct dnsprobe *dnsp[CHECK_MAX_RESOLVERS];
    struct tcpprobe *tcpp[CONFIG_MAX_ADDRS];
    struct ping *pingp[CONFIG_MAX_ADDRS];
    struct trace *udpp[CONFIG_MAX_ADDRS], *tcptp[CONFIG_MAX_ADDRS];
    struct tls_conn *tlsc;
    struct httpcheck *httpp;
    /* Ctrl-C */
    struct loop_io intr;
    struct loop_defer stop;
    bool interrupted, finished;
};

static void advance(struct check *ck);
static void on_probe(void *arg);

static struct evidence_origin *
current(struct check *ck)
{
    return &ck->origins[ck->cur];
}

static void progress(const struct check *ck, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
progress(const struct check *ck, const char *fmt, ...)
{
    va_list ap;
    char line[512];
    if (!ck->o->progress)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "... %s\n", line);
}

/* One probe of the current step is done; the last one moves the check on. */
static void
step_done(struct check *ck)
{
    if (--ck->pending == 0)
        advance(ck);
}

/* ---------------------------------------------------------------- DNS */

/* Which resolvers to ask directly: the options', else each server of the configuration. */
static void
plan_resolvers(struct check *ck)
{
    const struct check_opts *o = ck->o;
    if (o->nresolvers > 0) {
        for (int i = 0; i < o->nresolvers; i++)
            ck->resolvers[ck->nresolvers++] = o->resolvers[i];
        return;
    }
    const char *csv = ck->cfg->resolver.servers;
    if (csv == NULL) {
        ck->resolvers[ck->nresolvers++] = NULL; /* the system's */
        return;
    }
    while (*csv != '\0' && ck->nresolvers < CHECK_MAX_RESOLVERS) {
        size_t n = strcspn(csv, ",");
        char *name = ck->resolver_names[ck->nresolvers];
        snprintf(name, sizeof(ck->resolver_names[0]), "%.*s", (int)n, csv);
        ck->resolvers[ck->nresolvers++] = name;
        csv += n + (csv[n] == ',');
    }
}

static void
set_port(struct sockaddr_storage *sa, uint16_t port)
{
    if (sa->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)sa)->sin6_port = htons(port);
    else
        ((struct sockaddr_in *)sa)->sin_port = htons(port);
}

static void
take_addresses(struct check *ck, struct evidence_origin *e, const struct dns_answer *ans)
{
    e->naddrs = 0;
    for (int i = 0; i < ans->naddrs && i < CONFIG_MAX_ADDRS; i++) {
        struct evidence_addr *a = &e->addrs[e->naddrs++];
        a->addr = ans->addrs[i];
        set_port(&a->addr.sa, e->origin->port);
        net_addr_text((const struct sockaddr *)&a->addr.sa, a->addr.text, sizeof(a->addr.text));
    }
}

static void
on_edge_dns(void *arg, const struct dns_answer *ans)
{
    struct check *ck = arg;
    struct evidence_origin *e = current(ck);
    ck->dns = NULL;
    loop_timer_stop(ck->w->loop, &ck->dns_timer);
    e->answer = *ans;
    e->dns_done = true;
    e->dns_ms = loop_now(ck->w->loop) - ck->dns_start;
    take_addresses(ck, e, ans);
    progress(ck, "dns %s: %s", e->origin->host, ans->detail);
    step_done(ck);
}

static void
on_dns_timeout(struct loop_timer *t)
{
    struct check *ck = container_of(t, struct check, dns_timer);
    struct dns_answer ans = {.status = DNS_TIMEOUT};
    dns_request_cancel(&ck->dns);
    snprintf(ans.detail, sizeof(ans.detail), "%.64s: no answer within %llu ms from %.60s",
             current(ck)->origin->host, (unsigned long long)ck->o->timeout,
             dns_resolver_servers_text(ck->w->resolver));
    on_edge_dns(ck, &ans);
}

/* What an answered address says about the name: loopback, private, this machine. */
static unsigned
addr_flags(const struct check *ck, const struct sockaddr *sa)
{
    char why[160];
    if (policy_check_addr(ck->cfg, ck->zone, sa, why, sizeof(why)) == PROXY_ERR_PROXY_LOOP_DETECTED)
        return DNS_FLAG_EDGE_ITSELF;
    if (policy_addr_is_loopback(sa))
        return DNS_FLAG_LOOPBACK;
    if (policy_addr_is_local(sa))
        return DNS_FLAG_EDGE_ITSELF;
    return policy_addr_is_private(sa) ? DNS_FLAG_PRIVATE : 0;
}

static unsigned
status_flags(enum dns_status s)
{
    switch (s) {
    case DNS_NXDOMAIN:
        return DNS_FLAG_NXDOMAIN;
    case DNS_SERVFAIL:
        return DNS_FLAG_SERVFAIL;
    case DNS_REFUSED:
        return DNS_FLAG_REFUSED;
    case DNS_TIMEOUT:
        return DNS_FLAG_TIMEOUT;
    case DNS_NODATA:
        return DNS_FLAG_NO_ADDRESS;
    default:
        return 0;
    }
}

static void
analyze_dns(struct check *ck, struct evidence_origin *e)
{
    e->dns_flags = e->origin->literal ? 0 : status_flags(e->answer.status);
    for (int i = 0; i < e->naddrs; i++) {
        e->addrs[i].this_machine = policy_addr_is_local((struct sockaddr *)&e->addrs[i].addr.sa);
        e->dns_flags |= addr_flags(ck, (const struct sockaddr *)&e->addrs[i].addr.sa);
    }
    for (int r = 0; r < e->nresolvers; r++) {
        const struct dnsprobe_result *res = &e->resolvers[r];
        e->dns_flags |= status_flags(res->status);
        for (int i = 0; i < res->naddrs; i++) {
            struct config_addr a;
            if (config_addr_parse(res->addrs[i].ip, e->origin->port, &a) == 0)
                e->dns_flags |= addr_flags(ck, (const struct sockaddr *)&a.sa);
        }
    }
    if (e->nresolvers > 1 && dnsprobe_disagree(e->resolvers, e->nresolvers, e->disagree,
                                               sizeof(e->disagree), &e->settle_s))
        e->dns_flags |= DNS_FLAG_DISAGREE;
}

static void
start_dns(struct check *ck, struct evidence_origin *e)
{
    const struct config_origin *o = e->origin;
    struct dns_answer ans;
    if (o->literal) {
        e->dns_done = true;
        e->naddrs = o->naddrs;
        for (int i = 0; i < o->naddrs; i++)
            e->addrs[i].addr = o->addrs[i];
        return;
    }
    ck->dns_start = loop_now(ck->w->loop);
    ck->pending++;
    if (ck->w->resolver == NULL) {
        ans = (struct dns_answer){.status = DNS_FAILED};
        snprintf(ans.detail, sizeof(ans.detail), "the DNS resolver could not start");
        on_edge_dns(ck, &ans);
    } else if (dns_resolve(ck->w->resolver, o->host, &ck->cfg->resolver, &ans, on_edge_dns, ck,
                           &ck->dns) == 1) {
        on_edge_dns(ck, &ans); /* /etc/hosts, or the cache */
    } else {
        loop_timer_set(ck->w->loop, &ck->dns_timer, ck->o->timeout);
    }
    e->nresolvers = ck->nresolvers;
    for (int i = 0; i < ck->nresolvers; i++) {
        ck->pending++;
        ck->dnsp[i] =
            dnsprobe_start(ck->w->loop, o->host, ck->resolvers[i], &ck->cfg->resolver,
                           ck->o->timeout, &e->resolvers[i], on_probe, &ck->refs[REF_DNSPROBE][i]);
    }
}

/* ---------------------------------------------------------------- reachability */

static void
start_probes(struct check *ck, struct evidence_origin *e)
{
    const struct check_opts *o = ck->o;
    struct loop *loop = ck->w->loop;
    for (int i = 0; i < e->naddrs; i++) {
        struct evidence_addr *a = &e->addrs[i];
        const struct sockaddr *sa = (const struct sockaddr *)&a->addr.sa;
        a->policy = policy_check_addr(ck->cfg, ck->zone, sa, a->policy_why, sizeof(a->policy_why));
        if (a->policy != PROXY_ERR_NONE)
            continue;
        progress(ck, "probing %s", a->addr.text);
        a->ran_tcp = true;
        ck->pending++;
        ck->tcpp[i] = tcpprobe_start(loop, &a->addr, o->count, o->interval, o->timeout, &a->tcp,
                                     on_probe, &ck->refs[REF_TCP][i]);
        if (o->ping) {
            a->ran_ping = true;
            ck->pending++;
            ck->pingp[i] = ping_start(loop, sa, o->count, o->interval, o->timeout, &a->ping,
                                      on_probe, &ck->refs[REF_PING][i]);
        }
        if (o->trace) {
            a->ran_udp_trace = true;
            ck->pending++;
            ck->udpp[i] = trace_start(loop, TRACE_UDP, sa, o->max_hops, o->max_hops, o->timeout,
                                      &a->udp_trace, on_probe, &ck->refs[REF_UDP_TRACE][i]);
        }
    }
}

/* The TCP trace's first wave: as far as the UDP trace got, so few SYNs reach the origin. */
static void
start_tcp_trace(struct check *ck, int i)
{
    struct evidence_addr *a = &current(ck)->addrs[i];
    const struct trace_result *u = &a->udp_trace;
    int wave = u->reached ? u->reached_ttl : u->last_ttl > 0 ? u->last_ttl + 2 : ck->o->max_hops;
    a->ran_tcp_trace = true;
    ck->pending++;
    ck->tcptp[i] =
        trace_start(ck->w->loop, TRACE_TCP, (const struct sockaddr *)&a->addr.sa, ck->o->max_hops,
                    wave, ck->o->timeout, &a->tcp_trace, on_probe, &ck->refs[REF_TCP_TRACE][i]);
}

/* ---------------------------------------------------------------- TLS and HTTP */

static const struct evidence_addr *
first_open(const struct evidence_origin *e)
{
    for (int i = 0; i < e->naddrs; i++)
        if (e->addrs[i].ran_tcp && e->addrs[i].tcp.open > 0)
            return &e->addrs[i];
    return NULL;
}

static void
start_tls(struct check *ck, struct evidence_origin *e)
{
    const struct evidence_addr *a = first_open(e);
    if (!ck->o->tls || a == NULL)
        return;
    e->tls_wanted = true;
    progress(ck, "TLS handshake with %s", a->addr.text);
    ck->pending++;
    ck->tlsc = tls_conn_start(ck->w->loop, &a->addr, e->origin->host, ck->o->ca_file,
                              ck->o->timeout, &e->tls, on_probe, &ck->refs[REF_TLS][0]);
}

static void
start_http(struct check *ck, struct evidence_origin *e)
{
    if (first_open(e) == NULL) {
        snprintf(e->http_skipped, sizeof(e->http_skipped), "%s",
                 e->naddrs == 0 ? "the name has no address" : "no address accepts connections");
        return;
    }
    if (e->tls_wanted && !e->tls.handshake_ok) {
        snprintf(e->http_skipped, sizeof(e->http_skipped), "the TLS handshake failed");
        tls_conn_free(&ck->tlsc);
        return;
    }
    progress(ck, "GET %s", ck->o->path);
    ck->pending++;
    ck->httpp = httpcheck_start(ck->w, ck->cfg, ck->zone, (int)(e->origin - ck->zone->origins),
                                ck->o->path, ck->tlsc, ck->tlsc ? &e->tls : NULL, ck->o->timeout,
                                &e->http, on_probe, &ck->refs[REF_HTTP][0]);
    ck->tlsc = NULL; /* the HTTP check owns it now */
}

/* ---------------------------------------------------------------- probe results */

static void
report_progress(struct check *ck, enum ref_kind kind, int i)
{
    struct evidence_origin *e = current(ck);
    char text[240];
    if (!ck->o->progress)
        return;
    if (kind == REF_DNSPROBE)
        progress(ck, "dns via %s: %s in %.1f ms", e->resolvers[i].server,
                 e->resolvers[i].rcode_text, probe_ms(e->resolvers[i].us));
    else if (kind == REF_TCP && e->addrs[i].tcp.done > 0)
        progress(ck, "tcp %s: %s", e->addrs[i].addr.text,
                 tcpprobe_try_text(&e->addrs[i].tcp.tries[0], text, sizeof(text)));
    else if (kind == REF_PING)
        progress(ck, "ping %s: %d/%d replies", e->addrs[i].ping.address, e->addrs[i].ping.received,
                 e->addrs[i].ping.sent);
    else if (kind == REF_UDP_TRACE || kind == REF_TCP_TRACE)
        progress(
            ck, "trace %s %s: %s", kind == REF_UDP_TRACE ? "udp" : "tcp", e->addrs[i].addr.text,
            trace_summary(kind == REF_UDP_TRACE ? &e->addrs[i].udp_trace : &e->addrs[i].tcp_trace,
                          text, sizeof(text)));
    else if (kind == REF_TLS)
        progress(ck, "tls %s: %s", e->tls.address,
                 e->tls.handshake_ok ? e->tls.protocol : e->tls.error);
    else if (kind == REF_HTTP)
        progress(ck, "http: %d %s", e->http.status, proxy_error_name(e->http.error));
}

/* Every probe's callback (a deferred one, so freeing the probe here is safe). */
static void
on_probe(void *arg)
{
    struct probe_ref *ref = arg;
    struct check *ck = ref->ck;
    int i = ref->i;
    report_progress(ck, ref->kind, i);
    switch (ref->kind) {
    case REF_DNSPROBE:
        dnsprobe_free(&ck->dnsp[i]);
        break;
    case REF_TCP:
        tcpprobe_free(&ck->tcpp[i]);
        break;
    case REF_PING:
        ping_free(&ck->pingp[i]);
        break;
    case REF_UDP_TRACE:
        trace_free(&ck->udpp[i]);
        start_tcp_trace(ck, i);
        break;
    case REF_TCP_TRACE:
        trace_free(&ck->tcptp[i]);
        break;
    case REF_TLS:
        if (!current(ck)->tls.handshake_ok)
            tls_conn_free(&ck->tlsc);
        break;
    case REF_HTTP:
        httpcheck_free(&ck->httpp);
        break;
    default:
        break;
    }
    step_done(ck);
}

/* Stop whatever runs (Ctrl-C): the results keep what was found. */
static void
stop_all(struct check *ck)
{
    dns_request_cancel(&ck->dns);
    loop_timer_stop(ck->w->loop, &ck->dns_timer);
    for (int i = 0; i < CHECK_MAX_RESOLVERS; i++)
        dnsprobe_free(&ck->dnsp[i]);
    for (int i = 0; i < CONFIG_MAX_ADDRS; i++) {
        tcpprobe_free(&ck->tcpp[i]);
        ping_free(&ck->pingp[i]);
        trace_free(&ck->udpp[i]);
        trace_free(&ck->tcptp[i]);
    }
    tls_conn_free(&ck->tlsc);
    httpcheck_free(&ck->httpp);
    ck->pending = 0;
}

/* ---------------------------------------------------------------- steps */

/* The origin is judged; on to the next one, or the check is over. */
static void
end_origin(struct check *ck)
{
    struct evidence_origin *e = current(ck);
    verdict_judge(e);
    e->finished = true;
    if (!ck->only_one && ck->cur + 1 < ck->norigins) {
        ck->cur++;
        ck->step = STEP_BEGIN;
        return;
    }
    ck->finished = true;
    loop_stop(ck->w->loop);
}

/* The current step has nothing running any more: start the next one (and the next, for
 * as long as a step has nothing to run). */
static void
advance(struct check *ck)
{
    while (!ck->finished) {
        struct evidence_origin *e = current(ck);
        ck->pending = 1; /* held while starting, so a probe that ends at once cannot recurse */
        switch (ck->step) {
        case STEP_BEGIN:
            e->started = true;
            progress(ck, "origin %s", e->origin->url);
            ck->step = STEP_DNS;
            start_dns(ck, e);
            break;
        case STEP_DNS:
            analyze_dns(ck, e);
            ck->step = STEP_PROBE;
            start_probes(ck, e);
            break;
        case STEP_PROBE:
            ck->step = STEP_TLS;
            start_tls(ck, e);
            break;
        case STEP_TLS:
            ck->step = STEP_HTTP;
            start_http(ck, e);
            break;
        case STEP_HTTP:
            end_origin(ck);
            break;
        }
        if (--ck->pending > 0)
            return;
    }
}

static void
on_stop(struct loop_defer *d)
{
    struct check *ck = container_of(d, struct check, stop);
    progress(ck, "interrupted during the %s step: reporting what was found", step_names[ck->step]);
    stop_all(ck);
    verdict_judge(current(ck));
    ck->finished = true;
    loop_stop(ck->w->loop);
}

static void
on_interrupt(struct loop_io *io, uint32_t events)
{
    struct check *ck = container_of(io, struct check, intr);
    struct signalfd_siginfo si;
    while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
        ck->interrupted = true;
    if (ck->interrupted && !ck->finished)
        loop_defer(ck->w->loop, &ck->stop); /* after this iteration's I/O: probes may go */
}

/* ---------------------------------------------------------------- running */

void
check_opts_default(struct check_opts *o)
{
    *o = (struct check_opts){.path = "/",
                             .timeout = 5000,
                             .count = 3,
                             .interval = 200,
                             .max_hops = TRACE_MAX_HOPS,
                             .ping = true,
                             .trace = true,
                             .interrupt_fd = -1};
}

static void
check_init(struct check *ck, struct config *cfg, const struct config_zone *zone, int origin_index,
           const struct check_opts *o)
{
    ck->cfg = cfg;
    ck->zone = zone;
    ck->o = o;
    ck->norigins = zone->norigins;
    ck->origins = xcalloc(zone->norigins, sizeof(*ck->origins));
    for (size_t i = 0; i < zone->norigins; i++) {
        ck->origins[i].zone = zone;
        ck->origins[i].origin = &zone->origins[i];
    }
    ck->only_one = origin_index >= 0;
    ck->cur = origin_index >= 0 ? (size_t)origin_index : 0;
    for (int k = 0; k < REF_KINDS; k++)
        for (int i = 0; i < CONFIG_MAX_ADDRS; i++)
            ck->refs[k][i] = (struct probe_ref){ck, (enum ref_kind)k, i};
    plan_resolvers(ck);
    loop_defer_init(&ck->stop, on_stop);
    loop_timer_init(&ck->dns_timer, on_dns_timeout);
    ck->w = worker_new(0, cfg, NULL, 0);
    ck->stats = xcalloc(cfg->nzones, sizeof(*ck->stats));
    for (size_t i = 0; i < cfg->nzones; i++)
        ck->w->zone_stats[i] = &ck->stats[i];
    if (o->interrupt_fd >= 0)
        loop_io_start(ck->w->loop, &ck->intr, o->interrupt_fd, EPOLLIN, on_interrupt);
}

enum check_verdict
check_run(struct config *cfg, const struct config_zone *zone, int origin_index,
          const struct check_opts *o, struct buf *report)
{
    struct check ck = {0};
    check_init(&ck, cfg, zone, origin_index, o);
    advance(&ck);
    if (!ck.finished)
        loop_run(ck.w->loop);
    stop_all(&ck);
    loop_io_stop(ck.w->loop, &ck.intr);
    loop_defer_cancel(ck.w->loop, &ck.stop);
    struct report_info ri = {
        .interrupted = ck.interrupted, .colour = o->colour, .timeout = o->timeout};
    ri.verdict = verdict_overall(ck.origins, ck.norigins, ck.interrupted, &ri.culprit);
    if (o->json)
        report_json(ck.origins, ck.norigins, &ri, report);
    else
        report_text(ck.origins, ck.norigins, &ri, report);
    worker_free(ck.w);
    free(ck.stats);
    free(ck.origins);
    return ri.verdict;
}

/* ---------------------------------------------------------------- command line */

struct cli {
    const char *target, *zone, *file;
    struct check_opts o;
    bool no_colour, force_progress;
};

static int
usage(void)
{
    fprintf(stderr,
            "usage: verge check URL|HOST[:PORT] [options]\n"
            "       verge check --zone NAME -c FILE [options]\n"
            "options: --path /p  --timeout 5s  --resolver IP[:PORT]|system (up to %d)\n"
            "         --count 3  --interval 200ms  --max-hops 30  --no-ping  --no-trace\n"
            "         --ca FILE  --json  --no-colour  --progress\n",
            CHECK_MAX_RESOLVERS);
    return -1;
}

static int
bad_value(const char *opt, const char *want)
{
    fprintf(stderr, "verge check: %s wants %s\n", opt, want);
    return -1;
}

static int
parse_number(const char *opt, const char *v, int lo, int hi, int *out)
{
    uint64_t n;
    char want[48];
    snprintf(want, sizeof(want), "a number from %d to %d", lo, hi);
    if (str_to_u64(v, strlen(v), &n) < 0 || n < (uint64_t)lo || n > (uint64_t)hi)
        return bad_value(opt, want);
    *out = (int)n;
    return 0;
}

static int
parse_resolver(struct cli *c, const char *v)
{
    struct config_addr a;
    if (c->o.nresolvers == CHECK_MAX_RESOLVERS)
        return bad_value("--resolver", "at most 4 resolvers");
    if (strcmp(v, "system") != 0 && config_addr_parse(v, 53, &a) < 0)
        return bad_value("--resolver", "an address (127.0.0.1, 127.0.0.1:5353, [::1]:53) or "
                                       "\"system\"");
    c->o.resolvers[c->o.nresolvers++] = strcmp(v, "system") == 0 ? NULL : v;
    return 0;
}

/* One option that takes a value. */
static int
parse_valued(struct cli *c, const char *a, const char *v)
{
    if (strcmp(a, "--zone") == 0)
        c->zone = v;
    else if (strcmp(a, "-c") == 0)
        c->file = v;
    else if (strcmp(a, "--path") == 0)
        c->o.path = v;
    else if (strcmp(a, "--ca") == 0)
        c->o.ca_file = v;
    else if (strcmp(a, "--resolver") == 0)
        return parse_resolver(c, v);
    else if (strcmp(a, "--count") == 0)
        return parse_number(a, v, 1, TCPPROBE_MAX, &c->o.count);
    else if (strcmp(a, "--max-hops") == 0)
        return parse_number(a, v, 1, TRACE_MAX_HOPS, &c->o.max_hops);
    else if (strcmp(a, "--timeout") == 0 || strcmp(a, "--interval") == 0) {
        uint64_t *d = a[2] == 't' ? &c->o.timeout : &c->o.interval;
        if (config_duration_parse(v, d) < 0 || (*d == 0 && a[2] == 't'))
            return bad_value(a, "a duration such as 5s or 200ms");
    } else {
        fprintf(stderr, "verge check: unknown argument '%s'\n", a);
        return -1;
    }
    return 0;
}

static int
parse_args(int argc, char **argv, struct cli *c)
{
    static const char *const flags[] = {"--json",      "--no-ping",  "--no-trace",
                                        "--no-colour", "--no-color", "--progress"};
    check_opts_default(&c->o);
    c->o.path = NULL; /* the URL's, unless --path says */
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        size_t f = 0;
        while (f < ARRAY_SIZE(flags) && strcmp(a, flags[f]) != 0)
            f++;
        if (f < ARRAY_SIZE(flags)) {
            c->o.json |= f == 0;
            c->o.ping &= f != 1;
            c->o.trace &= f != 2;
            c->no_colour |= f == 3 || f == 4;
            c->force_progress |= f == 5;
        } else if (a[0] != '-' && c->target == NULL) {
            c->target = a;
        } else if (i + 1 >= argc && a[0] == '-') {
            fprintf(stderr, "verge check: %s needs a value\n", a);
            return -1;
        } else if (parse_valued(c, a, argv[++i]) < 0) {
            return -1;
        }
    }
    if ((c->target == NULL) == (c->zone == NULL) || (c->zone != NULL && c->file == NULL))
        return usage();
    return 0;
}

/* Does "host:port" / "[v6]:port" (n bytes) give a port? */
static bool
has_port(const char *hostport, size_t n)
{
    const char *end = hostport[0] == '[' ? memchr(hostport, ']', n) : hostport;
    return end != NULL && memchr(end, ':', n - (size_t)(end - hostport)) != NULL;
}

/* Zero-config for a URL: one zone whose origin is the URL without its path (kept for the
 * request). An https URL is checked with TLS: its origin is the same host and port. */
static struct config *
url_config(struct cli *c, char *err, size_t len)
{
    struct config *cfg = NULL;
    char url[600];
    const char *t = c->target, *scheme = strstr(t, "://");
    bool tls = scheme != NULL && (size_t)(scheme - t) == 5 && strncasecmp(t, "https", 5) == 0;
    const char *rest = scheme ? scheme + 3 : t;
    const char *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    snprintf(url, sizeof(url), "http://%.*s%s", (int)n, rest,
             tls && !has_port(rest, n) ? ":443" : "");
    if (c->o.path == NULL)
        c->o.path = slash ? slash : "/";
    if (config_from_origin(url, "127.0.0.1:1", &cfg, err, len) < 0)
        return NULL;
    cfg->nlistens = 0; /* no listener of ours to loop back to */
    cfg->admin_enabled = false;
    struct config_origin *o = &cfg->zones[0].origins[0];
    if (tls) { /* the report shows the URL as given: https */
        size_t ul = strlen(o->url) + 2;
        char *https = xmalloc(ul);
        snprintf(https, ul, "https%s", o->url + 4);
        free(o->url);
        o->url = https;
    }
    if (tls && o->port == 443) { /* Host without the default port, as for http's 80 */
        size_t hl = strlen(o->host) + 3;
        free(o->hostport);
        o->hostport = xmalloc(hl);
        snprintf(o->hostport, hl, strchr(o->host, ':') ? "[%s]" : "%s", o->host);
    }
    c->o.tls = tls;
    return cfg;
}

/* The configuration to check with, and the zone: the file's, or zero-config for a URL. */
static struct config *
check_config(struct cli *c, const struct config_zone **zone, char *err, size_t len)
{
    struct config *cfg = NULL;
    if (c->file == NULL) {
        cfg = url_config(c, err, len);
        *zone = cfg ? &cfg->zones[0] : NULL;
        return cfg;
    }
    if (config_load(c->file, &cfg, err, len) < 0)
        return NULL;
    for (size_t i = 0; i < cfg->nzones && *zone == NULL; i++)
        if (strcmp(cfg->zones[i].name, c->zone) == 0)
            *zone = &cfg->zones[i];
    if (*zone == NULL) {
        snprintf(err, len, "%s has no zone named \"%s\"", c->file, c->zone);
        config_release(&cfg);
    }
    return cfg;
}

/* Ctrl-C (and SIGTERM) arrive on a signalfd the check's loop watches. */
static int
interrupt_fd(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

int
check_main(int argc, char **argv)
{
    struct cli c = {0};
    const struct config_zone *zone = NULL;
    char err[512];
    if (parse_args(argc, argv, &c) < 0)
        return CHECK_USAGE;
    struct config *cfg = check_config(&c, &zone, err, sizeof(err));
    if (cfg == NULL || zone == NULL) {
        fprintf(stderr, "verge check: %s\n", err);
        return CHECK_USAGE;
    }
    if (c.o.path == NULL)
        c.o.path = "/";
    if (c.o.nresolvers > 0) { /* the edge's own lookup goes to the first one given */
        free(cfg->resolver.servers);
        cfg->resolver.servers = c.o.resolvers[0] ? xstrdup(c.o.resolvers[0]) : NULL;
    }
    free(cfg->error_log);
    cfg->error_log = NULL; /* the report says it all; the fetch path's log lines would not */
    log_configure(cfg, err, sizeof(err));
    c.o.colour = !c.no_colour && !c.o.json && isatty(STDOUT_FILENO);
    c.o.progress = c.force_progress || isatty(STDERR_FILENO);
    c.o.interrupt_fd = interrupt_fd();
    struct buf report;
    buf_init(&report, SIZE_MAX);
    enum check_verdict v = check_run(cfg, zone, -1, &c.o, &report);
    fwrite(buf_head(&report), 1, buf_used(&report), stdout);
    buf_free(&report);
    if (c.o.interrupt_fd >= 0)
        close(c.o.interrupt_fd);
    config_release(&cfg);
    return (int)v;
}
