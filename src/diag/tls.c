/* tls.c - a non-blocking OpenSSL client in the caller's loop: connecting, handshaking
 * (SSL_connect until it stops asking for I/O), then at most one request/response. */
#include "diag/tls.h"

#include "core/net.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

enum tls_state { TLS_CONNECTING, TLS_HANDSHAKE, TLS_IDLE, TLS_SENDING, TLS_READING, TLS_DONE };

struct tls_conn {
    struct loop *loop;
    enum tls_state state;
    struct loop_io io;
    struct loop_timer timer;
    struct loop_defer done;
    SSL_CTX *ctx;
    SSL *ssl;
    char host[256];
    uint64_t start_us;
    struct tls_result *out;
    probe_done_cb cb;
    void *arg;
    /* the exchange */
    struct buf request;
    bool exchanging;
    const struct tls_exchange_ops *ops; /* NULL once the owner said it had enough */
    void *ops_arg;
    int end_err;
};

static bool
is_ip(const char *host)
{
    unsigned char b[16];
    return inet_pton(AF_INET, host, b) == 1 || inet_pton(AF_INET6, host, b) == 1;
}

/* The SSL error queue as one line ("certificate verify failed", ...). */
static void
ssl_error_text(char *out, size_t len, const char *what)
{
    unsigned long e = ERR_get_error();
    char reason[200] = "";
    if (e != 0)
        ERR_error_string_n(e, reason, sizeof(reason));
    snprintf(out, len, "%s%s%s", what, reason[0] ? ": " : "", reason);
    ERR_clear_error();
}

static void
finish_handshake(struct tls_conn *c, bool ok)
{
    loop_timer_stop(c->loop, &c->timer);
    c->out->handshake_ok = ok;
    c->out->handshake_us = probe_now_us() - c->start_us;
    c->state = ok ? TLS_IDLE : TLS_DONE;
    loop_io_set(c->loop, &c->io, 0);
    loop_defer(c->loop, &c->done);
}

/* What the certificate says: chain, name, expiry. */
static void
inspect(struct tls_conn *c)
{
    struct tls_result *r = c->out;
    long v = SSL_get_verify_result(c->ssl);
    snprintf(r->protocol, sizeof(r->protocol), "%s", SSL_get_version(c->ssl));
    snprintf(r->cipher, sizeof(r->cipher), "%s", SSL_get_cipher_name(c->ssl));
    r->chain_ok = v == X509_V_OK;
    if (!r->chain_ok)
        snprintf(r->chain_error, sizeof(r->chain_error), "%s", X509_verify_cert_error_string(v));
    X509 *cert = SSL_get1_peer_certificate(c->ssl);
    if (cert == NULL) {
        snprintf(r->chain_error, sizeof(r->chain_error), "the server sent no certificate");
        r->chain_ok = false;
        return;
    }
    r->name_ok = is_ip(c->host) ? X509_check_ip_asc(cert, c->host, 0) == 1
                                : X509_check_host(cert, c->host, 0, 0, NULL) == 1;
    X509_NAME_oneline(X509_get_subject_name(cert), r->subject, sizeof(r->subject));
    X509_NAME_oneline(X509_get_issuer_name(cert), r->issuer, sizeof(r->issuer));
    const ASN1_TIME *end = X509_get0_notAfter(cert);
    int days = 0, secs = 0;
    struct tm tm;
    if (ASN1_TIME_diff(&days, &secs, NULL, end) == 1)
        r->days_left = days - (days == 0 && secs < 0);
    if (ASN1_TIME_to_tm(end, &tm) == 1)
        strftime(r->not_after, sizeof(r->not_after), "%Y-%m-%d", &tm);
    X509_free(cert);
}

