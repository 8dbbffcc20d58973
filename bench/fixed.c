/* fixed.c - the benchmark's ceiling: an HTTP/1.1 server that answers every request with
 * the same bytes (a realistic header and a body of a fixed size), with epoll,
 * keep-alive and pipelining, and no per-request allocation, copy or parsing beyond finding
 * the end of each request header; bodies go out with writev, or those of 64 KiB up to
 * FIXED_SENDFILE_MAX bytes (an environment variable, 0 unless set) with sendfile from a
 * memfd (conn_sendfile): the same rule as Verge's cache.sendfile_max, set alike for both
 * by make bench (BENCH_SENDFILE_MAX), so that the ceiling is the faster way.
 * It proxies nothing and stores nothing: one hop cannot be faster than this on the same
 * machine.
 *
 * Usage: FIXED_WWW=DIR [FIXED_SENDFILE_MAX=BYTES] fixed THREADS PORT_1K [PORT_100K [PORT_1M
 * [PORT_1K_CLOSE]]]
 * Each port answers with a body of that size, the bytes of DIR/1k.bin, 100k.bin or 1m.bin
 * (the origin's files: make bench compares every server's answers with them), read once
 * at start (PORT_1K_CLOSE: 1 KiB with Connection:
 * close, and closes each connection once its answers are written, as a server does for a
 * visitor that asked for the close); each thread has its own epoll loop and its
 * own SO_REUSEPORT listener per port, like a server with THREADS workers. 127.0.0.1 only.
 * Requests must not carry a body (wrk's GETs do not). Stops on SIGTERM or SIGINT. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_PORTS 4
#define MAX_THREADS 64
#define READ_SIZE 16384
#define IOV_BATCH 64
#define SENDFILE_MIN (64 * 1024) /* bodies this big, up to sendfile_max, go out with */
static size_t sendfile_max;     /* sendfile from a memfd; the others with writev */

struct response {
    char *bytes;     /* header and body */
    size_t len;
    size_t head_len;
    int body_fd;     /* a memfd holding the body, or -1: bytes are written from memory */
    bool close;      /* Connection: close: the connection ends after its answers */
};

/* One visitor connection: how far it is through the end-of-header pattern "\r\n\r\n",
 * and what it still owes: `owed` whole responses, the first from offset `off`. */
struct conn {
    int fd;
    const struct response *resp;
    int match;
    size_t owed, off;
    bool want_out; /* EPOLLOUT is in its epoll interest */
};

struct listener {
    int fd;
    const struct response *resp;
};

static struct response responses[MAX_PORTS];
static int nports;
static int ports[MAX_PORTS];
static const size_t body_sizes[MAX_PORTS] = {1024, 100 * 1024, 1024 * 1024, 1024};
static const char *const body_files[MAX_PORTS] = {"1k.bin", "100k.bin", "1m.bin", "1k.bin"};

static void
die(const char *what)
{
    fprintf(stderr, "fixed: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* The body_len bytes of file name in directory www into to, or exits saying what is wrong. */
static void
body_read(const char *www, const char *name, char *to, size_t body_len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", www, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        die(path);
    size_t n = fread(to, 1, body_len, f);
    int more = fgetc(f);
    fclose(f);
    if (n != body_len || more != EOF) {
        fprintf(stderr, "fixed: %s: not %zu bytes long (FIXED_WWW must be the origin's "
                        "files, which make bench writes)\n", path, body_len);
        exit(1);
    }
}

/* The header a cache would send for a static file, then the body: the same bytes every
 * time. */
static void
response_build(struct response *r, const char *www, int port_index, bool close)
{
    size_t body_len = body_sizes[port_index];
    char date[64];
    time_t now = time(NULL);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime(&now));
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nServer: fixed\r\nDate: %s\r\n"
                     "Content-Type: application/octet-stream\r\nContent-Length: %zu\r\n"
                     "Last-Modified: %s\r\nETag: \"65a1b2c3-%zx\"\r\n"
                     "Cache-Control: max-age=3600\r\nAge: 0\r\nAccept-Ranges: bytes\r\n"
                     "X-Cache: HIT\r\nConnection: %s\r\n\r\n",
                     date, body_len, date, body_len, close ? "close" : "keep-alive");
    r->close = close;
    r->len = (size_t)n + body_len;
    r->head_len = (size_t)n;
    if ((r->bytes = malloc(r->len)) == NULL)
        die("malloc");
    memcpy(r->bytes, head, (size_t)n);
    body_read(www, body_files[port_index], r->bytes + n, body_len);
    r->body_fd = -1;
    if (body_len < SENDFILE_MIN || body_len > sendfile_max)
        return;
    if ((r->body_fd = memfd_create("fixed-body", 0)) < 0 ||
        write(r->body_fd, r->bytes + n, body_len) != (ssize_t)body_len)
        die("memfd");
}

static int
listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    if (fd < 0)
        die("socket");
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4096) < 0)
        die("bind/listen");
    return fd;
}

/* Count the request headers that end in buf; keeps the partial match across reads. The
 * match is kept in a local: buf is char, which may alias c->match, so the field would be
 * stored and loaded again at every byte (a chain of memory round trips that made a
 * browser's 560-byte request cost this server more than a proxy's parsing). */
static size_t
requests_ended(struct conn *c, const char *buf, size_t len)
{
    static const char end[] = "\r\n\r\n";
    size_t n = 0;
    int match = c->match;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == end[match])
            match++;
        else
            match = buf[i] == '\r' ? 1 : 0;
        if (match == 4) {
            n++;
            match = 0;
        }
    }
    c->match = match;
    return n;
}

