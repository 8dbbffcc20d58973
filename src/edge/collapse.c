/* collapse.c - a short list of keys being fetched per worker, each with its waiters. */
#include "edge/collapse.h"

struct collapse_entry {
    struct collapse_entry *next;
    char *key;
    struct collapse_waiter *waiters;
};

static struct collapse_entry **
find(struct worker *w, const char *key)
{
    struct collapse_entry **pp = (struct collapse_entry **)&w->collapse;
    while (*pp != NULL && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

static void
on_resume(struct loop_defer *d)
{
    struct collapse_waiter *waiter = container_of(d, struct collapse_waiter, defer);
    if (waiter->queued) {
        waiter->queued = false;
        waiter->resume(waiter);
    }
}

bool
collapse_join(struct worker *w, const char *key, struct collapse_waiter *waiter)
{
    struct collapse_entry **pp = find(w, key);
    if (*pp == NULL) {
        struct collapse_entry *e = xcalloc(1, sizeof(*e));
        e->key = xstrdup(key);
        *pp = e;
        return false;
    }
    waiter->next = (*pp)->waiters;
    waiter->queued = false;
    loop_defer_init(&waiter->defer, on_resume);
    (*pp)->waiters = waiter;
    return true;
}

void
collapse_end(struct worker *w, const char *key)
{
    struct collapse_entry **pp = find(w, key), *e = *pp;
    if (e == NULL)
        return;
    *pp = e->next;
    while (e->waiters != NULL) {
        struct collapse_waiter *waiter = e->waiters;
        e->waiters = waiter->next;
        waiter->next = NULL;
        waiter->queued = true;
        loop_defer(w->loop, &waiter->defer); /* resumed outside the leader's call chain */
    }
    free(e->key);
    free(e);
}

void
collapse_leave(struct worker *w, struct collapse_waiter *waiter)
{
    waiter->queued = false; /* a resume already queued does nothing */
    for (struct collapse_entry *e = w->collapse; e != NULL; e = e->next)
        for (struct collapse_waiter **pp = &e->waiters; *pp != NULL; pp = &(*pp)->next)
            if (*pp == waiter) {
                *pp = waiter->next;
                return;
            }
}
