/* notify.h - waking a visitor in any worker when a cache object it waits on makes
 * progress. Each worker owns one notifier: an inbox under a lock, drained by the worker's
 * own loop after a loop_wake. A waiter is embedded in its owner (a visitor connection) and
 * runs its callback in the owner's worker, never in the thread that made the progress, so
 * a filler never blocks on its readers and readers never block their loop. */
#ifndef VERGE_CACHE_NOTIFY_H
#define VERGE_CACHE_NOTIFY_H

#include "core/loop.h"

#include <pthread.h>

struct cache_notifier;

/* Embedded in its owner. Fields are the notifier's and the store's; owners only init. */
struct cache_waiter {
    struct cache_waiter *next;       /* in an object's subscribers, or in an inbox */
    struct cache_notifier *notifier; /* the worker whose loop runs cb */
    void (*cb)(struct cache_waiter *w);
    bool subscribed; /* in an object's subscriber list (under that object's lock) */
    bool queued;     /* in the notifier's inbox (under the notifier's lock) */
    bool armed;      /* the owner's own: subscribed at least once since init; while false
                      * nobody can have posted it, so cancelling takes no lock (a visitor
                      * answered by a hit never subscribes) */
};

struct cache_notifier {
    pthread_mutex_t lock;
    struct cache_waiter *head, **tail;
    struct loop *loop;
};

void cache_notifier_init(struct cache_notifier *n, struct loop *loop);
void cache_notifier_destroy(struct cache_notifier *n);

/* Run the callbacks of every waiter posted so far; from the notifier's own loop thread
 * (its wake-up callback). A callback may cancel or re-subscribe any waiter. */
void cache_notifier_run(struct cache_notifier *n);

void cache_waiter_init(struct cache_waiter *w, struct cache_notifier *n,
                       void (*cb)(struct cache_waiter *w));

/* Queue w's callback in its worker and wake that loop. Any thread. Posting a waiter that
 * is already queued does nothing. */
void cache_waiter_post(struct cache_waiter *w);

/* Take w out of its inbox if it is queued: its callback will not run. Owner thread only;
 * harmless when not queued, and free (no lock) when w was never subscribed since its init. (To stop a subscription, see cache_obj_unsubscribe.) */
void cache_waiter_cancel(struct cache_waiter *w);

#endif
