/* notify.c - per-worker inboxes of waiters, drained one at a time from the worker's loop. */
#include "cache/notify.h"

void
cache_notifier_init(struct cache_notifier *n, struct loop *loop)
{
    pthread_mutex_init(&n->lock, NULL);
    n->head = NULL;
    n->tail = &n->head;
    n->loop = loop;
}

void
cache_notifier_destroy(struct cache_notifier *n)
{
    pthread_mutex_destroy(&n->lock);
}

void
cache_waiter_init(struct cache_waiter *w, struct cache_notifier *n,
                  void (*cb)(struct cache_waiter *w))
{
    w->next = NULL;
    w->notifier = n;
    w->cb = cb;
    w->subscribed = false;
    w->queued = false;
    w->armed = false;
}

void
cache_waiter_post(struct cache_waiter *w)
{
    struct cache_notifier *n = w->notifier;
    bool wake = false;
    pthread_mutex_lock(&n->lock);
    if (!w->queued) {
        w->queued = true;
        w->next = NULL;
        wake = n->head == NULL; /* otherwise a wake-up is already on its way */
        *n->tail = w;
        n->tail = &w->next;
    }
    pthread_mutex_unlock(&n->lock);
    if (wake)
        loop_wake(n->loop);
}

void
cache_waiter_cancel(struct cache_waiter *w)
{
    struct cache_notifier *n = w->notifier;
    if (n == NULL || !w->armed)
        return; /* not subscribed since init or its last callback: nobody posted it */
    pthread_mutex_lock(&n->lock);
    if (w->queued) {
        struct cache_waiter **pp = &n->head;
        while (*pp != w)
            pp = &(*pp)->next;
        *pp = w->next;
        if (n->tail == &w->next)
            n->tail = pp;
        w->queued = false;
        w->next = NULL;
    }
    pthread_mutex_unlock(&n->lock);
}

/* One at a time, so that a callback cancelling another waiter takes it out in time. */
void
cache_notifier_run(struct cache_notifier *n)
{
    for (;;) {
        pthread_mutex_lock(&n->lock);
        struct cache_waiter *w = n->head;
        if (w != NULL) {
            n->head = w->next;
            if (n->head == NULL)
                n->tail = &n->head;
            w->queued = false;
            w->next = NULL;
        }
        pthread_mutex_unlock(&n->lock);
        if (w == NULL)
            return;
        w->cb(w);
    }
}
