/* pace.c - the benchmark's open-loop load: GET requests sent on a fixed schedule, whatever
 * the server's answers do, with each latency counted from the moment the schedule said the
 * request should leave. wrk sends a connection's next request only when the last answer
 * is in, so a server that stalls is simply asked less, and the requests that would have
 * waited through the stall are never measured ("coordinated omission"): its percentiles
 * are those of a closed loop. Here a request that could not leave on time because its
 * connection was still waiting is sent as soon as it can and counted from its slot.
 *
 * RATE 0 is a closed loop, as wrk's, for throughput: each connection sends its next request
 * as soon as the last answer is in, for SECONDS, each latency counted from its send. It
 * is there for large bodies, where wrk's 8 KiB reads make wrk the limit (bench/README.md):
 * this reads 64 KiB at a time.
 *
 * Usage: pace PORT PATH RATE CONNECTIONS SECONDS [HOST]
 * HOST defaults to 127.0.0.1:PORT, as wrk sends it. Request j is due at start + j / RATE on connection j mod CONNECTIONS (one request in
 * flight per connection, HTTP/1.1 keep-alive, 127.0.0.1). Answers must carry
 * Content-Length. Prints one JSON line: requests due (closed loop: sent), answered,
 * non-2xx, errors, unanswered (closed loop: in flight at the end, as wrk leaves them
 * out), bytes read, the achieved rate, and latency percentiles in microseconds over every
 * answered request. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 1024
#define HEAD_MAX 16384

struct conn {
    int fd;
    uint64_t owed;      /* requests due on this connection and not sent yet */
    uint64_t first_due; /* the slot of the oldest of them, or of the one in flight */
    bool busy;          /* a request is in flight */
    uint64_t sent_slot; /* the slot the request in flight was due at (closed loop: the
                         * time it was sent) */
    char head[HEAD_MAX];
    size_t head_len;
    uint64_t body_left; /* bytes of the answer's body still to come; UINT64_MAX: in the head */
    int status;
};

static struct conn conns[MAX_CONNS];
static int nconns, port, epfd;
static char request[1024];
static size_t request_len;
static double rate;   /* 0: the closed loop */
static uint64_t start_ns, end_ns, *latencies, nlat, cap_lat, non2xx, errors, sent, bytes;

static uint64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
slot_ns(uint64_t j)
{
    return start_ns + (uint64_t)((double)j * 1e9 / rate);
}

static void
die(const char *what)
{
    fprintf(stderr, "pace: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* No request in flight, no answer begun: the next request may go. */
static void
conn_ready(struct conn *c)
{
    c->busy = false;
    c->head_len = 0;
    c->body_left = UINT64_MAX;
}

static void
conn_open(struct conn *c)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        fcntl(c->fd, F_SETFL, O_NONBLOCK) < 0)
        die("connect");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        die("epoll_ctl");
    conn_ready(c);
}

static void send_next(struct conn *c);

/* A broken connection: its request in flight is an error, the next ones go on a new one. */
static void
conn_reset(struct conn *c)
{
    errors += c->busy;
    close(c->fd);
    conn_open(c);
    send_next(c);
}

/* Sends the oldest request owed, unless one is in flight. A request whose write fails is
 * an error and is not sent again: each slot is answered, an error, or unanswered. */
static void
send_next(struct conn *c)
{
    if (rate == 0) { /* the closed loop: the next request now, until the end */
        for (uint64_t now = now_ns(); !c->busy && now < end_ns; now = now_ns()) {
            if (send(c->fd, request, request_len, MSG_NOSIGNAL) == (ssize_t)request_len) {
                c->busy = true;
                c->sent_slot = now;
                sent++;
                return;
            }
            errors++; /* and again on a new connection */
            close(c->fd);
            conn_open(c);
        }
        return;
    }
    while (!c->busy && c->owed > 0) {
        uint64_t slot = c->first_due;
        c->owed--;
        c->first_due += (uint64_t)nconns;
        /* one write of a short request: an empty socket buffer has room for it */
        if (send(c->fd, request, request_len, MSG_NOSIGNAL) == (ssize_t)request_len) {
            c->busy = true;
            c->sent_slot = slot;
            return;
        }
        errors++;
        close(c->fd);
        conn_open(c);
    }
}

static void
answered(struct conn *c, uint64_t now)
{
    if (nlat == cap_lat && rate == 0) { /* the closed loop has no count known in advance */
        uint64_t *more = realloc(latencies, sizeof(*latencies) * 2 * cap_lat);
        if (more == NULL)
            die("out of memory for latencies");
        latencies = more;
        cap_lat *= 2;
    }
    if (nlat < cap_lat)
        /* closed loop: the request may have been sent after this batch's clock reading */
        latencies[nlat++] = rate == 0 ? now_ns() - c->sent_slot : now - slot_ns(c->sent_slot);
    non2xx += c->status < 200 || c->status > 299;
    conn_ready(c);
    send_next(c);
}

/* The head is complete at its blank line: status and Content-Length; the rest is body. */
static int
parse_head(struct conn *c, size_t end)
{
    c->head[end] = '\0';
    if (sscanf(c->head, "HTTP/1.%*d %d", &c->status) != 1)
        return -1;
    for (char *p = strstr(c->head, "\r\n"); p != NULL && p < c->head + end; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, "content-length:", 15) == 0) {
            char *digits = p + 17, *end;
            while (*digits == ' ' || *digits == '\t')
                digits++;
            c->body_left = strtoull(digits, &end, 10);
            return end == digits || c->body_left == UINT64_MAX ? -1 : 0;
        }
    }
    return -1;
}

