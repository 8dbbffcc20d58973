/* loop.c - the event loop: wait (in io_uring where the kernel allows it, with epoll's fd
 * polled there; else in epoll), run I/O, run expired timers, run deferred work, make the
 * turn's sends together. */
#include "core/loop.h"

#include "core/log.h"
#include "core/sys.h"

#include <liburing.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 256
#define LOOP_SEND_BATCH 256 /* sends in one submission; the ring has as many entries */
#define LOOP_RING_CQ 4096   /* completions the ring holds (multishot receives post many) */
#define LOOP_RECV_BUFS 256  /* buffers lent to receives (a power of two) ... */
#define LOOP_RECV_BUF (4 * 1024) /* ... of this size: 1 MiB a loop, touched as used */
#define LOOP_RECV_GROUP 0

/* What a completion is for: the low two bits of its user_data. */
enum { TAG_SEND = 0, TAG_RECV = 1, TAG_EPOLL = 2, TAG_QUIET = 3 };

/* A multishot receive in the ring. Owned by the loop, not by the loop_recv: its completions
 * may still come after the owner stopped it and went away (r is NULL then). */
struct loop_recv_op {
    struct loop_recv *r;
    struct loop_recv_op *next_free, *all_next;
    bool cancelled;
};

/* A completion kept to be run at a safe point (not inside a flush). */
struct cqe_copy {
    uint64_t data;
    int32_t res;
    uint32_t flags;
};

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
        struct msghdr msg;
        struct iovec iov[LOOP_SEND_IOV];
        ssize_t result;
    } batch[LOOP_SEND_BATCH]; /* the flush under way */
    int sends_left;           /* of it, completions not reaped yet */
    int ring_state; /* 0: not tried yet, 1: ring set up, -1: one send() each */
    bool ring_deferred; /* set up with DEFER_TASKRUN: the loop may wait in it */
    struct io_uring ring;
    bool epoll_polled; /* the ring's multishot poll of epfd is armed */
    bool epoll_ready;  /* it fired: epoll has events */
    bool epoll_hot;    /* the last epoll_wait returned some: level-triggered ones may remain */
    int recv_state;    /* 0: not tried yet, 1: receives in the ring, -1: none */
    struct io_uring_buf_ring *recv_ring;
    char *recv_bufs;
    struct loop_recv_op *op_free, *op_all;
    struct cqe_copy *stash; /* completions reaped, to run */
    size_t stash_len, stash_cap;
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
        io_uring_queue_exit(&loop->ring); /* ends every receive: their ops can go */
    while (loop->op_all != NULL) {
        struct loop_recv_op *op = loop->op_all;
        loop->op_all = op->all_next;
        free(op);
    }
    if (loop->recv_ring != NULL)
        munmap(loop->recv_ring, LOOP_RECV_BUFS * sizeof(struct io_uring_buf));
    free(loop->recv_bufs);
    free(loop->stash);
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
loop_send_init_iov(struct loop_send *s, int fd, loop_send_fill_iov_cb fill, loop_send_done_cb done)
{
    *s = (struct loop_send){.fd = fd, .slot = -1, .fill_iov = fill, .done = done};
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

/* The ring, set up in the loop's own thread before its first turn: it is the only thread
 * that submits (SINGLE_ISSUER), and completions are posted only when it asks
 * (DEFER_TASKRUN; a non-blocking send completes within the submission anyway). With those
 * flags (Linux 6.1) the loop waits in the ring, and receives can go through it; kernels
 * before 6.1 get a plain ring for the sends alone. Where io_uring is refused (a seccomp
 * filter, the io_uring_disabled sysctl, a kernel before 5.1) the loop sends one by one. */
static void
ring_setup(struct loop *loop)
{
    loop->ring_state = -1;
    int err = -ENOSYS;
    if (use_io_uring) {
        struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER |
                                             IORING_SETUP_DEFER_TASKRUN |
                                             IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE,
                                    .cq_entries = LOOP_RING_CQ};
        err = io_uring_queue_init_params(LOOP_SEND_BATCH, &loop->ring, &p);
        loop->ring_deferred = err == 0;
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
            log_info("sends: each loop turn's sends in one io_uring submission%s",
                     loop->ring_deferred ? "; visitor reads in the same ring" : "");
        else if (use_io_uring)
            log_warn("sends: io_uring refused by this kernel (%s); one send() each (a "
                     "worker sharing its CPU with an origin spends more); allow io_uring "
                     "(seccomp profile, kernel.io_uring_disabled), or set \"io_uring: "
                     "false\" to silence this",
                     strerror(-err));
    }
}

