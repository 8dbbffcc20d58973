/* check.c - verge check: a worker's loop on the calling thread drives DNS (dns/resolver),
 * one TCP probe per address (core/net, classified by proxy_error), and one HTTP fetch
 * through the edge's own fetch path (edge/upstream); then the verdict. */
#include "diag/check.h"

#include "core/config.h"
#include "core/log.h"
#include "core/net.h"
#include "dns/resolver.h"
#include "edge/policy.h"
#include "edge/upstream.h"
#include "edge/worker.h"

#include <unistd.h>

enum check_step { STEP_DNS, STEP_TCP, STEP_HTTP, STEP_DONE };

struct check {
    struct worker *w;
    struct config *cfg;
    const struct config_zone *zone;
    size_t origin_i;
    const char *path;
    uint64_t timeout;
    enum check_step step;
    struct dns_request *dns;
    struct config_addr addrs[CONFIG_MAX_ADDRS];
    int naddrs, addr_i;
    struct loop_io io;
    struct loop_timer timer;
    uint64_t t0;
    int open, refused, silent, unreachable;
    struct upstream *up;
    int status;
    struct buf report;
    enum check_verdict verdict;
    char evidence[320], next[320];
    bool finished;
    int only_origin; /* >= 0: just this origin */
    struct buf json; /* the same steps for --json: the "origins" array's contents */
    int json_origins, json_tcp;
    uint64_t http_ms;
};

static const struct config_origin *origin(const struct check *ck);

/* ---------------------------------------------------------------- JSON pieces */

static void
json_kv(struct buf *b, const char *key, const char *value, bool comma)
{
    buf_printf(b, "%s\"%s\":", comma ? "," : "", key);
    buf_append_json_string(b, value);
}

static void
json_dns(struct check *ck, const char *status, const char *detail, uint64_t ms)
{
    struct buf *j = &ck->json;
    buf_append_str(j, "\"dns\":{");
    json_kv(j, "name", origin(ck)->host, false);
    json_kv(j, "status", status, true);
    json_kv(j, "detail", detail, true);
    buf_printf(j, ",\"ms\":%llu,\"addresses\":[", (unsigned long long)ms);
    for (int i = 0; i < ck->naddrs; i++) {
        if (i > 0)
            buf_append_str(j, ",");
        buf_append_json_string(j, ck->addrs[i].text);
    }
    buf_append_str(j, "]},\"tcp\":[");
    ck->json_tcp = 0;
}

static void
json_tcp(struct check *ck, const char *address, const char *result, const char *detail,
         uint64_t ms)
{
    struct buf *j = &ck->json;
    buf_append_str(j, ck->json_tcp++ ? ",{" : "{");
    json_kv(j, "address", address, false);
    json_kv(j, "result", result, true);
    json_kv(j, "detail", detail, true);
    buf_printf(j, ",\"ms\":%llu}", (unsigned long long)ms);
}

static void next_step(struct check *ck);

static const struct config_origin *
origin(const struct check *ck)
{
    return &ck->zone->origins[ck->origin_i];
}

static void
progress(const char *fmt, const char *what)
{
    if (isatty(STDERR_FILENO))
        fprintf(stderr, "... %s %s\n", fmt, what);
}

/* The first failure found decides the verdict; later ones only add lines. */
static void
conclude(struct check *ck, enum check_verdict v, const char *evidence, const char *next)
{
    if (ck->verdict != CHECK_OK || v == CHECK_OK)
        return;
    ck->verdict = v;
    snprintf(ck->evidence, sizeof(ck->evidence), "%s", evidence);
    snprintf(ck->next, sizeof(ck->next), "%s", next);
}

static enum check_verdict
verdict_of(enum proxy_error_type t)
{
    switch (t) {
    case PROXY_ERR_DNS_ERROR:
    case PROXY_ERR_DNS_TIMEOUT:
        return CHECK_DNS;
    case PROXY_ERR_CONNECTION_REFUSED:
        return CHECK_ORIGIN_DOWN;
    case PROXY_ERR_CONNECTION_TIMEOUT:
    case PROXY_ERR_DESTINATION_IP_UNROUTABLE:
    case PROXY_ERR_DESTINATION_UNAVAILABLE:
        return CHECK_FIREWALL;
    case PROXY_ERR_PROXY_LOOP_DETECTED:
    case PROXY_ERR_DESTINATION_IP_PROHIBITED:
        return CHECK_REFUSED_BY_POLICY;
    case PROXY_ERR_HTTP_RESPONSE_TIMEOUT:
    case PROXY_ERR_CONNECTION_READ_TIMEOUT:
        return CHECK_SLOW;
    default:
        return CHECK_INVALID;
    }
}

