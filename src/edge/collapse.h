/* collapse.h - request collapsing within a worker: while one visitor's miss is fetched
 * from the origin, other visitors of the same object wait for it instead of each asking
 * the origin; when it ends they are resumed (served from the cache, or fetching on their
 * own if it was not stored). Waiting is bounded by the caller's lock timeout. */
#ifndef VERGE_EDGE_COLLAPSE_H
#define VERGE_EDGE_COLLAPSE_H

#include "edge/worker.h"

struct collapse_waiter {
    struct collapse_waiter *next;
    void (*resume)(struct collapse_waiter *w); /* called from the loop, once */
    struct loop_defer defer;
    bool queued;
};

/* Is a fetch of key in flight in this worker? Then wait for it (true). Otherwise the
 * caller becomes the leader for key (false) and must call collapse_end. */
bool collapse_join(struct worker *w, const char *key, struct collapse_waiter *waiter);

/* The leader's fetch of key ended (stored or not): every waiter is resumed. */
void collapse_end(struct worker *w, const char *key);

/* A waiter gives up (its visitor left, or its lock timeout passed). Harmless if resumed. */
void collapse_leave(struct worker *w, struct collapse_waiter *waiter);

#endif