/* A free submission entry; the ring is submitted to make room when it is full (what that
 * completes is reaped and kept for later). */
static void reap(struct loop *loop);

static struct io_uring_sqe *
ring_sqe(struct loop *loop)
{
    struct io_uring_sqe *sqe;
    while ((sqe = io_uring_get_sqe(&loop->ring)) == NULL) {
        io_uring_submit(&loop->ring);
        reap(loop);
    }
    return sqe;
}

static void
stash_push(struct loop *loop, uint64_t data, int32_t res, uint32_t flags)
{
    if (loop->stash_len == loop->stash_cap) {
        loop->stash_cap = loop->stash_cap ? loop->stash_cap * 2 : 64;
        loop->stash = xrealloc(loop->stash, loop->stash_cap * sizeof(*loop->stash));
    }
    loop->stash[loop->stash_len++] = (struct cqe_copy){data, res, flags};
}

/* Take every completion: a send's result into its batch entry, the epoll poll's into
 * flags, a receive's kept to run (run_stash), which may not happen inside a flush. */
static void
reap(struct loop *loop)
{
    struct io_uring_cqe *cqe;
    while (io_uring_peek_cqe(&loop->ring, &cqe) == 0) {
        uint64_t data = cqe->user_data;
        int32_t res = cqe->res;
        uint32_t flags = cqe->flags;
        io_uring_cqe_seen(&loop->ring, cqe);
        switch (data & 3) {
        case TAG_SEND:
            loop->batch[data >> 2].result = res;
            loop->sends_left--;
            break;
        case TAG_RECV:
            stash_push(loop, data, res, flags);
            break;
        case TAG_EPOLL:
            loop->epoll_ready = true;
            if (!(flags & IORING_CQE_F_MORE))
                loop->epoll_polled = false; /* armed again before the next wait */
            break;
        default: /* a cancellation's own result */
            break;
        }
    }
}

/* ---- receives ---- */

bool
loop_receives(struct loop *loop)
{
    if (loop->ring_state == 0)
        ring_setup(loop);
    if (loop->recv_state != 0)
        return loop->recv_state == 1;
    loop->recv_state = -1;
    if (loop->ring_state != 1 || !loop->ring_deferred)
        return false;
    size_t ring_size = LOOP_RECV_BUFS * sizeof(struct io_uring_buf);
    void *br = mmap(NULL, ring_size, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (br == MAP_FAILED)
        return false;
    struct io_uring_buf_reg reg = {
        .ring_addr = (uintptr_t)br, .ring_entries = LOOP_RECV_BUFS, .bgid = LOOP_RECV_GROUP};
    int err = io_uring_register_buf_ring(&loop->ring, &reg, 0);
    if (err < 0) {
        log_info("receives: the kernel lends no buffers to io_uring (%s); reading on readiness",
                 strerror(-err));
        munmap(br, ring_size);
        return false;
    }
    loop->recv_ring = br;
    loop->recv_bufs = xmalloc((size_t)LOOP_RECV_BUFS * LOOP_RECV_BUF);
    io_uring_buf_ring_init(loop->recv_ring);
    for (int i = 0; i < LOOP_RECV_BUFS; i++)
        io_uring_buf_ring_add(loop->recv_ring, loop->recv_bufs + (size_t)i * LOOP_RECV_BUF,
                              LOOP_RECV_BUF, (unsigned short)i,
                              io_uring_buf_ring_mask(LOOP_RECV_BUFS), i);
    io_uring_buf_ring_advance(loop->recv_ring, LOOP_RECV_BUFS);
    loop->recv_state = 1;
    return true;
}

size_t
loop_recv_lent(void)
{
    return (size_t)LOOP_RECV_BUFS * LOOP_RECV_BUF;
}

void
loop_recv_init(struct loop_recv *r, int fd, loop_recv_cb cb)
{
    *r = (struct loop_recv){.fd = fd, .cb = cb};
}

static void
recv_arm(struct loop *loop, struct loop_recv *r)
{
    struct loop_recv_op *op = loop->op_free;
    if (op != NULL) {
        loop->op_free = op->next_free;
    } else {
        op = xcalloc(1, sizeof(*op));
        op->all_next = loop->op_all;
        loop->op_all = op;
    }
    op->r = r;
    op->cancelled = false;
    r->op = op;
    struct io_uring_sqe *sqe = ring_sqe(loop);
    io_uring_prep_recv_multishot(sqe, r->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = LOOP_RECV_GROUP;
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)op | TAG_RECV);
}