static const char *const next_steps[] = {
    [CHECK_OK] = "nothing to do",
    [CHECK_DNS] = "check the name's A/AAAA records at its DNS provider, and the resolvers the "
                  "edge uses (resolver.servers or /etc/resolv.conf)",
    [CHECK_ORIGIN_DOWN] = "start the origin server, or check that it listens on this address "
                          "and port",
    [CHECK_FIREWALL] = "allow this edge's address to reach the origin's port in the firewalls "
                       "in between (origin host, cloud security group)",
    [CHECK_INVALID] = "look at the origin's response (curl -v) and its error log",
    [CHECK_SLOW] = "look at the origin application's load and logs; raise timeouts.header only "
                   "if slow answers are expected",
    [CHECK_REFUSED_BY_POLICY] = "point the origin URL or its DNS record at the real origin "
                                "server, or allow private addresses (allow_private)",
};

/* ---------------------------------------------------------------- DNS */

static void
take_addresses(struct check *ck, const struct dns_answer *ans)
{
    const struct config_origin *o = origin(ck);
    ck->naddrs = 0;
    for (int i = 0; i < ans->naddrs; i++) {
        struct config_addr *a = &ck->addrs[ck->naddrs++];
        *a = ans->addrs[i];
        if (a->sa.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&a->sa)->sin6_port = htons(o->port);
        else
            ((struct sockaddr_in *)&a->sa)->sin_port = htons(o->port);
        net_addr_text((const struct sockaddr *)&a->sa, a->text, sizeof(a->text));
    }
}

static void
on_dns(void *arg, const struct dns_answer *ans)
{
    struct check *ck = arg;
    uint64_t ms = loop_now(ck->w->loop) - ck->t0;
    ck->dns = NULL;
    take_addresses(ck, ans);
    buf_printf(&ck->report, "  dns    %s: %s%s, in %llu ms\n", origin(ck)->host,
               ans->status == DNS_OK ? "" : "FAILED: ", ans->detail, (unsigned long long)ms);
    for (int i = 0; i < ck->naddrs; i++)
        buf_printf(&ck->report, "         %s\n", ck->addrs[i].text);
    json_dns(ck, ans->stale ? "STALE" : dns_status_name(ans->status), ans->detail, ms);
    if (ck->naddrs == 0) {
        conclude(ck, CHECK_DNS, ans->detail, next_steps[CHECK_DNS]);
        buf_append_str(&ck->json, "],\"http\":null}");
        ck->step = STEP_HTTP; /* nothing to connect to: end this origin */
    }
    next_step(ck);
}

static void
start_dns(struct check *ck)
{
    const struct config_origin *o = origin(ck);
    struct dns_answer ans;
    ck->t0 = loop_now(ck->w->loop);
    if (o->literal) {
        ck->naddrs = o->naddrs;
        memcpy(ck->addrs, o->addrs, sizeof(o->addrs[0]) * (size_t)o->naddrs);
        buf_printf(&ck->report, "  dns    %s is an address: no lookup\n", o->host);
        json_dns(ck, "literal", "an IP address: no lookup", 0);
        next_step(ck);
        return;
    }
    progress("resolving", o->host);
    if (ck->w->resolver == NULL) {
        ans = (struct dns_answer){.status = DNS_FAILED};
        snprintf(ans.detail, sizeof(ans.detail), "the DNS resolver could not start");
        on_dns(ck, &ans);
    } else if (dns_resolve(ck->w->resolver, o->host, &ck->cfg->resolver, &ans, on_dns, ck,
                           &ck->dns) == 1) {
        on_dns(ck, &ans);
    }
}

/* ---------------------------------------------------------------- TCP */

