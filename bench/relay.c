/* relay.c - the benchmark's floor for a pass-through: a TCP relay that moves each
 * visitor's bytes to the origin and the origin's bytes back, and does nothing else. Each
 * accepted connection gets its own origin connection, opened at accept and kept for as
 * long as the visitor's (so its requests reuse it, as a proxy's kept-alive origin
 * connections are reused), with epoll, level-triggered, and no epoll_ctl unless a write is
 * left waiting: per request a read and a write on each side, the system calls every proxy
 * of a kept-alive origin makes at least. It parses no HTTP, rewrites no field, stores and
 * logs nothing: an HTTP proxy cannot spend less CPU per pass-through on the same machine,
 * as bench/fixed.c is the ceiling one hop cannot pass for hits.
 *
 * Its writes are made as Verge makes its origin writes (core/loop.h, loop_send): each turn
 * of the loop queues them, and the turn ends with all of them in one io_uring submission
 * (non-blocking sends, whose results are in when it returns), both directions. An origin
 * on the relay's CPU is then woken once per turn, not at every write, where the scheduler
 * would switch to it each time. RELAY_BATCH=0 writes each at once with write(), the floor of
 * a proxy without io_uring, and so does a kernel that refuses io_uring.
 *
 * Usage: relay THREADS PORT ORIGIN_PORT
 * 127.0.0.1 only; each thread has its own epoll loop and its own SO_REUSEPORT listener,
 * like a server with THREADS workers. Stops on SIGTERM or SIGINT. */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_THREADS 64
#define BUF_SIZE 65536 /* a read's most; what a write left waiting is kept here */
#define BATCH 256      /* writes in one submission; the ring has as many entries */

/* One direction of a pair: bytes read from one side and not yet written to the other. */
struct pending {
    char *data;
    size_t off, len;
    bool queued; /* in its thread's batch */
};

/* A visitor and its origin connection. end[0] is the visitor, end[1] the origin; each
 * epoll registration points at its end, whose side says which. */
struct pair;
struct end {
    struct pair *pair;
    int fd, side;
    unsigned interest; /* what epoll has for this fd */
};

struct pair {
    struct end end[2];
    struct pending to[2]; /* to[s]: waiting to be written to end[s] */
    bool closed;
    struct pair *next_closed;
};

struct thread {
    int epfd, listen_fd;
    char *buf;
    struct pair *closed; /* freed after the events of the wait that closed them */
    bool batch;          /* io_uring set up: writes wait for the end of the turn */
    struct io_uring ring;
    struct {
        struct pair *pair;
        int side;
    } queue[BATCH];
    int nqueue;
};

static int origin_port;
static volatile sig_atomic_t stopping;

