/* admin.h - the admin listener, served from the main thread's loop: /healthz for load
 * balancers, /metrics in Prometheus text format, /incidents (origin down periods) as JSON,
 * and behind the admin token /requests/<id>, /purge and /check?zone=NAME (verge check of
 * a zone, run on a thread, answered as its JSON document). Loopback by default. */
#ifndef VERGE_ADMIN_ADMIN_H
#define VERGE_ADMIN_ADMIN_H

#include "core/config.h"
#include "core/loop.h"

struct admin;

/* Listen on addr and serve on loop. NULL with a message in err on failure. */
struct admin *admin_start(struct loop *loop, const struct config_addr *addr, char *err,
                          size_t errlen);
/* The configuration /check finds zones in (one reference taken; the last one dropped). */
void admin_set_config(struct admin *a, struct config *cfg);
/* The token that opens /requests/<id>, /purge and /check (NULL: closed). Copied. */
void admin_set_token(struct admin *a, const char *token);

/* Close the listener and every admin connection. NULLs *a. */
void admin_stop(struct admin **a);

#endif