static void
tcp_done(struct check *ck, enum proxy_error_type t, int err)
{
    const struct config_addr *a = &ck->addrs[ck->addr_i];
    uint64_t ms = loop_now(ck->w->loop) - ck->t0;
    loop_timer_stop(ck->w->loop, &ck->timer);
    if (ck->io.registered) {
        loop_io_stop(ck->w->loop, &ck->io);
        close(ck->io.fd);
    }
    const char *what = t == PROXY_ERR_NONE                      ? "open"
                       : t == PROXY_ERR_CONNECTION_REFUSED      ? "refused (origin down or port closed)"
                       : t == PROXY_ERR_CONNECTION_TIMEOUT      ? "no answer (a firewall is probably dropping the packets)"
                       : t == PROXY_ERR_DESTINATION_IP_UNROUTABLE ? "unreachable (ICMP: rejected or no route)"
                                                                : strerror(err);
    ck->open += t == PROXY_ERR_NONE;
    ck->refused += t == PROXY_ERR_CONNECTION_REFUSED;
    ck->silent += t == PROXY_ERR_CONNECTION_TIMEOUT;
    ck->unreachable += t != PROXY_ERR_NONE && t != PROXY_ERR_CONNECTION_REFUSED &&
                       t != PROXY_ERR_CONNECTION_TIMEOUT;
    buf_printf(&ck->report, "  tcp    %-24s %s, after %llu ms\n", a->text, what,
               (unsigned long long)ms);
    json_tcp(ck, a->text,
             t == PROXY_ERR_NONE                    ? "open"
             : t == PROXY_ERR_CONNECTION_REFUSED    ? "refused"
             : t == PROXY_ERR_CONNECTION_TIMEOUT    ? "no_answer"
             : t == PROXY_ERR_DESTINATION_IP_UNROUTABLE ? "unreachable"
                                                    : "error",
             what, ms);
    ck->addr_i++;
    next_step(ck);
}

static void
on_tcp(struct loop_io *io, uint32_t events)
{
    struct check *ck = container_of(io, struct check, io);
    int err = net_socket_error(io->fd);
    tcp_done(ck, err == 0 ? PROXY_ERR_NONE : proxy_error_from_errno(PROXY_PHASE_CONNECT, err), err);
}

static void
on_tcp_timeout(struct loop_timer *t)
{
    struct check *ck = container_of(t, struct check, timer);
    tcp_done(ck, PROXY_ERR_CONNECTION_TIMEOUT, ETIMEDOUT);
}

static void
start_tcp(struct check *ck)
{
    const struct config_addr *a = &ck->addrs[ck->addr_i];
    char why[160];
    enum proxy_error_type refused =
        policy_check_addr(ck->cfg, ck->zone, (const struct sockaddr *)&a->sa, why, sizeof(why));
    if (refused != PROXY_ERR_NONE) {
        buf_printf(&ck->report, "  tcp    %-24s not tried: %s\n", a->text, why);
        json_tcp(ck, a->text, "refused_by_policy", why, 0);
        conclude(ck, CHECK_REFUSED_BY_POLICY, why, next_steps[CHECK_REFUSED_BY_POLICY]);
        ck->addr_i++;
        next_step(ck);
        return;
    }
    progress("connecting to", a->text);
    ck->t0 = loop_now(ck->w->loop);
    int fd = net_connect((const struct sockaddr *)&a->sa, a->salen);
    if (fd < 0) {
        tcp_done(ck, proxy_error_from_errno(PROXY_PHASE_CONNECT, -fd), -fd);
        return;
    }
    loop_io_start(ck->w->loop, &ck->io, fd, EPOLLOUT, on_tcp);
    loop_timer_set(ck->w->loop, &ck->timer, ck->timeout);
}

/* ---------------------------------------------------------------- HTTP */

static void
on_http_head(void *owner, const struct http_msg *resp)
{
    struct check *ck = owner;
    ck->status = resp->status;
    ck->http_ms = loop_now(ck->w->loop) - ck->t0;
    buf_printf(&ck->report, "  http   GET %s: %d %.*s, response header after %llu ms (the edge "
               "accepts it)\n", ck->path, resp->status, (int)resp->reason.len,
               http_str_ptr(resp, resp->reason),
               (unsigned long long)(loop_now(ck->w->loop) - ck->t0));
}