static void
recv_cancel(struct loop *loop, struct loop_recv_op *op)
{
    if (op->cancelled)
        return;
    op->cancelled = true;
    struct io_uring_sqe *sqe = ring_sqe(loop);
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op | TAG_RECV, 0);
    io_uring_sqe_set_data64(sqe, TAG_QUIET);
}

void
loop_recv_want(struct loop *loop, struct loop_recv *r, bool want)
{
    if (r->want == want)
        return;
    r->want = want;
    if (r->ended)
        return;
    if (want && r->op == NULL)
        recv_arm(loop, r);
    else if (!want && r->op != NULL)
        recv_cancel(loop, r->op);
    /* want again while a cancel is under way: armed again when it ends (run_recv) */
}

void
loop_recv_stop(struct loop *loop, struct loop_recv *r)
{
    r->want = false;
    if (r->op == NULL)
        return;
    r->op->r = NULL;
    recv_cancel(loop, r->op);
    r->op = NULL;
}

/* One receive completion: its bytes to the owner, its buffer back to the ring; when the
 * receive ended (no F_MORE: the owner stopped it, no buffer was free, an end or an error),
 * its op goes, and it is armed again if the owner still wants bytes. */
static void
run_recv(struct loop *loop, const struct cqe_copy *c)
{
    struct loop_recv_op *op = (struct loop_recv_op *)(uintptr_t)(c->data & ~(uint64_t)3);
    bool more = (c->flags & IORING_CQE_F_MORE) != 0;
    char *buf = NULL;
    unsigned bid = c->flags >> IORING_CQE_BUFFER_SHIFT;
    if (c->flags & IORING_CQE_F_BUFFER)
        buf = loop->recv_bufs + (size_t)bid * LOOP_RECV_BUF;
    if (op->r != NULL && c->res != -ENOBUFS && c->res != -ECANCELED) {
        if (c->res <= 0)
            op->r->ended = true; /* the end, with a buffer or without */
        op->r->cb(op->r, buf, c->res); /* may stop it: op->r is NULL then */
    }
    if (buf != NULL) {
        io_uring_buf_ring_add(loop->recv_ring, buf, LOOP_RECV_BUF, (unsigned short)bid,
                              io_uring_buf_ring_mask(LOOP_RECV_BUFS), 0);
        io_uring_buf_ring_advance(loop->recv_ring, 1);
    }
    if (more)
        return;
    struct loop_recv *r = op->r;
    op->r = NULL;
    op->next_free = loop->op_free;
    loop->op_free = op;
    if (r == NULL)
        return;
    r->op = NULL;
    if (r->want && !r->ended)
        recv_arm(loop, r);
}

/* The receives reaped so far, in order (a callback may reap more: they run too). */
static void
run_stash(struct loop *loop)
{
    for (size_t i = 0; i < loop->stash_len; i++) {
        struct cqe_copy c = loop->stash[i];
        run_recv(loop, &c);
    }
    loop->stash_len = 0;
}

/* ---- sends ---- */

/* The n sends in loop->batch, each in one sendmsg(). */
static void
send_each(struct loop *loop, int n)
{
    for (int i = 0; i < n; i++) {
        ssize_t k;
        do {
            k = sendmsg(loop->batch[i].s->fd, &loop->batch[i].msg, MSG_DONTWAIT | MSG_NOSIGNAL);
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
        struct io_uring_sqe *sqe = ring_sqe(loop);
        if (loop->batch[i].msg.msg_iovlen == 1)
            io_uring_prep_send(sqe, loop->batch[i].s->fd, loop->batch[i].iov[0].iov_base,
                               loop->batch[i].iov[0].iov_len, MSG_DONTWAIT | MSG_NOSIGNAL);
        else
            io_uring_prep_sendmsg(sqe, loop->batch[i].s->fd, &loop->batch[i].msg,
                                  MSG_DONTWAIT | MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, (uint64_t)i << 2 | TAG_SEND);
    }
    loop->sends_left = n;
    /* With DEFER_TASKRUN, asking for events also posts the receives that arrived during the
     * turn: under load the next turn starts from them without a wait of its own. */
    int r = loop->ring_deferred ? io_uring_submit_and_get_events(&loop->ring)
                                : io_uring_submit(&loop->ring);
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY && loop->recv_state != 1 &&
        io_uring_sq_ready(&loop->ring) >= (unsigned)n) {
        log_warn("sends: io_uring submission failed (%s); one send() each from now on",
                 strerror(-r));
        io_uring_queue_exit(&loop->ring);
        loop->ring_state = -1;
        return false;
    }
    reap(loop);
    while (loop->sends_left > 0) { /* a non-blocking send is done within its submission */
        int w = io_uring_submit_and_wait(&loop->ring, 1);
        if (w < 0 && w != -EINTR && w != -EAGAIN && w != -EBUSY && w != -ETIME) {
            log_error("sends: io_uring completion lost (%s)", strerror(-w));
            abort(); /* the owners' bytes may still be read by the kernel */
        }
        reap(loop);
    }
    return true;
}

