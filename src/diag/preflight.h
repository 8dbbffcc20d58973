/* preflight.h - verge check before a configuration goes live (verge -t --preflight, and
 * every SIGHUP reload unless preflight: off): each origin of each zone gets the DNS, TCP
 * and HTTP steps (no ping or traceroute), every probe bounded, and one line of outcome.
 * Blocking: a reload runs it on a thread (diag/job.h), so no loop waits on it. */
#ifndef VERGE_DIAG_PREFLIGHT_H
#define VERGE_DIAG_PREFLIGHT_H

#include "core/buf.h"
#include "core/config.h"

#define PREFLIGHT_TIMEOUT_MS 3000 /* per probe */

struct preflight_line {
    bool failing; /* does not resolve, accept connections, or answer validly */
    bool warning; /* another finding (too slow, a TLS problem) */
    char text[720];
};

struct preflight {
    struct preflight_line *lines; /* one per origin, in the configuration's order */
    size_t nlines;
    int failing; /* origins the refuse setting refuses for */
};

/* Check every origin of cfg. Fills *out (free it with preflight_free). */
void preflight_run(struct config *cfg, uint64_t timeout_ms, struct preflight *out);
void preflight_free(struct preflight *p);

#endif