static void
on_http_body(void *owner, const char *data, size_t len)
{
}

static void
http_finished(struct check *ck, const struct proxy_error *e)
{
    struct buf *j = &ck->json;
    buf_append_str(j, "{");
    json_kv(j, "path", ck->path, false);
    if (e == NULL) {
        buf_printf(j, ",\"status\":%d,\"ms\":%llu}}", ck->status,
                   (unsigned long long)ck->http_ms);
    } else {
        json_kv(j, "error", proxy_error_name(e->type), true);
        json_kv(j, "detail", e->detail, true);
        buf_printf(j, ",\"ms\":%llu}}", (unsigned long long)e->elapsed_ms);
    }
    loop_timer_stop(ck->w->loop, &ck->timer);
    ck->up = NULL;
    ck->step = STEP_DONE;
    next_step(ck);
}

static void
on_http_complete(void *owner)
{
    http_finished(owner, NULL);
}

static void
on_http_error(void *owner, const struct proxy_error *e)
{
    struct check *ck = owner;
    char ev[320];
    snprintf(ev, sizeof(ev), "%s: %s (%s)", e->addr, e->detail, proxy_error_name(e->type));
    buf_printf(&ck->report, "  http   GET %s: FAILED, %s after %llu ms\n", ck->path, ev,
               (unsigned long long)e->elapsed_ms);
    enum check_verdict v = verdict_of(e->type);
    conclude(ck, v, ev, next_steps[v]);
    http_finished(ck, e);
}

static void
on_http_drained(void *owner)
{
}

static const struct upstream_ops http_ops = {on_http_head, on_http_body, on_http_complete,
                                             on_http_error, on_http_drained};

static void
on_http_timeout(struct loop_timer *t)
{
    struct check *ck = container_of(t, struct check, timer);
    struct proxy_error e = {0};
    upstream_abort(&ck->up);
    proxy_error_set(&e, PROXY_ERR_HTTP_RESPONSE_TIMEOUT, PROXY_PHASE_HEADER, 0,
                    "", ck->timeout, "no response header within %llu ms",
                    (unsigned long long)ck->timeout);
    on_http_error(ck, &e);
}

static void
start_http(struct check *ck)
{
    struct upstream_request req = {
        .cfg = ck->cfg,
        .zone = ck->zone,
        .stats = ck->w->zone_stats[ck->zone->zone_index],
        .idempotent = true,
        .probe_origin = (int)ck->origin_i,
        .host = ck->zone->origin_host == CONFIG_HOST_FIXED ? ck->zone->origin_host_value : NULL,
    };
    struct buf head;
    buf_init(&head, SIZE_MAX);
    buf_printf(&head, "GET %s HTTP/1.1\r\nUser-Agent: verge-check\r\nAccept: */*\r\n\r\n",
               ck->path);
    progress("requesting", ck->path);
    ck->t0 = loop_now(ck->w->loop);
    ck->status = 0;
    ck->up = upstream_start(ck->w, &req, &head, &http_ops, ck);
    buf_free(&head);
    loop_timer_init(&ck->timer, on_http_timeout);
    loop_timer_set(ck->w->loop, &ck->timer, ck->timeout);
}

/* ---------------------------------------------------------------- steps */

static void
tcp_verdict(struct check *ck)
{
    char ev[256];
    if (ck->open > 0 || ck->naddrs == 0)
        return;
    if (ck->refused == ck->naddrs) {
        snprintf(ev, sizeof(ev), "every address of %s refuses connections on port %u",
                 origin(ck)->host, origin(ck)->port);
        conclude(ck, CHECK_ORIGIN_DOWN, ev, next_steps[CHECK_ORIGIN_DOWN]);
    } else if (ck->silent + ck->unreachable > 0) {
        snprintf(ev, sizeof(ev), "%d of %d addresses of %s do not answer on port %u (%d silent, "
                 "%d unreachable)", ck->silent + ck->unreachable, ck->naddrs, origin(ck)->host,
                 origin(ck)->port, ck->silent, ck->unreachable);
        conclude(ck, CHECK_FIREWALL, ev, next_steps[CHECK_FIREWALL]);
    }
}