static void
die(const char *what)
{
    fprintf(stderr, "relay: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void
on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static struct sockaddr_in
loopback(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static int
listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = loopback(port);
    if (fd < 0)
        die("socket");
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
        die("SO_REUSEPORT");
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        die("bind");
    if (listen(fd, 4096) < 0)
        die("listen");
    return fd;
}

/* The origin connection for a new visitor: a blocking connect (loopback answers it at
 * once; it happens once per visitor connection, not per request), then non-blocking. */
static int
connect_origin(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = loopback(origin_port);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
        fprintf(stderr, "relay: connect to the origin (port %d): %s\n", origin_port,
                strerror(errno));
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* What end e's fd should wait for: input unless the other side still has bytes of it
 * waiting (a slow reader holds back its writer), output while bytes wait for it. */
static void
update_interest(struct thread *t, struct end *e)
{
    struct pair *p = e->pair;
    unsigned want = (p->to[1 - e->side].len > 0 ? 0 : EPOLLIN) |
                    (p->to[e->side].len > 0 ? EPOLLOUT : 0);
    if (want == e->interest)
        return;
    struct epoll_event ev = {.events = want, .data.ptr = e};
    if (epoll_ctl(t->epfd, EPOLL_CTL_MOD, e->fd, &ev) < 0)
        die("epoll_ctl");
    e->interest = want;
}

static void
close_pair(struct thread *t, struct pair *p)
{
    if (p->closed)
        return;
    p->closed = true;
    for (int s = 0; s < 2; s++)
        close(p->end[s].fd);
    p->next_closed = t->closed;
    t->closed = p;
}

static void
free_closed(struct thread *t)
{
    while (t->closed != NULL) {
        struct pair *p = t->closed;
        t->closed = p->next_closed;
        for (int s = 0; s < 2; s++)
            free(p->to[s].data);
        free(p);
    }
}

/* Write to end s what waits for it (len 0), or the len bytes of data just read from the
 * other side, which comes only when nothing waits (its side reads only then:
 * update_interest); keeps what the socket did not take. Returns false when the connection
 * failed. */
static bool
send_to(struct thread *t, struct pair *p, int s, const char *data, size_t len)
{
    struct pending *q = &p->to[s];
    if (q->len > 0) {
        data = q->data + q->off;
        len = q->len;
    }
    ssize_t n;
    do {
        n = write(p->end[s].fd, data, len);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN)
        return false;
    size_t done = n > 0 ? (size_t)n : 0;
    if (q->len > 0) {
        q->off += done;
        q->len -= done;
    } else if (done < len) {
        if (q->data == NULL && (q->data = malloc(BUF_SIZE)) == NULL)
            die("malloc");
        memcpy(q->data, data + done, len - done);
        q->off = 0;
        q->len = len - done;
    }
    if (q->len == 0)
        q->off = 0;
    update_interest(t, &p->end[s]);
    update_interest(t, &p->end[1 - s]);
    return true;
}

/* The turn's writes in one submission; then each end waits for what it should. */
static void
flush(struct thread *t)
{
    if (t->nqueue == 0)
        return;
    for (int i = 0; i < t->nqueue; i++) {
        struct pair *p = t->queue[i].pair;
        struct pending *q = &p->to[t->queue[i].side];
        struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);
        io_uring_prep_send(sqe, p->end[t->queue[i].side].fd, q->data + q->off, q->len,
                           MSG_DONTWAIT | MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, (uint64_t)i);
    }
    int r = io_uring_submit_and_wait(&t->ring, (unsigned)t->nqueue);
    if (r < 0 && r != -EINTR) {
        errno = -r;
        die("io_uring_submit");
    }
    for (int got = 0; got < t->nqueue; got++) {
        struct io_uring_cqe *cqe;
        while ((r = io_uring_wait_cqe(&t->ring, &cqe)) == -EINTR) {
        }
        if (r < 0) {
            errno = -r;
            die("io_uring_wait_cqe");
        }
        int i = (int)cqe->user_data, n = cqe->res, s = t->queue[i].side;
        struct pair *p = t->queue[i].pair;
        io_uring_cqe_seen(&t->ring, cqe);
        p->to[s].queued = false;
        if (p->closed)
            continue;
        if (n < 0 && n != -EAGAIN) {
            close_pair(t, p);
            continue;
        }
        if (n > 0) {
            p->to[s].off += (size_t)n;
            p->to[s].len -= (size_t)n;
        }
        if (p->to[s].len == 0)
            p->to[s].off = 0;
        update_interest(t, &p->end[s]);
        update_interest(t, &p->end[1 - s]);
    }
    t->nqueue = 0;
}

/* With io_uring: keep the len bytes just read (or, len 0, what waits) for end s and queue
 * its write for the end of the turn. Its other end reads no more until they are gone
 * (on_event), so nothing is added to bytes already waiting. */
static void
queue_to(struct thread *t, struct pair *p, int s, const char *data, size_t len)
{
    struct pending *q = &p->to[s];
    if (len > 0) {
        if (q->data == NULL && (q->data = malloc(BUF_SIZE)) == NULL)
            die("malloc");
        memcpy(q->data, data, len);
        q->off = 0;
        q->len = len;
    }
    if (q->queued)
        return;
    q->queued = true;
    t->queue[t->nqueue].pair = p;
    t->queue[t->nqueue].side = s;
    if (++t->nqueue == BATCH)
        flush(t);
}

static void
on_event(struct thread *t, struct end *e, unsigned events)
{
    struct pair *p = e->pair;
    int s = e->side;
    if (p->closed)
        return;
    if ((events & EPOLLOUT) && p->to[s].len > 0) {
        if (t->batch) {
            queue_to(t, p, s, NULL, 0);
        } else if (!send_to(t, p, s, NULL, 0)) {
            close_pair(t, p);
            return;
        }
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || p->to[1 - s].len > 0)
        return;
    ssize_t n;
    do {
        n = read(e->fd, t->buf, BUF_SIZE);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        return;
    if (n > 0 && t->batch)
        queue_to(t, p, 1 - s, t->buf, (size_t)n);
    else if (n <= 0 || !send_to(t, p, 1 - s, t->buf, (size_t)n))
        close_pair(t, p); /* either side's end or failure ends both */
}

static void
on_accept(struct thread *t)
{
    for (;;) {
        int fd = accept4(t->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                fprintf(stderr, "relay: accept: %s\n", strerror(errno));
            return;
        }
        int ofd = connect_origin();
        struct pair *p = ofd < 0 ? NULL : calloc(1, sizeof(*p));
        if (p == NULL) {
            close(fd);
            if (ofd >= 0)
                close(ofd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        p->end[0] = (struct end){.pair = p, .fd = fd, .side = 0, .interest = EPOLLIN};
        p->end[1] = (struct end){.pair = p, .fd = ofd, .side = 1, .interest = EPOLLIN};
        for (int s = 0; s < 2; s++) {
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &p->end[s]};
            if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, p->end[s].fd, &ev) < 0)
                die("epoll_ctl");
        }
    }
}

static void *
run(void *arg)
{
    struct thread *t = arg;
    struct epoll_event events[256];
    static struct end listener; /* its address marks the listener's events */
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listener};
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->listen_fd, &ev) < 0)
        die("epoll_ctl");
    /* In the thread that submits (SINGLE_ISSUER) */
    const char *batch = getenv("RELAY_BATCH");
    if (batch == NULL || strcmp(batch, "0") != 0) {
        struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER |
                                             IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL};
        int r = io_uring_queue_init_params(BATCH, &t->ring, &p);
        t->batch = r == 0;
        if (r < 0)
            fprintf(stderr, "relay: io_uring refused (%s): each write at once\n", strerror(-r));
    }
    while (!stopping) {
        int n = epoll_wait(t->epfd, events, 256, 200);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < n; i++) {
            if (events[i].data.ptr == &listener)
                on_accept(t);
            else
                on_event(t, events[i].data.ptr, events[i].events);
        }
        flush(t);
        free_closed(t);
    }
    return NULL;
}

int
main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: relay THREADS PORT ORIGIN_PORT\n");
        return 2;
    }
    int nthreads = atoi(argv[1]), port = atoi(argv[2]);
    origin_port = atoi(argv[3]);
    if (nthreads < 1 || nthreads > MAX_THREADS || port <= 0 || origin_port <= 0) {
        fprintf(stderr, "relay: THREADS must be 1 to %d and the ports numbers\n", MAX_THREADS);
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    static struct thread threads[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    for (int i = 0; i < nthreads; i++) {
        threads[i].epfd = epoll_create1(EPOLL_CLOEXEC);
        threads[i].listen_fd = listen_on(port);
        if (threads[i].epfd < 0 || (threads[i].buf = malloc(BUF_SIZE)) == NULL)
            die("epoll_create1");
    }
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&ids[i], NULL, run, &threads[i]) != 0)
            die("pthread_create");
    for (int i = 0; i < nthreads; i++)
        pthread_join(ids[i], NULL);
    return 0;
}
