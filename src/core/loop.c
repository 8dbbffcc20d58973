/* loop.c - the epoll event loop: poll, run I/O, run expired timers, run deferred work. */
#include "core/loop.h"

#include "core/sys.h"

#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 256

struct loop {
    int epfd;
    bool stopping;
    uint64_t now;
    double wall;
    struct loop_timer **heap; /* 1-based binary min-heap on due */
    size_t heap_len, heap_cap;
    struct loop_defer *defer_head, **defer_tail;
    struct loop_defer *yield_head, **yield_tail; /* run after the next poll */
    struct loop_io wake_io;
    void (*wake_cb)(struct loop *loop, void *arg);
    void *wake_arg;
};

uint64_t
loop_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
update_time(struct loop *loop)
{
    struct timespec ts;
    loop->now = loop_clock_ms();
    clock_gettime(CLOCK_REALTIME, &ts);
    loop->wall = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
on_wake(struct loop_io *io, uint32_t events)
{
    struct loop *loop = container_of(io, struct loop, wake_io);
    uint64_t n;
    if (read(io->fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        return;
    if (loop->wake_cb)
        loop->wake_cb(loop, loop->wake_arg);
}

struct loop *
loop_new(void)
{
    struct loop *loop = xcalloc(1, sizeof(*loop));
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        free(loop);
        return NULL;
    }
    loop->heap_cap = 64;
    loop->heap = xmalloc(sizeof(*loop->heap) * loop->heap_cap);
    loop->defer_tail = &loop->defer_head;
    loop->yield_tail = &loop->yield_head;
    update_time(loop);
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0 || loop_io_start(loop, &loop->wake_io, efd, EPOLLIN, on_wake) < 0) {
        if (efd >= 0)
            close(efd);
        close(loop->epfd);
        free(loop->heap);
        free(loop);
        return NULL;
    }
    return loop;
}

static void run_deferred(struct loop *loop);

void
loop_free(struct loop **loopp)
{
    struct loop *loop = *loopp;
    if (loop == NULL)
        return;
    run_deferred(loop); /* frees queued by the last iteration */
    loop_io_stop(loop, &loop->wake_io);
    close(loop->wake_io.fd);
    close(loop->epfd);
    free(loop->heap);
    free(loop);
    *loopp = NULL;
}

int
loop_io_start(struct loop *loop, struct loop_io *io, int fd, uint32_t events, loop_io_cb cb)
{
    struct epoll_event ev = {.events = events, .data.ptr = io};
    io->fd = fd;
    io->cb = cb;
    io->events = events;
    io->ready = 0;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -errno;
    io->registered = true;
    return 0;
}

void
loop_io_set(struct loop *loop, struct loop_io *io, uint32_t events)
{
    if (!io->registered || io->events == events)
        return;
    struct epoll_event ev = {.events = events, .data.ptr = io};
    io->events = events;
    epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ev);
}

void
loop_io_stop(struct loop *loop, struct loop_io *io)
{
    if (!io->registered)
        return;
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->registered = false;
}

void
loop_io_close(struct loop *loop, struct loop_io *io)
{
    (void)loop;
    io->registered = false;
    if (io->fd >= 0)
        close(io->fd);
    io->fd = -1;
}

/* ---- timers: binary min-heap, 1-based, each timer knows its slot ----
 *
 * The heap is ordered by key, the deadline the timer had when it last moved in the heap;
 * due is its deadline now. Moving a deadline later (a keep-alive timer re-armed after each
 * request, a parked timer) only writes due: the timer is put in its place when its old key
 * comes up, before anything due after it fires. Moving it earlier moves it up at once.
 * Every request used to cost a removal and an insertion, each touching other
 * connections' timers (cache misses, on the hit path). */

static void
heap_place(struct loop *loop, size_t i, struct loop_timer *t)
{
    loop->heap[i] = t;
    t->heap_index = i;
}

static void
heap_up(struct loop *loop, size_t i)
{
    struct loop_timer *t = loop->heap[i];
    while (i > 1 && loop->heap[i / 2]->key > t->key) {
        heap_place(loop, i, loop->heap[i / 2]);
        i /= 2;
    }
    heap_place(loop, i, t);
}

static void
heap_down(struct loop *loop, size_t i)
{
    struct loop_timer *t = loop->heap[i];
    for (;;) {
        size_t c = i * 2;
        if (c > loop->heap_len)
            break;
        if (c + 1 <= loop->heap_len && loop->heap[c + 1]->key < loop->heap[c]->key)
            c++;
        if (loop->heap[c]->key >= t->key)
            break;
        heap_place(loop, i, loop->heap[c]);
        i = c;
    }
    heap_place(loop, i, t);
}

void
loop_timer_init(struct loop_timer *t, loop_timer_cb cb)
{
    t->due = t->key = 0;
    t->heap_index = 0;
    t->cb = cb;
}

void
loop_timer_stop(struct loop *loop, struct loop_timer *t)
{
    size_t i = t->heap_index;
    if (i == 0)
        return;
    t->heap_index = 0;
    struct loop_timer *last = loop->heap[loop->heap_len--];
    if (last == t)
        return;
    heap_place(loop, i, last);
    heap_up(loop, i);
    heap_down(loop, last->heap_index);
}

