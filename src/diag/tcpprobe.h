/* tcpprobe.h - TCP connection attempts to one address (count of them, interval apart,
 * each bounded by a timeout), each outcome named the way the edge would classify it
 * (edge/proxy_error.h), with the ICMP message behind a failure read from the socket's
 * error queue: open, refused (a reset), no answer (dropped), unreachable (ICMP). */
#ifndef VERGE_DIAG_TCPPROBE_H
#define VERGE_DIAG_TCPPROBE_H

#include "core/config.h"
#include "core/loop.h"
#include "diag/icmp.h"
#include "diag/probe.h"
#include "edge/proxy_error.h"

#define TCPPROBE_MAX 10

enum tcpprobe_outcome {
    TCPPROBE_PENDING = 0, /* not finished (stopped early) */
    TCPPROBE_OPEN,        /* the handshake completed */
    TCPPROBE_REFUSED,     /* a TCP reset */
    TCPPROBE_NO_ANSWER,   /* nothing came back before the timeout */
    TCPPROBE_UNREACHABLE, /* an ICMP error, or no route */
    TCPPROBE_ERROR,       /* a local failure (no socket, ...) */
};

struct tcpprobe_try {
    enum tcpprobe_outcome outcome;
    enum proxy_error_type type; /* what the edge would raise; PROXY_ERR_NONE when open */
    int err;
    uint64_t us;
    bool has_icmp;
    struct net_icmp icmp;
};

struct tcpprobe_result {
    char address[64]; /* "10.0.0.5:8000" */
    char local[64];   /* the edge's own address for it: what the origin's firewall sees */
    int count;        /* attempts planned */
    int done;         /* attempts finished */
    struct tcpprobe_try tries[TCPPROBE_MAX];
    enum tcpprobe_outcome outcome; /* open if any attempt was; else the first's */
    int open, refused, silent, unreachable, errors;
    int answered;                    /* attempts that got any answer (open, reset, ICMP) */
    uint64_t min_us, avg_us, max_us; /* over answered attempts */
};

struct tcpprobe;

/* count (1..TCPPROBE_MAX) attempts to a, interval_ms apart, each bounded by timeout_ms. */
struct tcpprobe *tcpprobe_start(struct loop *loop, const struct config_addr *a, int count,
                                uint64_t interval_ms, uint64_t timeout_ms,
                                struct tcpprobe_result *out, probe_done_cb cb, void *arg);
void tcpprobe_free(struct tcpprobe **p);

/* "open", "refused", "no_answer", "unreachable", "error", "stopped" (JSON, stable). */
const char *tcpprobe_outcome_name(enum tcpprobe_outcome o);
/* The outcome in words, with the ICMP message for an unreachable one. */
const char *tcpprobe_try_text(const struct tcpprobe_try *t, char *out, size_t len);

#endif
