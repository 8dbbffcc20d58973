/* test_loop.c - deferred work: loop_defer runs within the iteration, loop_yield after the
 * next poll (I/O that became ready goes first), loop_defer_cancel keeps either from
 * running; events of a batch not yet dispatched show in io.ready. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <string.h>
#include <sys/socket.h>
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


/* Batched sends (loop_send): what each owner sees is what one send() would have told it,
 * whether the turn's sends went in one io_uring submission or one by one. */
struct sender {
    struct loop_send s;
    const char *text[3]; /* what fill offers, turn by turn; NULL: nothing more */
    int turn;
    ssize_t got[3];
    int ndone;
    struct sender *cancels; /* done cancels this one */
    bool again;             /* done queues itself again */
};
static struct sender senders[3];
static int nfills;

static bool
sender_fill(struct loop_send *s, const void **data, size_t *len)
{
    struct sender *x = container_of(s, struct sender, s);
    nfills++;
    if (x->text[x->turn] == NULL)
        return false;
    *data = x->text[x->turn];
    *len = strlen(x->text[x->turn]);
    return true;
}

static void
sender_done(struct loop_send *s, ssize_t n)
{
    struct sender *x = container_of(s, struct sender, s);
    x->got[x->ndone++] = n;
    x->turn++;
    if (x->cancels != NULL)
        loop_send_cancel(loop, &x->cancels->s);
    if (x->again) {
        x->again = false;
        loop_send_queue(loop, s);
    }
}

static void
on_queue_sends(struct loop_timer *t)
{
    for (int i = 0; i < 3; i++)
        if (senders[i].s.fill != NULL) {
            loop_send_queue(loop, &senders[i].s);
            loop_send_queue(loop, &senders[i].s); /* queued once */
        }
    loop_stop(loop); /* after this turn, and so after its flush */
}

static void
run_one_turn(void)
{
    struct loop_timer t;
    loop_timer_init(&t, on_queue_sends);
    loop_timer_set(loop, &t, 0);
    loop_run(loop);
}

static void
read_exactly(int fd, const char *want)
{
    char b[64] = {0};
    assert_int_equal(read(fd, b, sizeof(b) - 1), (ssize_t)strlen(want));
    assert_string_equal(b, want);
}

static void
sends_deliver_and_report(bool ring)
{
    int p[3][2];
    loop_sends_use_io_uring(ring);
    loop = loop_new();
    memset(senders, 0, sizeof(senders));
    nfills = 0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p[i]), 0);
        loop_send_init(&senders[i].s, p[i][0], sender_fill, sender_done);
    }
    /* 0: two pieces, the second queued by its own done in the same turn */
    senders[0].text[0] = "head;";
    senders[0].text[1] = "body";
    senders[0].again = true;
    /* 1: its peer is gone: -EPIPE, and no SIGPIPE (the test would die of it) */
    senders[1].text[0] = "lost";
    close(p[1][1]);
    /* 2: a full socket: -EAGAIN, nothing lost */
    senders[2].text[0] = "late";
    static char fill[1 << 16];
    while (send(p[2][0], fill, sizeof(fill), MSG_DONTWAIT) > 0) {
    }
    run_one_turn();
    assert_int_equal(senders[0].ndone, 2);
    assert_int_equal(senders[0].got[0], 5);
    assert_int_equal(senders[0].got[1], 4);
    read_exactly(p[0][1], "head;body");
    assert_int_equal(senders[1].ndone, 1);
    assert_int_equal(senders[1].got[0], -EPIPE);
    assert_int_equal(senders[2].ndone, 1);
    assert_int_equal(senders[2].got[0], -EAGAIN);
    /* a send cancelled before the flush is never filled; one cancelled by an earlier done
     * of the same flush is sent or not, but its done does not run */
    loop_free(&loop); /* stopped: a new one for the next turn */
    loop = loop_new();
    memset(senders, 0, sizeof(senders));
    nfills = 0;
    for (int i = 0; i < 3; i++)
        loop_send_init(&senders[i].s, p[0][0], sender_fill, sender_done);
    senders[0].text[0] = "a";
    senders[0].cancels = &senders[1];
    senders[1].text[0] = "b";
    senders[2].text[0] = "c";
    struct sender *gone = &senders[2];
    loop_send_queue(loop, &gone->s);
    loop_send_cancel(loop, &gone->s);
    loop_send_cancel(loop, &gone->s); /* harmless twice */
    gone->s.fill = NULL;              /* on_queue_sends skips it */
    run_one_turn();
    assert_int_equal(nfills, 2);
    assert_int_equal(senders[0].ndone, 1);
    assert_int_equal(senders[1].ndone, 0);
    assert_int_equal(senders[2].ndone, 0);
    for (int i = 0; i < 3; i++) {
        close(p[i][0]);
        if (i != 1)
            close(p[i][1]);
    }
    loop_free(&loop);
}

static void
test_sends_in_one_submission_report_as_send_would(void **state)
{
    sends_deliver_and_report(true);
    /* where this kernel lets a process set up a ring, the loop used one */
    struct io_uring probe;
    if (io_uring_queue_init(4, &probe, 0) == 0) {
        io_uring_queue_exit(&probe);
        assert_true(loop_sends_batched());
    }
}

static void
test_sends_one_by_one_report_the_same(void **state)
{
    sends_deliver_and_report(false);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yielded_work_runs_after_the_next_poll_and_cancelled_work_never),
        cmocka_unit_test(test_events_pending_in_the_batch_show_in_ready),
        cmocka_unit_test(test_timers_moved_later_or_parked_fire_in_order_and_never_early),
        cmocka_unit_test(test_sends_in_one_submission_report_as_send_would),
        cmocka_unit_test(test_sends_one_by_one_report_the_same),
    };
    return cmocka_run_group_tests_name("loop", tests, NULL, NULL);
}