static void
begin_origin(struct check *ck)
{
    ck->naddrs = ck->addr_i = 0;
    ck->open = ck->refused = ck->silent = ck->unreachable = 0;
    ck->step = STEP_DNS;
    loop_timer_init(&ck->timer, on_tcp_timeout);
    buf_printf(&ck->report, "origin %s (zone %s)\n", origin(ck)->url, ck->zone->name);
    buf_append_str(&ck->json, ck->json_origins++ ? ",{" : "{");
    json_kv(&ck->json, "url", origin(ck)->url, false);
    json_kv(&ck->json, "zone", ck->zone->name, true);
    buf_append_str(&ck->json, ",");
    start_dns(ck);
}

static void
next_step(struct check *ck)
{
    if (ck->step == STEP_DNS) {
        ck->step = STEP_TCP;
        loop_timer_init(&ck->timer, on_tcp_timeout);
    }
    if (ck->step == STEP_TCP && ck->addr_i < ck->naddrs) {
        start_tcp(ck);
        return;
    }
    if (ck->step == STEP_TCP) {
        tcp_verdict(ck);
        ck->step = STEP_HTTP;
        buf_append_str(&ck->json, "],\"http\":");
        if (ck->open > 0) {
            start_http(ck);
            return;
        }
        buf_append_str(&ck->json, "null}");
    }
    if (ck->only_origin < 0 && ++ck->origin_i < ck->zone->norigins) {
        begin_origin(ck);
        return;
    }
    ck->finished = true;
    loop_stop(ck->w->loop);
}

/* ---------------------------------------------------------------- command line */

static const char *const verdict_names[] = {
    [CHECK_OK] = "OK",
    [CHECK_USAGE] = "usage",
    [CHECK_DNS] = "DNS does not resolve",
    [CHECK_ORIGIN_DOWN] = "origin down",
    [CHECK_FIREWALL] = "firewall blocking",
    [CHECK_INVALID] = "invalid response",
    [CHECK_SLOW] = "origin too slow",
    [CHECK_REFUSED_BY_POLICY] = "origin address refused by the edge",
};

struct check_options {
    const char *target, *zone, *file, *resolver, *path;
    uint64_t timeout;
    bool json;
};

static int
parse_args(int argc, char **argv, struct check_options *o)
{
    o->timeout = 5000;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = strcmp(a, "--zone") == 0 || strcmp(a, "-c") == 0 ||
                     strcmp(a, "--resolver") == 0 || strcmp(a, "--timeout") == 0 ||
                     strcmp(a, "--path") == 0;
        if (takes && v == NULL) {
            fprintf(stderr, "verge check: %s needs a value\n", a);
            return -1;
        }
        if (strcmp(a, "--zone") == 0)
            o->zone = argv[++i];
        else if (strcmp(a, "-c") == 0)
            o->file = argv[++i];
        else if (strcmp(a, "--resolver") == 0)
            o->resolver = argv[++i];
        else if (strcmp(a, "--path") == 0)
            o->path = argv[++i];
        else if (strcmp(a, "--json") == 0)
            o->json = true;
        else if (strcmp(a, "--timeout") == 0) {
            if (config_duration_parse(argv[++i], &o->timeout) < 0 || o->timeout == 0) {
                fprintf(stderr, "verge check: --timeout wants a duration such as 5s\n");
                return -1;
            }
        } else if (a[0] != '-' && o->target == NULL)
            o->target = a;
        else {
            fprintf(stderr, "verge check: unknown argument '%s'\n", a);
            return -1;
        }
    }
    if ((o->target == NULL) == (o->zone == NULL) || (o->zone != NULL && o->file == NULL)) {
        fprintf(stderr, "usage: verge check URL [--path /p] [--timeout 5s] [--resolver IP:PORT] "
                        "[--json]\n"
                        "       verge check --zone NAME -c FILE\n");
        return -1;
    }
    return 0;
}

