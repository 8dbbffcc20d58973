/* trace.h - traceroute, IPv4 and IPv6, without root: probes with rising TTL (hop limit)
 * whose ICMP answers are read from each socket's error queue (IP_RECVERR, as tracepath
 * does). UDP probes to high ports show the route; TCP SYN probes to the origin's own port
 * (a non-blocking connect per TTL) show where connection attempts stop, so a firewall in
 * front of the port appears as the last hop that answered. Probes go out in waves (a
 * wave is a run of TTLs sent at once and bounded by the timeout); the next wave starts
 * when the last TTL of the previous one was still a router. */
#ifndef VERGE_DIAG_TRACE_H
#define VERGE_DIAG_TRACE_H

#include "core/config.h"
#include "core/loop.h"
#include "diag/icmp.h"
#include "diag/probe.h"

#define TRACE_MAX_HOPS 30
#define TRACE_UDP_PORT 33434 /* first UDP port, one more per TTL (traceroute's) */

enum trace_proto { TRACE_UDP = 0, TRACE_TCP = 1 };

struct trace_hop {
    bool answered;
    char address[64]; /* who answered: a router, or the destination */
    uint64_t us;
    bool reached; /* the destination itself answered */
    bool has_icmp;
    struct net_icmp icmp;
    char what[64]; /* "time exceeded", "port unreachable", "SYN-ACK (port open)", ... */
};

struct trace_result {
    enum trace_proto proto;
    char target[64]; /* "10.0.0.5" (UDP) or "10.0.0.5:443" (TCP) */
    int max_hops;
    struct trace_hop hops[TRACE_MAX_HOPS]; /* hops[ttl - 1] */
    int sent_up_to;                        /* highest TTL probed */
    bool reached;
    int reached_ttl;
    int last_ttl;    /* highest TTL that answered (0: none) */
    bool blocked;    /* an ICMP unreachable (not the destination's port) ended it */
    int blocked_ttl; /* at this hop */
    bool done;       /* finished (not stopped early) */
};

struct trace;

/* Trace towards dst (its port is the TCP target; UDP uses TRACE_UDP_PORT + TTL - 1).
 * first_wave: TTLs in the first wave (UDP: all of them is good; TCP: the distance the
 * UDP trace found, so few SYNs reach the origin). Each wave bounded by timeout_ms. */
struct trace *trace_start(struct loop *loop, enum trace_proto proto, const struct sockaddr *dst,
                          int max_hops, int first_wave, uint64_t timeout_ms,
                          struct trace_result *out, probe_done_cb cb, void *arg);
void trace_free(struct trace **t);

/* Where the path ends, in words: "reached 10.0.0.5 at hop 4", "stops after hop 3
 * (198.18.0.9): no answer beyond it", "hop 3 (198.18.0.9) rejects: ICMP ...". */
const char *trace_summary(const struct trace_result *r, char *out, size_t len);

#endif