static void
handshake_failed(struct tls_conn *c, int rc)
{
    struct tls_result *r = c->out;
    int e = SSL_get_error(c->ssl, rc), err = errno;
    bool nothing_back = BIO_number_read(SSL_get_rbio(c->ssl)) == 0;
    if (e == SSL_ERROR_SYSCALL && (err == ECONNRESET || err == EPIPE || ERR_peek_error() == 0)) {
        r->reset_after_hello = nothing_back;
        snprintf(r->error, sizeof(r->error), "%s during the handshake%s",
                 err == ECONNRESET || err == EPIPE ? "connection reset" : "connection closed",
                 nothing_back ? ", right after our ClientHello (nothing received)" : "");
        ERR_clear_error();
    } else {
        ssl_error_text(r->error, sizeof(r->error), "TLS handshake failed");
    }
    finish_handshake(c, false);
}

static void
handshake(struct tls_conn *c)
{
    ERR_clear_error();
    int rc = SSL_connect(c->ssl);
    if (rc == 1) {
        inspect(c);
        finish_handshake(c, true);
        return;
    }
    int e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        loop_io_set(c->loop, &c->io, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
        return;
    }
    handshake_failed(c, rc);
}

static void
connected(struct tls_conn *c)
{
    int err = net_socket_error(c->io.fd);
    c->out->connect_us = probe_now_us() - c->start_us;
    if (err != 0) {
        snprintf(c->out->error, sizeof(c->out->error), "connect() failed: %s", strerror(err));
        finish_handshake(c, false);
        return;
    }
    c->out->connected = true;
    c->state = TLS_HANDSHAKE;
    ERR_clear_error();
    SSL_set_fd(c->ssl, c->io.fd);
    SSL_set_connect_state(c->ssl);
    handshake(c);
}

static void exchange_io(struct tls_conn *c);

static void
on_io(struct loop_io *io, uint32_t events)
{
    struct tls_conn *c = container_of(io, struct tls_conn, io);
    if (c->state == TLS_CONNECTING)
        connected(c);
    else if (c->state == TLS_HANDSHAKE)
        handshake(c);
    else if (c->state == TLS_SENDING || c->state == TLS_READING)
        exchange_io(c);
}

static void
exchange_end(struct tls_conn *c, int err)
{
    loop_timer_stop(c->loop, &c->timer);
    loop_io_set(c->loop, &c->io, 0);
    c->state = TLS_DONE;
    c->end_err = err;
    loop_defer(c->loop, &c->done);
}

static void
on_timeout(struct loop_timer *t)
{
    struct tls_conn *c = container_of(t, struct tls_conn, timer);
    if (c->state == TLS_SENDING || c->state == TLS_READING) {
        exchange_end(c, ETIMEDOUT);
        return;
    }
    snprintf(c->out->error, sizeof(c->out->error), "%s",
             c->state == TLS_CONNECTING ? "connect() timed out"
                                        : "the TLS handshake did not finish in time");
    finish_handshake(c, false);
}

static void
on_done(struct loop_defer *d)
{
    struct tls_conn *c = container_of(d, struct tls_conn, done);
    if (!c->exchanging) {
        c->cb(c->arg);
        return;
    }
    const struct tls_exchange_ops *ops = c->ops;
    c->exchanging = false;
    c->ops = NULL;
    if (ops != NULL)
        ops->on_end(c->ops_arg, c->end_err);
}

static SSL_CTX *
new_ctx(const char *ca_file, struct tls_result *r)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* judged after the handshake */
    int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        ssl_error_text(r->error, sizeof(r->error), "cannot load the trusted certificates");
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

