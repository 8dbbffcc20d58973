/* auto.h - automatic diagnosis: when request failures mark an origin down, the same probes
 * as verge check (DNS, TCP to each address, HTTP) run in the background, and their verdict
 * goes to the error log and to the origin's incident (/incidents). At most
 * DIAG_MAX_RUNNING at once; one per down period by construction. They are jobs
 * (diag/job.h): shutdown waits for them with diag_jobs_wait. */
#ifndef VERGE_DIAG_AUTO_H
#define VERGE_DIAG_AUTO_H

#include "edge/health.h"

#define DIAG_MAX_RUNNING 4

/* Install the hook in the health module. */
void diag_auto_install(void);

#endif