/* A body of 64 KiB up to FIXED_SENDFILE_MAX: the header with MSG_MORE, then sendfile from
 * the memfd, a response at a time. Every response shares the memfd's pages (as a file in
 * the page cache does for nginx's sendfile). Which way is faster depends on the machine
 * (the measurements are in docs/caching.md, sending stored objects); the ceiling must use
 * the faster one, as Verge does in the same run. */
static int
conn_sendfile(struct conn *c)
{
    const struct response *r = c->resp;
    while (c->owed > 0) {
        ssize_t k;
        if (c->off < r->head_len) {
            k = send(c->fd, r->bytes + c->off, r->head_len - c->off, MSG_MORE | MSG_NOSIGNAL);
        } else {
            off_t at = (off_t)(c->off - r->head_len);
            k = sendfile(c->fd, r->body_fd, &at, r->len - c->off);
        }
        if (k < 0)
            return errno == EAGAIN ? 0 : errno == EINTR ? conn_sendfile(c) : -1;
        c->off += (size_t)k;
        if (c->off == r->len) {
            c->off = 0;
            c->owed--;
        }
    }
    return 0;
}

/* Write what is owed, up to IOV_BATCH responses per writev, until done or EAGAIN.
 * Returns -1 when the connection failed. */
static int
conn_flush(struct conn *c)
{
    if (c->resp->body_fd >= 0)
        return conn_sendfile(c);
    while (c->owed > 0) {
        struct iovec iov[IOV_BATCH];
        int n = 0;
        for (size_t i = 0; i < c->owed && n < IOV_BATCH; i++, n++) {
            size_t skip = i == 0 ? c->off : 0;
            iov[n].iov_base = c->resp->bytes + skip;
            iov[n].iov_len = c->resp->len - skip;
        }
        ssize_t k = writev(c->fd, iov, n);
        if (k < 0)
            return errno == EAGAIN ? 0 : errno == EINTR ? conn_flush(c) : -1;
        size_t done = (size_t)k + c->off;
        c->owed -= done / c->resp->len;
        c->off = done % c->resp->len;
    }
    return 0;
}

/* conn_flush, and -1 as well when the connection is to close now: a Connection: close
 * answer is all written. */
static int
conn_send(struct conn *c)
{
    if (conn_flush(c) < 0)
        return -1;
    return c->resp->close && c->owed == 0 ? -1 : 0;
}

/* The close takes the fd out of the epoll set (its last close: nothing here forks or dups). */
static void
conn_close(int ep, struct conn *c)
{
    (void)ep;
    close(c->fd);
    free(c);
}

/* EPOLLOUT in the interest only while responses are owed: changed only when that changes,
 * so a request answered at once costs a read and a write, no epoll_ctl. */
static void
want_out(int ep, struct conn *c, bool on)
{
    if (c->want_out == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = on;
}

static void
on_readable(int ep, struct conn *c, char *buf)
{
    for (;;) {
        ssize_t k = read(c->fd, buf, READ_SIZE);
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
            conn_close(ep, c);
            return;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            break;
        c->owed += requests_ended(c, buf, (size_t)k);
        if (k < READ_SIZE)
            break;
    }
    if (conn_send(c) < 0) {
        conn_close(ep, c);
        return;
    }
    want_out(ep, c, c->owed > 0);
}

static void
on_acceptable(int ep, struct listener *l)
{
    int fd, one = 1;
    while ((fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->resp = l->resp;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
}

static void *
worker_run(void *arg)
{
    (void)arg;
    int ep = epoll_create1(0);
    struct listener ls[MAX_PORTS];
    char *buf = malloc(READ_SIZE);
    if (ep < 0 || buf == NULL)
        die("epoll_create1/malloc");
    for (int i = 0; i < nports; i++) {
        ls[i] = (struct listener){listen_on(ports[i]), &responses[i]};
        /* Listeners live in ls[]: an event pointing into it is a listener, any other a conn. */
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &ls[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, ls[i].fd, &ev);
    }
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p >= (void *)&ls[0] && p < (void *)&ls[nports])
                on_acceptable(ep, p);
            else if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(ep, p, buf);
            else if (conn_send(p) < 0)
                conn_close(ep, p);
            else
                want_out(ep, p, ((struct conn *)p)->owed > 0);
        }
    }
    return NULL;
}

int
main(int argc, char **argv)
{
    if (argc < 3 || argc > 2 + MAX_PORTS) {
        fprintf(stderr, "usage: fixed THREADS PORT_1K [PORT_100K [PORT_1M [PORT_1K_CLOSE]]]\n");
        return 2;
    }
    const char *www = getenv("FIXED_WWW");
    if (www == NULL || www[0] == '\0') {
        fprintf(stderr, "fixed: FIXED_WWW must name the directory with 1k.bin, 100k.bin and "
                        "1m.bin, the origin's files (make bench sets it)\n");
        return 2;
    }
    const char *sf = getenv("FIXED_SENDFILE_MAX");
    sendfile_max = sf != NULL ? (size_t)strtoull(sf, NULL, 10) : 0;
    int threads = (int)strtol(argv[1], NULL, 10);
    if (threads < 1 || threads > MAX_THREADS) {
        fprintf(stderr, "fixed: THREADS must be 1-%d\n", MAX_THREADS);
        return 2;
    }
    nports = argc - 2;
    for (int i = 0; i < nports; i++) {
        ports[i] = (int)strtol(argv[2 + i], NULL, 10);
        response_build(&responses[i], www, i, i == 3);
    }
    signal(SIGPIPE, SIG_IGN);
    pthread_t t[MAX_THREADS];
    for (int i = 1; i < threads; i++)
        if (pthread_create(&t[i], NULL, worker_run, NULL) != 0)
            die("pthread_create");
    worker_run(NULL);
    return 0;
}
