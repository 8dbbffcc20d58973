/* probe.h - what every verge check probe shares: a microsecond clock for latencies, the
 * completion callback, and the rules every probe follows. A probe runs on the caller's
 * loop; X_start never calls back from inside itself; the callback fires once, when the
 * probe is done (or its time is up), after which the owner frees it with X_free. X_free
 * on a running probe stops it at once (Ctrl-C): its result keeps what was found so far. */
#ifndef VERGE_DIAG_PROBE_H
#define VERGE_DIAG_PROBE_H

#include "core/base.h"

#include <time.h>

typedef void (*probe_done_cb)(void *arg);

/* Monotonic microseconds. */
static inline uint64_t
probe_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Microseconds as milliseconds with a fraction, for reports. */
static inline double
probe_ms(uint64_t us)
{
    return (double)us / 1000.0;
}

#endif
