/* test_loop.c - deferred work: loop_defer runs within the iteration, loop_yield after the
 * next poll (I/O that became ready goes first), loop_defer_cancel keeps either from
 * running; events of a batch not yet dispatched show in io.ready. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <unistd.h>

#include "core/loop.h"

static struct loop *loop;
static char order[16]; /* what ran, in order: d(efer), i(o), y(ield) */
static size_t norder;
static struct loop_defer deferred, yielded, cancelled_defer, cancelled_yield;
static struct loop_io reader;
static int pipe_fds[2];

static void
on_deferred(struct loop_defer *d)
{
    order[norder++] = 'd';
}

static void
on_yielded(struct loop_defer *d)
{
    order[norder++] = 'y';
    loop_stop(loop);
}

static void
on_never(struct loop_defer *d)
{
    order[norder++] = 'x';
}

static void
on_readable(struct loop_io *io, uint32_t events)
{
    char b;
    if (read(io->fd, &b, 1) == 1)
        order[norder++] = 'i';
}

/* From inside an iteration: make the pipe readable, then queue the work. */
static void
on_start(struct loop_timer *t)
{
    assert_int_equal(write(pipe_fds[1], "x", 1), 1);
    loop_yield(loop, &yielded);
    loop_yield(loop, &yielded); /* queued once */
    loop_defer(loop, &deferred);
    loop_defer(loop, &cancelled_defer);
    loop_yield(loop, &cancelled_yield);
    loop_defer_cancel(loop, &cancelled_defer);
    loop_defer_cancel(loop, &cancelled_yield);
    loop_defer_cancel(loop, &cancelled_yield); /* harmless twice */
}

static void
test_yielded_work_runs_after_the_next_poll_and_cancelled_work_never(void **state)
{
    struct loop_timer start;
    loop = loop_new();
    assert_int_equal(pipe(pipe_fds), 0);
    loop_defer_init(&deferred, on_deferred);
    loop_defer_init(&yielded, on_yielded);
    loop_defer_init(&cancelled_defer, on_never);
    loop_defer_init(&cancelled_yield, on_never);
    assert_int_equal(loop_io_start(loop, &reader, pipe_fds[0], EPOLLIN, on_readable), 0);
    loop_timer_init(&start, on_start);
    loop_timer_set(loop, &start, 0);
    loop_run(loop);
    order[norder] = '\0';
    assert_string_equal(order, "diy");
    loop_io_stop(loop, &reader);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    loop_free(&loop);
}

/* Two sockets made readable before one poll: the callback that runs first sees the other's
 * event pending in io.ready (an idle origin connection closed in the same batch is not
 * reused: upstream.c conn_clean); the one that runs second sees the first's cleared. */
static struct loop_io pair_io[2];
static uint32_t seen_other[2];
static int ncalls;

static void
on_pair(struct loop_io *io, uint32_t events)
{
    int me = io == &pair_io[0] ? 0 : 1;
    char b;
    assert_int_equal(read(io->fd, &b, 1), 1);
    assert_int_equal(io->ready, 0);
    seen_other[me] = pair_io[1 - me].ready;
    if (++ncalls == 2)
        loop_stop(loop);
}

static void
test_events_pending_in_the_batch_show_in_ready(void **state)
{
    int a[2], b[2];
    loop = loop_new();
    assert_int_equal(pipe(a), 0);
    assert_int_equal(pipe(b), 0);
    assert_int_equal(write(a[1], "x", 1), 1);
    assert_int_equal(write(b[1], "x", 1), 1);
    assert_int_equal(loop_io_start(loop, &pair_io[0], a[0], EPOLLIN, on_pair), 0);
    assert_int_equal(loop_io_start(loop, &pair_io[1], b[0], EPOLLIN, on_pair), 0);
    loop_run(loop);
    assert_int_equal(ncalls, 2);
    assert_true((seen_other[0] & EPOLLIN) != 0 || (seen_other[1] & EPOLLIN) != 0);
    assert_true(seen_other[0] == 0 || seen_other[1] == 0);
    loop_io_stop(loop, &pair_io[0]);
    loop_io_stop(loop, &pair_io[1]);
    for (int i = 0; i < 2; i++) {
        close(a[i]);
        close(b[i]);
    }
    loop_free(&loop);
}

/* Timers moved later or parked stay where they were in the heap (loop.c): they still fire
 * in the order of their deadlines now, never before them, and a parked one never. */
struct fired {
    struct loop_timer t;
    char name;
    uint64_t due_ms; /* after the start */
};
static struct fired timers[5];
static char fired_order[8];
static int nfired;
static uint64_t started;

static void
on_fired(struct loop_timer *t)
{
    struct fired *f = container_of(t, struct fired, t);
    if (loop_now(loop) < started + f->due_ms)
        fail_msg("timer %c fired at %llu ms, before its %llu", f->name,
                 (unsigned long long)(loop_now(loop) - started), (unsigned long long)f->due_ms);
    fired_order[nfired++] = f->name;
    if (f->name == 'd')
        loop_stop(loop);
}

static void
test_timers_moved_later_or_parked_fire_in_order_and_never_early(void **state)
{
    loop = loop_new();
    started = loop_now(loop);
    const char names[] = "abcdp";
    for (int i = 0; i < 5; i++) {
        timers[i].name = names[i];
        loop_timer_init(&timers[i].t, on_fired);
    }
    struct loop_timer *a = &timers[0].t, *b = &timers[1].t, *c = &timers[2].t,
                      *d = &timers[3].t, *p = &timers[4].t;
    loop_timer_set(loop, a, 500); /* moved earlier: to 10 */
    loop_timer_set(loop, a, 10);
    timers[0].due_ms = 10;
    loop_timer_set(loop, b, 20); /* parked, then set again: 40 */
    loop_timer_park(loop, b);
    assert_false(loop_timer_armed(b));
    loop_timer_set(loop, b, 40);
    assert_true(loop_timer_armed(b));
    timers[1].due_ms = 40;
    loop_timer_set(loop, c, 60);
    timers[2].due_ms = 60;
    loop_timer_set(loop, d, 30); /* moved later: 90 */
    loop_timer_set(loop, d, 90);
    timers[3].due_ms = 90;
    loop_timer_set(loop, p, 20); /* parked: never */
    loop_timer_park(loop, p);
    loop_run(loop);
    fired_order[nfired] = '\0';
    assert_string_equal(fired_order, "abcd");
    assert_true(loop_timer_armed(&timers[4].t) == false);
    loop_timer_stop(loop, p);
    loop_free(&loop);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yielded_work_runs_after_the_next_poll_and_cancelled_work_never),
        cmocka_unit_test(test_events_pending_in_the_batch_show_in_ready),
        cmocka_unit_test(test_timers_moved_later_or_parked_fire_in_order_and_never_early),
    };
    return cmocka_run_group_tests_name("loop", tests, NULL, NULL);
}
