/* proxy_error.h - the one classification of origin failures: RFC 9209 Proxy-Status error
 * types. Every failure is mapped here, once; the status code, the Proxy-Status header, the
 * error page, the logs and the metrics all read the same struct proxy_error. */
#ifndef VERGE_EDGE_PROXY_ERROR_H
#define VERGE_EDGE_PROXY_ERROR_H

#include "core/base.h"

enum proxy_error_type {
    PROXY_ERR_NONE = 0,
    PROXY_ERR_DNS_ERROR,
    PROXY_ERR_DNS_TIMEOUT,
    PROXY_ERR_DESTINATION_IP_PROHIBITED,
    PROXY_ERR_DESTINATION_IP_UNROUTABLE,
    PROXY_ERR_DESTINATION_UNAVAILABLE,
    PROXY_ERR_CONNECTION_REFUSED,
    PROXY_ERR_CONNECTION_TIMEOUT,
    PROXY_ERR_CONNECTION_TERMINATED,
    PROXY_ERR_CONNECTION_READ_TIMEOUT,
    PROXY_ERR_CONNECTION_WRITE_TIMEOUT,
    PROXY_ERR_HTTP_PROTOCOL_ERROR,
    PROXY_ERR_HTTP_RESPONSE_HEADER_SECTION_SIZE,
    PROXY_ERR_HTTP_RESPONSE_TIMEOUT,
    PROXY_ERR_HTTP_RESPONSE_INCOMPLETE,
    PROXY_ERR_PROXY_LOOP_DETECTED,
    PROXY_ERR_PROXY_INTERNAL_ERROR,
    PROXY_ERR_COUNT
};

/* Where in the fetch the failure happened. */
enum proxy_phase {
    PROXY_PHASE_RESOLVE = 0,
    PROXY_PHASE_CONNECT,
    PROXY_PHASE_SEND,
    PROXY_PHASE_HEADER,
    PROXY_PHASE_BODY,
};

struct proxy_error {
    enum proxy_error_type type;
    enum proxy_phase phase;
    int sys_errno;       /* errno behind it, 0 if none */
    char addr[64];       /* origin address tried last ("127.0.0.1:8000"), "" if none */
    uint64_t elapsed_ms; /* since the fetch started */
    char detail[160];    /* human detail: "connect() refused", "invalid status line" */
    char origin[128];    /* URL of the origin that failed, "" if none was chosen */
};

/* Seconds after which a retry may help (Retry-After), 0 when it will not (a name that
 * does not exist, an invalid response). */
int proxy_error_retry_after(enum proxy_error_type type);

/* RFC 9209 name ("connection_refused"). */
const char *proxy_error_name(enum proxy_error_type type);
/* Status for the visitor (502/503/504). */
int proxy_error_status(enum proxy_error_type type);
const char *proxy_phase_name(enum proxy_phase phase);

/* Classify a socket-level failure (errno from connect/read/write) in a phase. */
enum proxy_error_type proxy_error_from_errno(enum proxy_phase phase, int err);

/* Classify a response the edge's parser refused (http/parser.h): a header section past
 * the limit, or an invalid message; detail says which. */
struct http_parser;
enum proxy_error_type proxy_error_of_parse(const struct http_parser *p, char *detail,
                                           size_t len);

/* Fill e: type, phase, errno, address, elapsed and a printf-style detail. */
void proxy_error_set(struct proxy_error *e, enum proxy_error_type type, enum proxy_phase phase,
                     int err, const char *addr, uint64_t elapsed_ms, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* The Proxy-Status field value: `verge; error=connection_refused; details="..."`
 * (details omitted when with_details is false). Returns the length written. */
size_t proxy_error_header(const struct proxy_error *e, const char *edge_name, bool with_details,
                          char *out, size_t outlen);

#endif
