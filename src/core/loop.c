/* loop.c - the epoll event loop: poll, run I/O, run expired timers, run deferred work,
 * make the turn's sends together. */
#include "core/loop.h"

#include "core/log.h"
#include "core/sys.h"

#include <liburing.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 256
#define LOOP_SEND_BATCH 256 /* sends in one submission; the ring has as many entries */

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
    struct loop_send *send_head, **send_tail;
    struct {
        struct loop_send *s; /* NULL: cancelled */
        const void *data;
        size_t len;
        ssize_t result;
    } batch[LOOP_SEND_BATCH]; /* the flush under way */
    int ring_state; /* 0: not tried yet, 1: ring set up, -1: one send() each */
    struct io_uring ring;
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
    loop->send_tail = &loop->send_head;
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
    if (loop->ring_state == 1)
        io_uring_queue_exit(&loop->ring);
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

/* ---------------------------------------------------------------- batched sends */

static bool use_io_uring = true;
static atomic_int sends_batched; /* 0: no loop has flushed yet, 1: io_uring, -1: send() */

void
loop_sends_use_io_uring(bool on)
{
    use_io_uring = on;
}

bool
loop_sends_batched(void)
{
    return atomic_load(&sends_batched) == 1;
}

void
loop_send_init(struct loop_send *s, int fd, loop_send_fill_cb fill, loop_send_done_cb done)
{
    *s = (struct loop_send){.fd = fd, .slot = -1, .fill = fill, .done = done};
}

void
loop_send_queue(struct loop *loop, struct loop_send *s)
{
    if (s->pprev != NULL)
        return;
    s->next = NULL;
    s->pprev = loop->send_tail;
    *loop->send_tail = s;
    loop->send_tail = &s->next;
}

static void
send_unlink(struct loop *loop, struct loop_send *s)
{
    *s->pprev = s->next;
    if (s->next != NULL)
        s->next->pprev = s->pprev;
    else
        loop->send_tail = s->pprev;
    s->next = NULL;
    s->pprev = NULL;
}

void
loop_send_cancel(struct loop *loop, struct loop_send *s)
{
    if (s->pprev != NULL)
        send_unlink(loop, s);
    if (s->slot >= 0) {
        loop->batch[s->slot].s = NULL;
        s->slot = -1;
    }
}

/* The ring, set up in the loop's own thread at its first flush: it is the only thread that
 * submits (SINGLE_ISSUER), and completions are posted only when it asks (DEFER_TASKRUN;
 * a non-blocking send completes within the submission anyway). Kernels before 6.1 lack
 * those flags: a plain ring then. Where io_uring is refused (a seccomp filter, the
 * io_uring_disabled sysctl, a kernel before 5.1) the loop sends one by one. */
static void
ring_setup(struct loop *loop)
{
    loop->ring_state = -1;
    int err = -ENOSYS;
    if (use_io_uring) {
        struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER |
                                             IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL};
        err = io_uring_queue_init_params(LOOP_SEND_BATCH, &loop->ring, &p);
        if (err == -EINVAL) {
            struct io_uring_params plain = {0};
            err = io_uring_queue_init_params(LOOP_SEND_BATCH, &loop->ring, &plain);
        }
        if (err == 0)
            loop->ring_state = 1;
    }
    int was = 0;
    if (atomic_compare_exchange_strong(&sends_batched, &was, err == 0 ? 1 : -1)) {
        if (err == 0)
            log_info("sends: each loop turn's sends in one io_uring submission");
        else if (use_io_uring)
            log_warn("sends: io_uring refused by this kernel (%s); one send() each (a "
                     "worker sharing its CPU with an origin spends more); allow io_uring "
                     "(seccomp profile, kernel.io_uring_disabled), or set \"io_uring: "
                     "false\" to silence this",
                     strerror(-err));
    }
}

/* The n sends in loop->batch, each in one send(). */
static void
send_each(struct loop *loop, int n)
{
    for (int i = 0; i < n; i++) {
        ssize_t k;
        do {
            k = send(loop->batch[i].s->fd, loop->batch[i].data, loop->batch[i].len,
                     MSG_DONTWAIT | MSG_NOSIGNAL);
        } while (k < 0 && errno == EINTR);
        loop->batch[i].result = k < 0 ? -errno : k;
    }
}

/* The n sends in one submission; false, with the ring given up, when the kernel took none
 * of them (the caller then sends them one by one). */
static bool
send_ring(struct loop *loop, int n)
{
    for (int i = 0; i < n; i++) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&loop->ring);
        io_uring_prep_send(sqe, loop->batch[i].s->fd, loop->batch[i].data, loop->batch[i].len,
                           MSG_DONTWAIT | MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, (uint64_t)i);
    }
    int r = io_uring_submit_and_wait(&loop->ring, (unsigned)n);
    if (r < 0 && r != -EINTR && io_uring_sq_ready(&loop->ring) == (unsigned)n) {
        log_warn("sends: io_uring submission failed (%s); one send() each from now on",
                 strerror(-r));
        io_uring_queue_exit(&loop->ring);
        loop->ring_state = -1;
        return false;
    }
    for (int got = 0; got < n;) {
        struct io_uring_cqe *cqe;
        int w = io_uring_wait_cqe(&loop->ring, &cqe);
        if (w == -EINTR)
            continue;
        if (w < 0) {
            log_error("sends: io_uring completion lost (%s)", strerror(-w));
            abort(); /* the owners' bytes may still be read by the kernel */
        }
        loop->batch[cqe->user_data].result = cqe->res;
        io_uring_cqe_seen(&loop->ring, cqe);
        got++;
    }
    return true;
}

/* Up to LOOP_SEND_BATCH of the queued sends, then their owners told. */
static void
flush_sends(struct loop *loop)
{
    if (loop->ring_state == 0)
        ring_setup(loop);
    int n = 0;
    while (loop->send_head != NULL && n < LOOP_SEND_BATCH) {
        struct loop_send *s = loop->send_head;
        send_unlink(loop, s);
        if (!s->fill(s, &loop->batch[n].data, &loop->batch[n].len))
            continue;
        s->slot = n;
        loop->batch[n++].s = s;
    }
    if (n == 0)
        return;
    if (loop->ring_state != 1 || !send_ring(loop, n))
        send_each(loop, n);
    for (int i = 0; i < n; i++) {
        struct loop_send *s = loop->batch[i].s;
        if (s == NULL)
            continue; /* cancelled by an earlier done */
        loop->batch[i].s = NULL;
        s->slot = -1;
        s->done(s, loop->batch[i].result);
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
        while (loop->send_head != NULL) { /* a done may send again, or defer work that does */
            flush_sends(loop);
            run_deferred(loop);
        }
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