/* The configuration to check with: the file's, or zero-config for a URL (its path kept). */
static struct config *
check_config(struct check_options *o, const struct config_zone **zone, char *err, size_t len)
{
    struct config *cfg = NULL;
    if (o->file != NULL) {
        if (config_load(o->file, &cfg, err, len) < 0)
            return NULL;
        for (size_t i = 0; i < cfg->nzones && *zone == NULL; i++)
            if (strcmp(cfg->zones[i].name, o->zone) == 0)
                *zone = &cfg->zones[i];
        if (*zone == NULL) {
            snprintf(err, len, "%s has no zone named \"%s\"", o->file, o->zone);
            config_release(&cfg);
        }
        return cfg;
    }
    char url[512];
    const char *scheme = strstr(o->target, "://");
    const char *slash = strchr(scheme ? scheme + 3 : o->target, '/');
    size_t n = slash ? (size_t)(slash - o->target) : strlen(o->target);
    snprintf(url, sizeof(url), "%s%.*s", scheme ? "" : "http://", (int)n, o->target);
    if (o->path == NULL)
        o->path = slash ? slash : "/";
    if (config_from_origin(url, "127.0.0.1:1", &cfg, err, len) < 0)
        return NULL;
    cfg->nlistens = 0; /* no listener of ours to loop back to */
    cfg->admin_enabled = false;
    *zone = &cfg->zones[0];
    return cfg;
}

static void
write_json(struct check *ck, struct buf *out)
{
    buf_append_str(out, "{");
    json_kv(out, "verdict", verdict_names[ck->verdict], false);
    buf_printf(out, ",\"exit\":%d", (int)ck->verdict);
    json_kv(out, "evidence", ck->evidence, true);
    json_kv(out, "next", ck->verdict == CHECK_OK ? "" : ck->next, true);
    buf_append_str(out, ",\"origins\":[");
    buf_append(out, buf_head(&ck->json), buf_used(&ck->json));
    buf_append_str(out, "]}\n");
}

static void
write_report(struct check *ck, struct buf *out)
{
    buf_printf(out, "verdict: %s", verdict_names[ck->verdict]);
    if (ck->verdict != CHECK_OK)
        buf_printf(out, ": %s\nnext: %s\n", ck->evidence, ck->next);
    else
        buf_printf(out, ": every origin resolves, accepts connections and answers (HTTP %d)\n",
                   ck->status);
    buf_append(out, buf_head(&ck->report), buf_used(&ck->report));
}

enum check_verdict
check_run(struct config *cfg, const struct config_zone *zone, int origin_index,
          const char *path, uint64_t timeout, bool json, struct buf *report)
{
    struct check ck = {.cfg = cfg, .zone = zone, .timeout = timeout, .path = path,
                       .only_origin = origin_index,
                       .origin_i = origin_index >= 0 ? (size_t)origin_index : 0};
    buf_init(&ck.report, 1 << 20);
    buf_init(&ck.json, 1 << 20);
    ck.w = worker_new(0, cfg, NULL, 0);
    begin_origin(&ck);
    if (!ck.finished)
        loop_run(ck.w->loop);
    if (json)
        write_json(&ck, report);
    else
        write_report(&ck, report);
    buf_free(&ck.report);
    buf_free(&ck.json);
    worker_free(ck.w);
    return ck.verdict;
}

int
check_main(int argc, char **argv)
{
    struct check_options o = {0};
    const struct config_zone *zone = NULL;
    char err[512];
    if (parse_args(argc, argv, &o) < 0)
        return CHECK_USAGE;
    struct config *cfg = check_config(&o, &zone, err, sizeof(err));
    if (cfg == NULL || zone == NULL) {
        fprintf(stderr, "verge check: %s\n", err);
        return CHECK_USAGE;
    }
    if (o.resolver != NULL) {
        struct config_addr a;
        if (config_addr_parse(o.resolver, 53, &a) < 0) {
            fprintf(stderr, "verge check: --resolver '%s' is not an address\n", o.resolver);
            config_release(&cfg);
            return CHECK_USAGE;
        }
        free(cfg->resolver.servers);
        cfg->resolver.servers = xstrdup(a.text);
    }
    free(cfg->error_log);
    cfg->error_log = NULL; /* the report says it all; the fetch path's log lines would not */
    log_configure(cfg, err, sizeof(err));
    struct buf report;
    buf_init(&report, 1 << 20);
    enum check_verdict v =
        check_run(cfg, zone, -1, o.path ? o.path : "/", o.timeout, o.json, &report);
    fwrite(buf_head(&report), 1, buf_used(&report), stdout);
    buf_free(&report);
    config_release(&cfg);
    return (int)v;
}
