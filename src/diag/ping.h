/* ping.h - ICMP echo (ping) to one address: an unprivileged ICMP socket where
 * net.ipv4.ping_group_range allows it, else a raw socket (root), else skipped with the
 * reason. Replies, losses, ICMP errors about the echoes, min/avg/max round trip. */
#ifndef VERGE_DIAG_PING_H
#define VERGE_DIAG_PING_H

#include "core/config.h"
#include "core/loop.h"
#include "diag/icmp.h"
#include "diag/probe.h"

#define PING_MAX 10

struct ping_result {
    char address[64]; /* "10.0.0.5" */
    bool skipped;     /* the machine does not let us send ICMP echo */
    char detail[240]; /* why it was skipped, or the socket used */
    int count, sent, received;
    int errors; /* ICMP errors about our echoes */
    bool has_icmp;
    struct net_icmp icmp; /* the first of them */
    uint64_t min_us, avg_us, max_us;
};

struct ping;

/* count (1..PING_MAX) echoes to sa's address, interval_ms apart; done timeout_ms after the
 * last one at the latest. */
struct ping *ping_start(struct loop *loop, const struct sockaddr *sa, int count,
                        uint64_t interval_ms, uint64_t timeout_ms, struct ping_result *out,
                        probe_done_cb cb, void *arg);
void ping_free(struct ping **p);

#endif