/* Up to LOOP_SEND_BATCH of the queued sends, then their owners told. */
static void
flush_sends(struct loop *loop)
{
    int n = 0; /* the ring is set up: loop_run did it */
    while (loop->send_head != NULL && n < LOOP_SEND_BATCH) {
        struct loop_send *s = loop->send_head;
        send_unlink(loop, s);
        int k = 0;
        if (s->fill_iov != NULL) {
            k = s->fill_iov(s, loop->batch[n].iov, LOOP_SEND_IOV);
        } else {
            const void *data;
            size_t len;
            if (s->fill(s, &data, &len)) {
                loop->batch[n].iov[0] = (struct iovec){(void *)data, len};
                k = 1;
            }
        }
        if (k <= 0)
            continue;
        loop->batch[n].msg = (struct msghdr){.msg_iov = loop->batch[n].iov, .msg_iovlen = (size_t)k};
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

/* Wait in the ring: for receives, for epoll's fd (polled in the ring: every other fd's
 * readiness), for the next timer. One system call submits what the turn queued (receives
 * armed or cancelled) and waits. Returns epoll's events for this turn.
 *
 * When the last flush already brought receives, the turn starts from them without entering
 * the ring: what is queued goes with the next flush or wait. Epoll is then asked directly
 * if its poll fired, if it may hold more, or if the poll is only being armed again. */
static int
ring_wait(struct loop *loop, struct epoll_event *events, int timeout)
{
    bool rearmed = false;
    if (!loop->epoll_polled) {
        struct io_uring_sqe *sqe = ring_sqe(loop);
        io_uring_prep_poll_multishot(sqe, loop->epfd, POLLIN);
        io_uring_sqe_set_data64(sqe, TAG_EPOLL);
        loop->epoll_polled = true;
        rearmed = true;
    }
    if (loop->stash_len > 0) {
        if (!rearmed && !loop->epoll_ready && !loop->epoll_hot)
            return 0;
    } else {
        if (loop->epoll_hot || loop->epoll_ready)
            timeout = 0; /* what epoll still holds does not wake the poll again; what the
                          * last flush reaped from the poll is there now */
        if (timeout == 0) {
            io_uring_submit_and_get_events(&loop->ring);
        } else {
            struct __kernel_timespec ts = {.tv_sec = timeout / 1000,
                                           .tv_nsec = (long long)(timeout % 1000) * 1000000};
            struct io_uring_cqe *cqe;
            io_uring_submit_and_wait_timeout(&loop->ring, &cqe, 1, &ts, NULL);
        }
        reap(loop);
        if (!loop->epoll_ready && !loop->epoll_hot)
            return 0;
    }
    loop->epoll_ready = false;
    int n = sys_epoll_wait(loop->epfd, events, LOOP_MAX_EVENTS, 0);
    loop->epoll_hot = n > 0;
    return n;
}

int
loop_run(struct loop *loop)
{
    struct epoll_event events[LOOP_MAX_EVENTS];
    if (loop->ring_state == 0)
        ring_setup(loop);
    while (!loop->stopping) {
        int n = loop->ring_state == 1 && loop->ring_deferred
                    ? ring_wait(loop, events, next_timeout(loop))
                    : sys_epoll_wait(loop->epfd, events, LOOP_MAX_EVENTS, next_timeout(loop));
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
        run_stash(loop);
        run_timers(loop);
        run_deferred(loop);
        while (loop->send_head != NULL) {
            flush_sends(loop); /* a done may send again, or defer work that does */
            run_deferred(loop);
        } /* receives the flush reaped start the next turn */
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
