/* firewall.c - reading the TCP, ICMP, traceroute, TLS and HTTP evidence for the marks
 * that each kind of firewall leaves. */
#include "diag/firewall.h"

/* The edge's own address as the origin sees it (modulo NAT), from the TCP probes. */
static const char *
edge_address(const struct evidence_origin *e)
{
    for (int i = 0; i < e->naddrs; i++)
        if (e->addrs[i].tcp.local[0] != '\0')
            return e->addrs[i].tcp.local;
    return "(this machine's address)";
}

/* " (hop 3)" when ip answered one of the traces, else "". */
static void
hop_of(const struct evidence_addr *a, const char *ip, char *out, size_t len)
{
    const struct trace_result *traces[] = {&a->tcp_trace, &a->udp_trace};
    out[0] = '\0';
    for (size_t t = 0; t < ARRAY_SIZE(traces) && out[0] == '\0'; t++)
        for (int ttl = 1; ttl <= traces[t]->sent_up_to; ttl++)
            if (traces[t]->hops[ttl - 1].answered &&
                strcmp(traces[t]->hops[ttl - 1].address, ip) == 0) {
                snprintf(out, len, " (hop %d)", ttl);
                break;
            }
}

static void
silent_drop(struct evidence_origin *e, const struct evidence_addr *a)
{
    struct firewall_finding *fw = &e->fw;
    char ip[64];
    net_ip_text((const struct sockaddr *)&a->addr.sa, ip, sizeof(ip));
    const struct trace_result *t = &a->tcp_trace;
    unsigned port = e->origin->port;
    char extra[160] = "";
    fw->kind = "drop";
    snprintf(fw->likely, sizeof(fw->likely),
             "a DROP rule (iptables -j DROP, nftables drop, a cloud security group or network "
             "ACL) silently discards the edge's SYN packets to port %u",
             port);
    if (a->ran_udp_trace && a->udp_trace.reached)
        snprintf(extra, sizeof(extra),
                 "; UDP probes reach %s at hop %d, so the rule is about "
                 "TCP port %u",
                 a->udp_trace.target, a->udp_trace.reached_ttl, port);
    if (a->ran_tcp_trace && t->last_ttl > 0 && !t->reached) {
        const char *x = t->hops[t->last_ttl - 1].address;
        snprintf(fw->where, sizeof(fw->where),
                 "%s (hop %d, the last to answer the TCP probes "
                 "to port %u)%s",
                 x, t->last_ttl, port, extra);
        snprintf(fw->allow, sizeof(fw->allow),
                 "allow the edge's address %s to port %u on %s "
                 "in the firewall at %s (hop %d) or right after it, on the origin host",
                 edge_address(e), port, ip, x, t->last_ttl);
        return;
    }
    snprintf(fw->where, sizeof(fw->where), "between this edge and %s%s%s", a->tcp.address,
             a->ran_tcp_trace ? " (no hop answered the TCP probes)" : "", extra);
    snprintf(fw->allow, sizeof(fw->allow),
             "allow the edge's address %s to port %u on %s in "
             "the firewalls in between (origin host, cloud security group)",
             edge_address(e), port, ip);
}

static void
icmp_reject(struct evidence_origin *e, const struct evidence_addr *a, const struct net_icmp *m)
{
    struct firewall_finding *fw = &e->fw;
    char from[64], hop[32], desc[160];
    unsigned port = e->origin->port;
    icmp_from_text(m, from, sizeof(from));
    hop_of(a, from, hop, sizeof(hop));
    icmp_describe(m, desc, sizeof(desc));
    switch (icmp_kind_of(m)) {
    case ICMP_KIND_ADMIN_PROHIBITED:
        fw->kind = "reject_admin_prohibited";
        snprintf(fw->likely, sizeof(fw->likely),
                 "a REJECT rule answering %s (iptables "
                 "--reject-with icmp-admin-prohibited, nftables reject with icmpx "
                 "admin-prohibited, a router ACL)",
                 desc);
        break;
    case ICMP_KIND_PORT_UNREACHABLE:
        fw->kind = "reject_port_unreachable";
        snprintf(fw->likely, sizeof(fw->likely),
                 "a REJECT rule with its default answer, %s "
                 "(iptables -j REJECT); a closed TCP port answers with a reset, not ICMP",
                 desc);
        break;
    case ICMP_KIND_NET_UNREACHABLE:
        fw->kind = "no_route";
        snprintf(fw->likely, sizeof(fw->likely),
                 "no route to %s's network (%s), or a REJECT "
                 "rule answering so",
                 a->tcp.address, desc);
        break;
    default:
        fw->kind = "reject_host_unreachable";
        snprintf(fw->likely, sizeof(fw->likely),
                 "a REJECT rule answering %s, or the host is "
                 "down or unknown to that router (no ARP/ND answer)",
                 desc);
    }
    char ip[64];
    net_ip_text((const struct sockaddr *)&a->addr.sa, ip, sizeof(ip));
    bool self = strcmp(ip, from) == 0;
    snprintf(fw->where, sizeof(fw->where), "%s%s%s", from[0] ? from : "a router", hop,
             self ? ", the origin host itself" : "");
    snprintf(fw->allow, sizeof(fw->allow),
             "allow the edge's address %s to port %u on %s in "
             "the firewall at %s%s",
             edge_address(e), port, ip, from[0] ? from : "the rejecting router", hop);
}