static void
on_readable(struct conn *c, uint64_t now)
{
    char buf[65536];
    for (;;) {
        ssize_t n = read(c->fd, buf, sizeof(buf));
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            conn_reset(c);
            return;
        }
        if (n < 0)
            return;
        bytes += (uint64_t)n;
        size_t at = 0;
        while (at < (size_t)n) {
            if (c->body_left == UINT64_MAX) {
                size_t take = (size_t)n - at;
                if (take > HEAD_MAX - 1 - c->head_len)
                    take = HEAD_MAX - 1 - c->head_len;
                memcpy(c->head + c->head_len, buf + at, take);
                size_t from = c->head_len >= 3 ? c->head_len - 3 : 0;
                c->head_len += take;
                c->head[c->head_len] = '\0';
                char *blank = strstr(c->head + from, "\r\n\r\n");
                if (blank == NULL) {
                    if (c->head_len >= HEAD_MAX - 1) {
                        conn_reset(c);
                        return;
                    }
                    at += take;
                    continue;
                }
                size_t head_end = (size_t)(blank - c->head) + 4;
                at += take - (c->head_len - head_end); /* body bytes after the head */
                if (parse_head(c, head_end) < 0) {
                    conn_reset(c);
                    return;
                }
            } else {
                size_t take = (size_t)n - at;
                if (take > c->body_left)
                    take = (size_t)c->body_left;
                c->body_left -= take;
                at += take;
            }
            if (c->body_left == 0) {
                if (!c->busy || at < (size_t)n) { /* an answer nobody asked for */
                    conn_reset(c);
                    return;
                }
                answered(c, now);
            }
        }
    }
}

/* Waits up to timeout ms for answers and takes them; the clock after the wait. */
static uint64_t
take_answers(int timeout)
{
    struct epoll_event evs[64];
    int n = epoll_wait(epfd, evs, 64, timeout);
    uint64_t now = now_ns();
    for (int i = 0; i < n; i++)
        on_readable(evs[i].data.ptr, now);
    return now;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t
percentile(double p)
{
    if (nlat == 0)
        return 0;
    uint64_t i = (uint64_t)(p / 100.0 * (double)(nlat - 1) + 0.5);
    return latencies[i];
}

int
main(int argc, char **argv)
{
    if (argc < 6 || argc > 7) {
        fprintf(stderr, "usage: pace PORT PATH RATE CONNECTIONS SECONDS [HOST]\n");
        return 2;
    }
    port = atoi(argv[1]);
    rate = atof(argv[3]);
    nconns = atoi(argv[4]);
    double seconds = atof(argv[5]);
    if (port <= 0 || rate < 0 || nconns <= 0 || nconns > MAX_CONNS || seconds <= 0) {
        fprintf(stderr, "pace: bad arguments (at most %d connections)\n", MAX_CONNS);
        return 2;
    }
    char host[64];
    snprintf(host, sizeof(host), "127.0.0.1:%d", port); /* wrk's: the same cache key */
    request_len = (size_t)snprintf(request, sizeof(request),
                                   "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", argv[2],
                                   argc == 7 ? argv[6] : host);
    uint64_t total = rate > 0 ? (uint64_t)(rate * seconds) : 0;
    cap_lat = rate > 0 ? total : 65536;
    latencies = malloc(sizeof(*latencies) * (cap_lat + 1));
    if ((epfd = epoll_create1(0)) < 0 || latencies == NULL)
        die("setup");
    for (int i = 0; i < nconns; i++)
        conn_open(&conns[i]);
    start_ns = now_ns();
    uint64_t now = start_ns;
    if (rate == 0) {
        end_ns = start_ns + (uint64_t)(seconds * 1e9);
        for (int i = 0; i < nconns; i++)
            send_next(&conns[i]);
        while ((now = now_ns()) < end_ns)
            now = take_answers((int)((end_ns - now) / 1000000u) + 1);
        total = sent;
    }
    uint64_t next = 0;
    if (rate > 0)
        end_ns = slot_ns(total);
    /* after the last slot, wait up to 2 s more for the answers still owed */
    while (rate > 0 && now < end_ns + 2000000000u) {
        now = now_ns();
        for (; next < total && slot_ns(next) <= now; next++) {
            struct conn *c = &conns[next % (uint64_t)nconns];
            if (c->owed++ == 0)
                c->first_due = next; /* its later slots follow nconns apart */
            send_next(c);
        }
        if (next >= total && nlat + errors >= total)
            break;
        uint64_t due = next < total ? slot_ns(next) : now + 2000000u; /* draining */
        now = take_answers(due > now + 1000000u ? (int)((due - now) / 1000000u) : 0);
    }
    double elapsed = (double)(now - start_ns) / 1e9;
    uint64_t unanswered = total > nlat + errors ? total - nlat - errors : 0;
    qsort(latencies, nlat, sizeof(*latencies), cmp_u64);
    printf("{\"due\": %llu, \"answered\": %llu, \"non_2xx\": %llu, \"errors\": %llu, "
           "\"unanswered\": %llu, \"bytes\": %llu, \"duration_us\": %.0f, \"rate\": %.1f, "
           "\"p50_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": %.1f, \"max_us\": %.1f}\n",
           (unsigned long long)total, (unsigned long long)nlat, (unsigned long long)non2xx,
           (unsigned long long)errors, (unsigned long long)unanswered,
           (unsigned long long)bytes, elapsed * 1e6, (double)nlat / elapsed,
           percentile(50) / 1e3, percentile(99) / 1e3, percentile(99.9) / 1e3,
           nlat ? latencies[nlat - 1] / 1e3 : 0.0);
    return 0;
}
