/* loop.h - one epoll event loop per thread: fd readiness, timers (binary heap), work
 * deferred to the end of the iteration (safe close), and a cross-thread wake-up. */
#ifndef VERGE_CORE_LOOP_H
#define VERGE_CORE_LOOP_H

#include "core/base.h"

#include <sys/epoll.h>
#include <sys/uio.h>
#include <sys/types.h>

struct loop;
struct loop_io;
struct loop_timer;
struct loop_defer;

typedef void (*loop_io_cb)(struct loop_io *io, uint32_t events);
typedef void (*loop_timer_cb)(struct loop_timer *t);
typedef void (*loop_defer_cb)(struct loop_defer *d);

/* Embedded in its owner; epoll's data.ptr points at it. */
struct loop_io {
    int fd;
    uint32_t events; /* EPOLLIN / EPOLLOUT currently watched (level-triggered) */
    uint32_t ready;  /* what epoll reported for it in the batch being dispatched, until
                      * its callback runs: another callback can see that it is pending */
    bool registered;
    loop_io_cb cb;
};

/* Embedded in its owner. heap_index == 0 means not armed; stopping twice is harmless. */
struct loop_timer {
    uint64_t due; /* ms, monotonic; LOOP_TIMER_PARKED: parked */
    uint64_t key; /* its place in the heap: due when it was put there (loop.c) */
    size_t heap_index;
    loop_timer_cb cb;
};

/* Embedded in its owner: cb runs once at the end of the current iteration. */
struct loop_defer {
    struct loop_defer *next;
    bool queued;
    loop_defer_cb cb;
};

struct loop *loop_new(void);
void loop_free(struct loop **loop);

/* Register fd with the given EPOLLIN/EPOLLOUT interest. 0 or -errno. */
int loop_io_start(struct loop *loop, struct loop_io *io, int fd, uint32_t events, loop_io_cb cb);
/* Change the interest set; no system call when it is unchanged. */
void loop_io_set(struct loop *loop, struct loop_io *io, uint32_t events);
/* Deregister (before close). Harmless when not registered. */
void loop_io_stop(struct loop *loop, struct loop_io *io);
/* Close io's fd, and with it its registration: the kernel drops an epoll registration at
 * the last close of the file it names, and that close is this one for an fd that was
 * never duplicated, passed or inherited (Verge's serve process neither forks nor dups), so
 * no EPOLL_CTL_DEL first (nginx skips it the same way). Events of this batch for it are
 * not dispatched. */
void loop_io_close(struct loop *loop, struct loop_io *io);

void loop_timer_init(struct loop_timer *t, loop_timer_cb cb);
/* (Re)arm t to fire after ms milliseconds from the loop's current time. */
void loop_timer_set(struct loop *loop, struct loop_timer *t, uint64_t ms);
void loop_timer_stop(struct loop *loop, struct loop_timer *t);
/* Stop t without taking it out of the heap (free: no other timer is touched): it never
 * fires, and a later loop_timer_set is as cheap. Its owner still calls loop_timer_stop
 * before its memory goes. */
#define LOOP_TIMER_PARKED UINT64_MAX
void loop_timer_park(struct loop *loop, struct loop_timer *t);
static inline bool
loop_timer_armed(const struct loop_timer *t)
{
    return t->heap_index != 0 && t->due != LOOP_TIMER_PARKED;
}

void loop_defer_init(struct loop_defer *d, loop_defer_cb cb);
/* cb runs at the end of this iteration (work queued while deferred work runs runs too).
 * Queuing a queued d does nothing. */
void loop_defer(struct loop *loop, struct loop_defer *d);
/* cb runs at the end of the next iteration, after its poll (which then does not wait):
 * for work that gives the other connections their turn first. */
void loop_yield(struct loop *loop, struct loop_defer *d);
/* d does not run (before its owner goes away). Harmless when not queued. */
void loop_defer_cancel(struct loop *loop, struct loop_defer *d);

/* Sends made at the end of the iteration, all of that turn's in one system call: an
 * io_uring submission where the kernel allows one (loop_sends_batched), else one send()
 * each. Each is a non-blocking send (MSG_DONTWAIT: the kernel never waits for room), so
 * its result is known when the flush returns, as a send()'s is.
 *
 * Why: a worker that writes to an origin on its own CPU wakes it, and each write's return
 * to user space is where the scheduler may switch to it: one switch per few requests.
 * Written together, the origin is woken once for the lot (bench/README.md: the pass-through
 * spends a fifth less CPU). The owner keeps the bytes until done runs: fill names them at
 * the flush, so bytes appended after the send was queued go with it. */
