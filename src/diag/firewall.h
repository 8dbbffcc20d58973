/* firewall.h - firewall fingerprinting from an origin's evidence: a silent SYN drop (and
 * the last hop that answered before it), an ICMP reject (admin-prohibited, port or host
 * unreachable, and who sent it), a reset right after the TLS ClientHello (a middlebox),
 * a WAF's block page or a rate limit answering the edge; what it likely is, and what to
 * allow ("allow the edge's address a.b.c.d to port 443 on ..."). */
#ifndef VERGE_DIAG_FIREWALL_H
#define VERGE_DIAG_FIREWALL_H

#include "diag/evidence.h"

/* Fill e->fw when the evidence points at a firewall; leaves fw.found false otherwise. */
void firewall_fingerprint(struct evidence_origin *e);

#endif