static void
no_route(struct evidence_origin *e, const struct evidence_addr *a)
{
    struct firewall_finding *fw = &e->fw;
    fw->kind = "no_route";
    snprintf(fw->likely, sizeof(fw->likely),
             "this machine has no route to %s, or its "
             "neighbour does not answer ARP/ND (%s)",
             a->tcp.address, strerror(a->tcp.tries[0].err));
    snprintf(fw->where, sizeof(fw->where), "on this machine or its first hop");
    snprintf(fw->allow, sizeof(fw->allow),
             "check this machine's routes (ip route get %s) "
             "and that the origin host is up",
             a->tcp.address);
}

/* The first address whose connection attempts all failed, other than by a reset. */
static const struct evidence_addr *
blocked_address(const struct evidence_origin *e)
{
    for (int i = 0; i < e->naddrs; i++) {
        const struct evidence_addr *a = &e->addrs[i];
        if (a->ran_tcp && a->tcp.done > 0 && a->tcp.open == 0 && a->tcp.refused < a->tcp.done)
            return a;
    }
    return NULL;
}

static bool
tcp_finding(struct evidence_origin *e)
{
    const struct evidence_addr *a = blocked_address(e);
    if (a == NULL)
        return false;
    for (int i = 0; i < a->tcp.done; i++)
        if (a->tcp.tries[i].outcome == TCPPROBE_UNREACHABLE && a->tcp.tries[i].has_icmp) {
            icmp_reject(e, a, &a->tcp.tries[i].icmp);
            return true;
        }
    if (a->tcp.unreachable > 0)
        no_route(e, a);
    else
        silent_drop(e, a);
    return true;
}

static bool
tls_finding(struct evidence_origin *e)
{
    struct firewall_finding *fw = &e->fw;
    const struct tls_result *t = &e->tls;
    if (!t->attempted || !t->connected || !t->reset_after_hello)
        return false;
    fw->kind = "tls_reset";
    snprintf(fw->where, sizeof(fw->where),
             "between this edge and %s: the TCP connection "
             "opened, then was reset as soon as our TLS ClientHello%s%.200s went out",
             t->address, t->sni[0] ? " with SNI " : "", t->sni);
    snprintf(fw->likely, sizeof(fw->likely),
             "a middlebox (an IPS, a TLS or SNI filter, a "
             "transparent proxy) that resets TLS connections%s%s",
             t->sni[0] ? " for " : "", t->sni);
    snprintf(fw->allow, sizeof(fw->allow),
             "allow the edge's address %s to reach %s with TLS "
             "(SNI %s) in that middlebox",
             edge_address(e), t->address, t->sni[0] ? t->sni : "none");
    return true;
}

static bool
http_finding(struct evidence_origin *e)
{
    struct firewall_finding *fw = &e->fw;
    const struct httpcheck_result *h = &e->http;
    if (!h->attempted || (h->waf[0] == '\0' && !h->rate_limited))
        return false;
    fw->kind = h->waf[0] ? "waf" : "rate_limit";
    snprintf(fw->where, sizeof(fw->where), "in front of the application at %s (HTTP %d)",
             h->address, h->status);
    if (h->waf[0] != '\0') {
        snprintf(fw->likely, sizeof(fw->likely), "%s answers %d to the edge (%s)", h->waf,
                 h->status, h->waf_evidence);
        snprintf(fw->allow, sizeof(fw->allow),
                 "allow the edge's address %s in %s's rules (an "
                 "IP allowlist or trusted-proxy entry), or exempt it from the rule that blocks "
                 "it",
                 edge_address(e), h->waf);
    } else {
        snprintf(fw->likely, sizeof(fw->likely),
                 "the origin rate-limits the edge's address %s "
                 "(HTTP 429): every visitor of the zone reaches the origin from it",
                 edge_address(e));
        snprintf(fw->allow, sizeof(fw->allow),
                 "exempt the edge's address %s from the origin's "
                 "rate limit",
                 edge_address(e));
    }
    return true;
}

void
firewall_fingerprint(struct evidence_origin *e)
{
    memset(&e->fw, 0, sizeof(e->fw));
    e->fw.found = tcp_finding(e) || tls_finding(e) || http_finding(e);
}
