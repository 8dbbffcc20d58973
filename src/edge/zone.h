/* zone.h - which zone serves a request: Host header → zone by exact name, then the longest
 * matching "*.suffix" wildcard, then a catch-all "*". No match means 421: never an open proxy. */
#ifndef VERGE_EDGE_ZONE_H
#define VERGE_EDGE_ZONE_H

#include "core/config.h"

/* Find the zone for a Host header value (or the authority of an absolute-form target).
 * host may carry a port ("example.com:8080"), a trailing dot, upper case letters, or be an
 * IPv6 literal in brackets; all are normalised before matching. A wildcard "*.example.com"
 * matches "a.example.com" and "a.b.example.com" but not "example.com".
 * Returns NULL when no zone serves the host, or when host is empty or malformed. */
const struct config_zone *zone_find(const struct config *cfg, const char *host, size_t len);
/* The same for a host already normalised (zone_host_normalise), len bytes. */
const struct config_zone *zone_match(const struct config *cfg, const char *name, size_t len);

/* Normalise a Host value into out (lower case, no port, no trailing dot, IPv6 without
 * brackets). Returns the length, or -1 when it is malformed or does not fit in outlen. */
int zone_host_normalise(const char *host, size_t len, char *out, size_t outlen);

#endif
