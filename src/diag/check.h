/* check.h - `verge check`: diagnose an origin from the edge's own position with the edge's
 * own code (its resolver and DNS cache rules, address policy, connect path and HTTP
 * parser): DNS, TCP reachability of each address, an HTTP request, and a verdict that
 * names the culprit. Today: no ICMP ping, traceroute or TLS yet. */
#ifndef VERGE_DIAG_CHECK_H
#define VERGE_DIAG_CHECK_H

#include "core/buf.h"
#include "core/config.h"

/* Exit statuses (also the verdicts, in this order of precedence). */
enum check_verdict {
    CHECK_OK = 0,
    CHECK_USAGE = 1,          /* bad arguments or configuration */
    CHECK_DNS = 2,            /* the name does not resolve, or the resolver fails */
    CHECK_ORIGIN_DOWN = 3,    /* every address refuses connections */
    CHECK_FIREWALL = 4,       /* no answer to connection attempts, or ICMP unreachable */
    CHECK_INVALID = 5,        /* the origin answers, but not valid HTTP the edge accepts */
    CHECK_SLOW = 6,           /* no response header in time */
    CHECK_REFUSED_BY_POLICY = 7, /* the address points at the edge itself or forbidden space */
};

/* Check zone's origins (or only origin_index when >= 0) on the calling thread, with a loop
 * and resolver of its own; every probe bounded by timeout (ms). The report (verdict line
 * first, then one line per step; or with json the document described in docs/check.md)
 * is appended to report. */
enum check_verdict check_run(struct config *cfg, const struct config_zone *zone,
                             int origin_index, const char *path, uint64_t timeout, bool json,
                             struct buf *report);

/* verge check URL | verge check --zone NAME -c FILE; options --timeout DURATION,
 * --resolver IP[:PORT], --path /p. Prints progress and the verdict on stdout and returns
 * the exit status. */
int check_main(int argc, char **argv);

#endif
