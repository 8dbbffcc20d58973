/* health.h - passive origin health shared by all workers: consecutive failures mark an
 * origin down for a hold time; after it one request probes it (half-open) and its outcome
 * decides. Every down period is an incident (start, end, cause, requests affected), kept
 * for the admin endpoint /incidents. Thread-safe. */
#ifndef VERGE_EDGE_HEALTH_H
#define VERGE_EDGE_HEALTH_H

#include "core/buf.h"
#include "core/config.h"
#include "edge/proxy_error.h"

struct origin_health;

/* The health record of one origin of one zone (by names, so it survives reloads). */
struct origin_health *health_get(const struct config_zone *z, const struct config_origin *o);

enum health_verdict {
    HEALTH_USE,   /* up: use it */
    HEALTH_PROBE, /* down, hold over: this request is the one probe */
    HEALTH_SKIP,  /* down: do not use it */
};

/* May a request use this origin now (monotonic ms)? HEALTH_PROBE is given to one caller
 * at a time. */
enum health_verdict health_check(struct origin_health *h, const struct config_zone *z,
                                 uint64_t now_ms);

/* Would health_check answer HEALTH_SKIP now (down, and no probe due)? Lock-free, and it
 * hands out no probe. *until_ms: the monotonic time up to which that answer holds unless
 * health_epoch changes first (UINT64_MAX: only a change ends it). */
bool health_known_down(const struct origin_health *h, const struct config_zone *z,
                       uint64_t now_ms, uint64_t *until_ms);

/* A counter that every change of any origin's health (down, up, probe handed out, new last
 * cause) increases: a worker's snapshot of health taken at one epoch holds while it stays. */
uint64_t health_epoch(void);

/* The outcome of a request to the origin: success (a response head arrived) or the failure
 * that counts against it. now_ms monotonic, wall_s for the incident record. */
void health_success(struct origin_health *h, const struct config_zone *z, double wall_s);
/* Returns true when this failure marked the origin down (a new incident). */
bool health_failure(struct origin_health *h, const struct config_zone *z,
                    const struct proxy_error *e, uint64_t now_ms, double wall_s);

/* Attach a diagnosis (automatic probe result) to h's open incident, if any. */
void health_incident_note(struct origin_health *h, const char *diagnosis);

/* The last automatic diagnosis of zone's origin_url, if there was one. */
bool health_last_diagnosis(const char *zone, const char *origin_url, char *out, size_t outlen);

/* Called (from the worker that saw it) when an origin is marked down by request failures:
 * registered by the layer that diagnoses (diag), so edge does not depend on it. */
typedef void (*health_down_hook)(const struct config *cfg, const struct config_zone *z,
                                 size_t origin_index, struct origin_health *h);
void health_set_down_hook(health_down_hook hook);
health_down_hook health_get_down_hook(void);

/* An active probe's outcome (ok: a 2xx/3xx answer): fall consecutive failures mark the
 * origin down until rise consecutive successes bring it back. e says why it failed. */
void health_probe_result(struct origin_health *h, const struct config_zone *z, bool ok,
                         const struct proxy_error *e, uint64_t now_ms, double wall_s);

/* A request was refused because every origin of z was down: counted on their incidents.
 * Lock-free. */
void health_affected(struct origin_health *h);

/* The last cause that put h down, for the 503 details. */
void health_last_cause(struct origin_health *h, char *out, size_t outlen);

/* Incidents as JSON (newest first) into out. */
void health_incidents_json(struct buf *out);

/* Forget everything (tests). */
void health_reset(void);

#endif