struct loop_send;
/* The bytes to send now: false when there are none (the send is dropped, done not run). */
typedef bool (*loop_send_fill_cb)(struct loop_send *s, const void **data, size_t *len);
/* The same as up to max pieces (a sendmsg): their count, 0 when there are none. */
typedef int (*loop_send_fill_iov_cb)(struct loop_send *s, struct iovec *iov, int max);
/* n bytes went (possibly fewer than filled), or n is -errno (-EAGAIN: no room). */
typedef void (*loop_send_done_cb)(struct loop_send *s, ssize_t n);

#define LOOP_SEND_IOV 16 /* pieces one send may have */

/* Embedded in its owner, like a loop_io. */
struct loop_send {
    struct loop_send *next, **pprev; /* in the loop's queue while pprev != NULL */
    int fd;
    int slot; /* its index in the flush being made, -1 when in none */
    loop_send_fill_cb fill;
    loop_send_fill_iov_cb fill_iov; /* instead of fill when set */
    loop_send_done_cb done;
};

void loop_send_init(struct loop_send *s, int fd, loop_send_fill_cb fill, loop_send_done_cb done);
void loop_send_init_iov(struct loop_send *s, int fd, loop_send_fill_iov_cb fill,
                        loop_send_done_cb done);
/* Send at the end of this iteration. Queuing a queued s does nothing. A send queued from a
 * done callback goes in a further flush of the same iteration. */
void loop_send_queue(struct loop *loop, struct loop_send *s);
static inline bool
loop_send_queued(const struct loop_send *s)
{
    return s->pprev != NULL;
}
/* s is not sent, or its done does not run if its flush is under way (before its owner or
 * its fd goes away). Harmless when not queued. */
void loop_send_cancel(struct loop *loop, struct loop_send *s);
/* Whether this process's loops batch their sends in io_uring (io_uring: on, the default,
 * and a kernel that lets the first loop set one up). Known once a loop runs. */
bool loop_sends_batched(void);
/* false: io_uring: false in the configuration. Before any loop runs. */
void loop_sends_use_io_uring(bool on);

/* Receives through the loop's io_uring: a multishot receive per connection, into buffers the
 * loop lends, so that a turn's reads cost no system call of their own (the loop's one wait
 * brings them all; bench/README.md). Only where the loop waits in its ring (a ring set up
 * with DEFER_TASKRUN, Linux 6.1) and the kernel lends it buffers: loop_receives says so;
 * elsewhere the owner reads on EPOLLIN as before. */
struct loop_recv;
struct loop_recv_op;
/* n > 0: n bytes at data, valid during the call only; 0: the peer closed its side; < 0:
 * -errno, the connection broke. Once 0 or < 0 came, no more calls (loop_recv_want again
 * does not restart it). A call may come after loop_recv_want(false) for bytes received
 * before it: the owner keeps them. */
typedef void (*loop_recv_cb)(struct loop_recv *r, const char *data, ssize_t n);

/* Embedded in its owner. */
struct loop_recv {
    struct loop_recv_op *op; /* the receive in the ring, NULL when none */
    int fd;
    bool want;  /* the owner wants bytes */
    bool ended; /* 0 or an error came */
    loop_recv_cb cb;
};

bool loop_receives(struct loop *loop);
/* The bytes a loop lends its receives in all: the most a stopped receive can still bring
 * (what the ring took before the stop took effect), which its owner must keep. */
size_t loop_recv_lent(void);
void loop_recv_init(struct loop_recv *r, int fd, loop_recv_cb cb);
/* Start (true) or stop (false) receiving; nothing when that did not change. */
void loop_recv_want(struct loop *loop, struct loop_recv *r, bool want);
/* No more calls, before its owner goes or its fd is closed. Harmless when not started. */
void loop_recv_stop(struct loop *loop, struct loop_recv *r);

/* Monotonic milliseconds, read once per iteration. */
uint64_t loop_now(const struct loop *loop);
/* Wall clock (seconds since the epoch, with microseconds), read once per iteration. */
double loop_wall(const struct loop *loop);

/* Run until loop_stop. Returns 0. */
int loop_run(struct loop *loop);
/* Stop after the current iteration; callable from the loop's own thread only. */
void loop_stop(struct loop *loop);

/* Cross-thread wake-up: any thread may call loop_wake; cb then runs in the loop's thread. */
void loop_set_wake_cb(struct loop *loop, void (*cb)(struct loop *loop, void *arg), void *arg);
void loop_wake(struct loop *loop);

/* Monotonic clock in ms, outside any loop. */
uint64_t loop_clock_ms(void);

#endif
