/* verdict.h - the culprit of one origin's evidence, in plain terms, with the evidence and
 * the next thing to try; and the verdict of a whole check (the first origin that fails).
 * Pure functions over evidence.h. */
#ifndef VERGE_DIAG_VERDICT_H
#define VERGE_DIAG_VERDICT_H

#include "diag/evidence.h"

/* "OK", "DNS does not resolve", "origin down", "firewall blocking", "invalid response",
 * "origin too slow", "origin address refused by the edge", "TLS problem", ... */
const char *verdict_name(enum check_verdict v);

/* Judge e: e->verdict, e->evidence, e->next (and e->fw through firewall.h). An origin
 * whose steps did not all run (interrupted) is judged on what they found. */
void verdict_judge(struct evidence_origin *e);

/* The verdict of the whole check: the first judged origin with a failure, else OK (or
 * CHECK_INTERRUPTED when interrupted). *which is that origin (NULL when none failed). */
enum check_verdict verdict_overall(const struct evidence_origin *origins, size_t n,
                                   bool interrupted, const struct evidence_origin **which);

#endif
