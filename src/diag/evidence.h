/* evidence.h - what verge check found about one origin, step by step: filled by the
 * orchestration (check.c), judged by verdict.c (culprit, firewall fingerprint, next step)
 * and written out by report.c (text and JSON). Plain data, no behaviour. */
#ifndef VERGE_DIAG_EVIDENCE_H
#define VERGE_DIAG_EVIDENCE_H

#include "diag/dnsprobe.h"
#include "diag/httpcheck.h"
#include "diag/ping.h"
#include "diag/tcpprobe.h"
#include "diag/tls.h"
#include "diag/trace.h"
#include "dns/cache.h"

#define CHECK_MAX_RESOLVERS 4

/* Exit statuses (also the verdicts). */
enum check_verdict {
    CHECK_OK = 0,
    CHECK_USAGE = 1,             /* bad arguments or configuration */
    CHECK_DNS = 2,               /* the name does not resolve, or the resolver fails */
    CHECK_ORIGIN_DOWN = 3,       /* every address refuses connections */
    CHECK_FIREWALL = 4,          /* dropped or rejected packets, a middlebox, a WAF */
    CHECK_INVALID = 5,           /* the origin answers, but not valid HTTP the edge accepts */
    CHECK_SLOW = 6,              /* no response header in time */
    CHECK_REFUSED_BY_POLICY = 7, /* the address points at the edge itself or forbidden space */
    CHECK_TLS = 8,               /* handshake, chain, expiry or name */
    CHECK_INTERRUPTED = 130,     /* Ctrl-C before any failure was found */
};

/* Findings about the DNS answers (bits of evidence_origin.dns_flags). */
enum dns_flag {
    DNS_FLAG_NXDOMAIN = 1 << 0,
    DNS_FLAG_SERVFAIL = 1 << 1,
    DNS_FLAG_REFUSED = 1 << 2,
    DNS_FLAG_TIMEOUT = 1 << 3,
    DNS_FLAG_NO_ADDRESS = 1 << 4,
    DNS_FLAG_LOOPBACK = 1 << 5,
    DNS_FLAG_PRIVATE = 1 << 6,
    DNS_FLAG_EDGE_ITSELF = 1 << 7, /* an address of this machine, or the edge's listener */
    DNS_FLAG_DISAGREE = 1 << 8,
};
#define DNS_FLAG_COUNT 9

struct evidence_addr {
    struct config_addr addr;
    enum proxy_error_type policy; /* PROXY_ERR_NONE: the edge may connect to it */
    char policy_why[160];
    bool this_machine; /* one of this machine's own addresses */
    bool ran_tcp, ran_ping, ran_udp_trace, ran_tcp_trace;
    struct tcpprobe_result tcp;
    struct ping_result ping;
    struct trace_result udp_trace, tcp_trace;
};

/* Where a firewall is, and what to allow, when one is the likely culprit. */
struct firewall_finding {
    bool found;
    const char *kind; /* "drop", "reject_admin_prohibited", "reject_port_unreachable",
                       * "reject_host_unreachable", "no_route", "tls_reset", "waf",
                       * "rate_limit" */
    char where[400];  /* "198.18.0.9 (hop 3, the last to answer)" */
    char likely[480]; /* the kind of rule or device */
    char allow[480];  /* "allow the edge's address 198.18.0.1 to port 80 on ..." */
};

struct evidence_origin {
    const struct config_zone *zone;
    const struct config_origin *origin;
    bool started, finished;
    /* DNS: the edge's own answer (its resolver, cache rules and /etc/hosts) ... */
    bool dns_done;
    struct dns_answer answer;
    uint64_t dns_ms;
    /* ... and each resolver asked directly */
    struct dnsprobe_result resolvers[CHECK_MAX_RESOLVERS];
    int nresolvers;
    unsigned dns_flags;
    char disagree[480];
    uint32_t settle_s;
    /* reachability, per address */
    struct evidence_addr addrs[CONFIG_MAX_ADDRS];
    int naddrs;
    /* TLS (https targets) and HTTP */
    bool tls_wanted;
    struct tls_result tls;
    struct httpcheck_result http;
    char http_skipped[160];
    /* judged by verdict.c */
    enum check_verdict verdict;
    char evidence[480];
    char next[480];
    struct firewall_finding fw;
};

#endif
