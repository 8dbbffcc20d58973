/* prober.h - active health probes: for every zone with health.active, each origin gets a
 * GET of the configured path every interval; 2xx/3xx within the timeout is a success, and
 * the outcome goes to health.h. Run by one worker (worker 1) on its loop. */
#ifndef VERGE_EDGE_PROBER_H
#define VERGE_EDGE_PROBER_H

#include "edge/worker.h"

struct prober;

/* Probes for w->cfg's zones. NULL when no zone asks for active probes. */
struct prober *prober_new(struct worker *w);
/* Stop every probe (in flight ones are aborted). NULLs *p. */
void prober_free(struct prober **p);

#endif