void
loop_timer_set(struct loop *loop, struct loop_timer *t, uint64_t ms)
{
    uint64_t due = loop->now + ms;
    t->due = due;
    if (t->heap_index != 0) {
        if (due < t->key) {
            t->key = due;
            heap_up(loop, t->heap_index);
        }
        return; /* later: in place when the old key comes up */
    }
    if (loop->heap_len + 1 >= loop->heap_cap) {
        loop->heap_cap *= 2;
        loop->heap = xrealloc(loop->heap, sizeof(*loop->heap) * loop->heap_cap);
    }
    t->key = due;
    loop->heap[++loop->heap_len] = t;
    t->heap_index = loop->heap_len;
    heap_up(loop, loop->heap_len);
}

void
loop_timer_park(struct loop *loop, struct loop_timer *t)
{
    (void)loop;
    if (t->heap_index != 0)
        t->due = LOOP_TIMER_PARKED;
}

static void
run_timers(struct loop *loop)
{
    while (loop->heap_len > 0 && loop->heap[1]->key <= loop->now) {
        struct loop_timer *t = loop->heap[1];
        if (t->key != t->due) {
            t->key = t->due; /* moved later since it was placed: to its place now */
            heap_down(loop, 1);
            continue;
        }
        loop_timer_stop(loop, t);
        t->cb(t);
    }
}

static int
next_timeout(const struct loop *loop)
{
    if (loop->defer_head != NULL || loop->yield_head != NULL)
        return 0;
    if (loop->heap_len == 0)
        return 1000;
    uint64_t due = loop->heap[1]->key; /* maybe early: run_timers then puts it in place */
    if (due <= loop->now)
        return 0;
    return (int)MIN(due - loop->now, 1000);
}

/* ---- deferred work ---- */

void
loop_defer_init(struct loop_defer *d, loop_defer_cb cb)
{
    d->next = NULL;
    d->queued = false;
    d->cb = cb;
}

static void
queue(struct loop_defer ***tail, struct loop_defer *d)
{
    d->queued = true;
    d->next = NULL;
    **tail = d;
    *tail = &d->next;
}

void
loop_defer(struct loop *loop, struct loop_defer *d)
{
    if (!d->queued)
        queue(&loop->defer_tail, d);
}

void
loop_yield(struct loop *loop, struct loop_defer *d)
{
    if (!d->queued)
        queue(&loop->yield_tail, d);
}

/* Unlink d from the list whose head is *head; true when it was there. */
static bool
unlink_from(struct loop_defer **head, struct loop_defer ***tail, struct loop_defer *d)
{
    struct loop_defer **pp = head, *prev = NULL;
    while (*pp != NULL && *pp != d) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp == NULL)
        return false;
    *pp = d->next;
    if (*tail == &d->next)
        *tail = prev ? &prev->next : head;
    return true;
}

void
loop_defer_cancel(struct loop *loop, struct loop_defer *d)
{
    if (!d->queued)
        return;
    if (!unlink_from(&loop->defer_head, &loop->defer_tail, d))
        unlink_from(&loop->yield_head, &loop->yield_tail, d);
    d->queued = false;
}

/* Work yielded in the last iteration joins this one's deferred work. */
static void
take_yielded(struct loop *loop)
{
    if (loop->yield_head == NULL)
        return;
    *loop->defer_tail = loop->yield_head;
    loop->defer_tail = loop->yield_tail;
    loop->yield_head = NULL;
    loop->yield_tail = &loop->yield_head;
}

static void
run_deferred(struct loop *loop)
{
    while (loop->defer_head != NULL) {
        struct loop_defer *d = loop->defer_head;
        loop->defer_head = d->next;
        if (loop->defer_head == NULL)
            loop->defer_tail = &loop->defer_head;
        d->queued = false;
        d->cb(d);
    }
}

uint64_t
loop_now(const struct loop *loop)
{
    return loop->now;
}

double
loop_wall(const struct loop *loop)
{
    return loop->wall;
}

int
loop_run(struct loop *loop)
{
    struct epoll_event events[LOOP_MAX_EVENTS];
    while (!loop->stopping) {
        int n = sys_epoll_wait(loop->epfd, events, LOOP_MAX_EVENTS, next_timeout(loop));
        update_time(loop);
        take_yielded(loop);
        for (int i = 0; i < n; i++)
            ((struct loop_io *)events[i].data.ptr)->ready = events[i].events;
        for (int i = 0; i < n; i++) {
            struct loop_io *io = events[i].data.ptr;
            io->ready = 0;
            if (io->registered)
                io->cb(io, events[i].events);
        }
        run_timers(loop);
        run_deferred(loop);
    }
    return 0;
}

void
loop_stop(struct loop *loop)
{
    loop->stopping = true;
}

void
loop_set_wake_cb(struct loop *loop, void (*cb)(struct loop *loop, void *arg), void *arg)
{
    loop->wake_cb = cb;
    loop->wake_arg = arg;
}

void
loop_wake(struct loop *loop)
{
    uint64_t one = 1;
    if (write(loop->wake_io.fd, &one, sizeof(one)) < 0) {
        /* EAGAIN: a wake-up is already pending */
    }
}
