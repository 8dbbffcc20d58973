/* check.h - `verge check`: diagnose an origin from the edge's own position with the edge's
 * own code (its resolver and DNS cache rules, address policy, connect path and HTTP
 * parser): DNS through each resolver, TCP connects, ICMP ping and traceroute to each
 * address, TLS for https targets, an HTTP request, and a verdict that names the culprit.
 * See docs/check.md for the report and its JSON schema. */
#ifndef VERGE_DIAG_CHECK_H
#define VERGE_DIAG_CHECK_H

#include "core/buf.h"
#include "core/config.h"
#include "diag/evidence.h"

struct check_opts {
    const char *path;    /* the request's path, "/" by default */
    uint64_t timeout;    /* ms: every probe is bounded by it (default 5000) */
    int count;           /* TCP connects and pings per address (default 3) */
    uint64_t interval;   /* ms between them (default 200) */
    int max_hops;        /* traceroute (default 30) */
    bool ping, trace;    /* run these steps (default on) */
    bool tls;            /* the target is https: TLS step, then HTTP over it */
    const char *ca_file; /* trust these CAs instead of the system's */
    /* resolvers asked directly, "IP[:port]" or NULL for the system's; none: only the
     * configuration's (resolver.servers or /etc/resolv.conf) */
    const char *resolvers[CHECK_MAX_RESOLVERS];
    int nresolvers;
    bool json;        /* the report as the JSON document */
    bool colour;      /* ANSI colours in the text report */
    bool progress;    /* a line on stderr as each probe finishes */
    int interrupt_fd; /* readable (a signalfd) = stop now and report; -1: none */
};

/* Defaults as above, no resolvers, text, no colour or progress, no interrupt fd. */
void check_opts_default(struct check_opts *o);

/* Check the zone's origins (or only origin_index when >= 0) on the calling thread, with a
 * loop and resolver of its own. The report (verdict line first, then one line per step;
 * or the JSON document) is appended to report. Returns the verdict (the exit status). */
enum check_verdict check_run(struct config *cfg, const struct config_zone *zone, int origin_index,
                             const struct check_opts *o, struct buf *report);

/* verge check URL | verge check --zone NAME -c FILE, with the options of docs/check.md.
 * Prints progress (stderr) and the report (stdout) and returns the exit status. */
int check_main(int argc, char **argv);

#endif
