/* tls.h - the TLS step of verge check (OpenSSL directly: the edge has no TLS to origins
 * yet, and will reuse this when it does): a TCP connect and a TLS handshake with SNI,
 * the protocol and cipher agreed, the certificate chain checked against the system's
 * trust store (or a CA file), days to expiry, and whether the certificate names the host.
 * The handshake completes even when the chain does not verify, so every finding is
 * reported; then the connection can carry one HTTP exchange (tls_conn_exchange). */
#ifndef VERGE_DIAG_TLS_H
#define VERGE_DIAG_TLS_H

#include "core/buf.h"
#include "core/config.h"
#include "core/loop.h"
#include "diag/probe.h"

struct tls_result {
    bool attempted;
    char address[64];
    char sni[256];  /* "" for an IP address: no SNI is sent for those */
    bool connected; /* TCP handshake done */
    bool handshake_ok;
    char protocol[32];     /* "TLSv1.3" */
    char cipher[64];       /* "TLS_AES_256_GCM_SHA384" */
    bool chain_ok;         /* verified against the trust store */
    char chain_error[160]; /* "self-signed certificate", "certificate has expired", ... */
    bool name_ok;          /* the certificate is valid for the host */
    char subject[256], issuer[256];
    char not_after[32];     /* "2026-03-01" */
    int days_left;          /* negative once expired */
    bool reset_after_hello; /* reset (or closed) after our ClientHello, nothing received */
    char error[240];        /* why the handshake (or connect) failed */
    uint64_t connect_us, handshake_us;
};

struct tls_conn;

/* Connect to a and handshake; host is the name to check the certificate against (and the
 * SNI unless it is an IP address); ca_file NULL uses the system store. Everything bounded
 * by timeout_ms. cb fires when the handshake is done or failed (see out). */
struct tls_conn *tls_conn_start(struct loop *loop, const struct config_addr *a, const char *host,
                                const char *ca_file, uint64_t timeout_ms, struct tls_result *out,
                                probe_done_cb cb, void *arg);

/* Callbacks of one exchange over an established connection. */
struct tls_exchange_ops {
    /* Plaintext bytes from the server. Return false to end the exchange (no more calls). */
    bool (*on_data)(void *arg, const char *data, size_t len);
    /* The server closed (err 0), the connection failed (err > 0: errno, or EPROTO for a
     * TLS error), or the time ran out (ETIMEDOUT). Nothing is called after this. */
    void (*on_end)(void *arg, int err);
};

/* After a successful handshake: send request, then hand what comes back to ops, all
 * bounded by timeout_ms. */
void tls_conn_exchange(struct tls_conn *c, const struct buf *request, uint64_t timeout_ms,
                       const struct tls_exchange_ops *ops, void *arg);

void tls_conn_free(struct tls_conn **c);

#endif
