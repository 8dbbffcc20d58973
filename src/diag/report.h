/* report.h - verge check's evidence written out: the text report (the verdict line first,
 * then one block per origin, one line per step) and the JSON document whose schema
 * docs/check.md describes. */
#ifndef VERGE_DIAG_REPORT_H
#define VERGE_DIAG_REPORT_H

#include "core/buf.h"
#include "diag/evidence.h"

struct report_info {
    enum check_verdict verdict;
    const struct evidence_origin *culprit; /* the origin that decided it, or NULL */
    bool interrupted;
    bool colour;      /* text only: ANSI colours */
    uint64_t timeout; /* ms, the probes' bound */
};

void report_text(const struct evidence_origin *origins, size_t n, const struct report_info *ri,
                 struct buf *out);
void report_json(const struct evidence_origin *origins, size_t n, const struct report_info *ri,
                 struct buf *out);

/* One line on the DNS flags of e ("NXDOMAIN, loopback"), for progress and logs. */
void report_dns_flags(unsigned flags, char *out, size_t len);

#endif