struct tls_conn *
tls_conn_start(struct loop *loop, const struct config_addr *a, const char *host,
               const char *ca_file, uint64_t timeout_ms, struct tls_result *out, probe_done_cb cb,
               void *arg)
{
    struct tls_conn *c = xcalloc(1, sizeof(*c));
    c->loop = loop;
    c->out = out;
    c->cb = cb;
    c->arg = arg;
    c->start_us = probe_now_us();
    snprintf(c->host, sizeof(c->host), "%s", host);
    buf_init(&c->request, SIZE_MAX);
    loop_timer_init(&c->timer, on_timeout);
    loop_defer_init(&c->done, on_done);
    memset(out, 0, sizeof(*out));
    out->attempted = true;
    snprintf(out->address, sizeof(out->address), "%s", a->text);
    if (!is_ip(host))
        snprintf(out->sni, sizeof(out->sni), "%s", host);
    c->state = TLS_DONE;
    if ((c->ctx = new_ctx(ca_file, out)) == NULL || (c->ssl = SSL_new(c->ctx)) == NULL) {
        if (out->error[0] == '\0')
            ssl_error_text(out->error, sizeof(out->error), "cannot set up TLS");
        finish_handshake(c, false);
        return c;
    }
    if (out->sni[0] != '\0')
        SSL_set_tlsext_host_name(c->ssl, out->sni);
    c->start_us = probe_now_us(); /* the phases start at the connect, as curl's do */
    int fd = net_connect((const struct sockaddr *)&a->sa, a->salen);
    if (fd < 0 || loop_io_start(loop, &c->io, fd, EPOLLOUT, on_io) < 0) {
        snprintf(out->error, sizeof(out->error), "connect() failed: %s",
                 strerror(fd < 0 ? -fd : EBADF));
        if (fd >= 0)
            close(fd);
        finish_handshake(c, false);
        return c;
    }
    c->state = TLS_CONNECTING;
    loop_timer_set(loop, &c->timer, timeout_ms);
    return c;
}

/* ---------------------------------------------------------------- the exchange */

static void
exchange_write(struct tls_conn *c)
{
    while (buf_used(&c->request) > 0) {
        ERR_clear_error();
        int n = SSL_write(c->ssl, buf_head(&c->request), (int)MIN(buf_used(&c->request), 1 << 20));
        if (n > 0) {
            buf_consume(&c->request, (size_t)n);
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            loop_io_set(c->loop, &c->io, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
            return;
        }
        exchange_end(c, e == SSL_ERROR_SYSCALL && errno ? errno : EPROTO);
        return;
    }
    c->state = TLS_READING;
    loop_io_set(c->loop, &c->io, EPOLLIN);
}

static void
exchange_read(struct tls_conn *c)
{
    char data[16384];
    for (;;) {
        ERR_clear_error();
        int n = SSL_read(c->ssl, data, sizeof(data));
        if (n > 0) {
            if (!c->ops->on_data(c->ops_arg, data, (size_t)n)) {
                c->ops = NULL; /* the owner has what it wanted */
                exchange_end(c, 0);
                return;
            }
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            loop_io_set(c->loop, &c->io, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
            return;
        }
        bool eof = e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0);
        exchange_end(c, eof ? 0 : e == SSL_ERROR_SYSCALL ? errno : EPROTO);
        return;
    }
}

static void
exchange_io(struct tls_conn *c)
{
    if (c->state == TLS_SENDING)
        exchange_write(c);
    else
        exchange_read(c);
}

void
tls_conn_exchange(struct tls_conn *c, const struct buf *request, uint64_t timeout_ms,
                  const struct tls_exchange_ops *ops, void *arg)
{
    c->exchanging = true;
    c->ops = ops;
    c->ops_arg = arg;
    buf_reset(&c->request);
    buf_append(&c->request, buf_head(request), buf_used(request));
    if (c->state != TLS_IDLE) {
        exchange_end(c, ENOTCONN);
        return;
    }
    c->state = TLS_SENDING;
    loop_timer_set(c->loop, &c->timer, timeout_ms);
    exchange_write(c);
}

void
tls_conn_free(struct tls_conn **cp)
{
    struct tls_conn *c = *cp;
    if (c == NULL)
        return;
    *cp = NULL;
    loop_timer_stop(c->loop, &c->timer);
    loop_defer_cancel(c->loop, &c->done);
    if (c->io.registered) {
        loop_io_stop(c->loop, &c->io);
        close(c->io.fd);
    }
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    buf_free(&c->request);
    free(c);
}
