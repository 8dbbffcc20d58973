/* proxy_error.c - RFC 9209 error types: names, statuses, and errno classification. */
#include "edge/proxy_error.h"

#include "http/parser.h"

#include <stdarg.h>

static const struct {
    const char *name;
    int status;
} types[PROXY_ERR_COUNT] = {
    [PROXY_ERR_NONE] = {"none", 200},
    [PROXY_ERR_DNS_ERROR] = {"dns_error", 502},
    [PROXY_ERR_DNS_TIMEOUT] = {"dns_timeout", 504},
    [PROXY_ERR_DESTINATION_IP_PROHIBITED] = {"destination_ip_prohibited", 502},
    [PROXY_ERR_DESTINATION_IP_UNROUTABLE] = {"destination_ip_unroutable", 502},
    [PROXY_ERR_DESTINATION_UNAVAILABLE] = {"destination_unavailable", 503},
    [PROXY_ERR_CONNECTION_REFUSED] = {"connection_refused", 502},
    [PROXY_ERR_CONNECTION_TIMEOUT] = {"connection_timeout", 504},
    [PROXY_ERR_CONNECTION_TERMINATED] = {"connection_terminated", 502},
    [PROXY_ERR_CONNECTION_READ_TIMEOUT] = {"connection_read_timeout", 504},
    [PROXY_ERR_CONNECTION_WRITE_TIMEOUT] = {"connection_write_timeout", 504},
    [PROXY_ERR_HTTP_PROTOCOL_ERROR] = {"http_protocol_error", 502},
    [PROXY_ERR_HTTP_RESPONSE_HEADER_SECTION_SIZE] = {"http_response_header_section_size", 502},
    [PROXY_ERR_HTTP_RESPONSE_TIMEOUT] = {"http_response_timeout", 504},
    [PROXY_ERR_HTTP_RESPONSE_INCOMPLETE] = {"http_response_incomplete", 502},
    [PROXY_ERR_PROXY_LOOP_DETECTED] = {"proxy_loop_detected", 502},
    [PROXY_ERR_PROXY_INTERNAL_ERROR] = {"proxy_internal_error", 500},
};

static const char *const phases[] = {"resolve", "connect", "send", "header", "body"};
static const char *const phase_actions[] = {"resolving the origin name", "connecting",
                                            "sending the request",
                                            "waiting for the response header",
                                            "reading the response body"};

const char *
proxy_error_name(enum proxy_error_type type)
{
    return type < PROXY_ERR_COUNT ? types[type].name : "proxy_internal_error";
}

int
proxy_error_status(enum proxy_error_type type)
{
    return type < PROXY_ERR_COUNT ? types[type].status : 500;
}

int
proxy_error_retry_after(enum proxy_error_type type)
{
    switch (type) {
    case PROXY_ERR_DESTINATION_UNAVAILABLE:
        return 10;
    case PROXY_ERR_DNS_TIMEOUT:
    case PROXY_ERR_CONNECTION_REFUSED:
    case PROXY_ERR_CONNECTION_TIMEOUT:
    case PROXY_ERR_CONNECTION_TERMINATED:
    case PROXY_ERR_HTTP_RESPONSE_TIMEOUT:
    case PROXY_ERR_DESTINATION_IP_UNROUTABLE:
        return 5;
    default:
        return 0;
    }
}

const char *
proxy_phase_name(enum proxy_phase phase)
{
    return (size_t)phase < ARRAY_SIZE(phases) ? phases[phase] : "unknown";
}

enum proxy_error_type
proxy_error_from_errno(enum proxy_phase phase, int err)
{
    switch (err) {
    case ECONNREFUSED:
        return phase == PROXY_PHASE_CONNECT ? PROXY_ERR_CONNECTION_REFUSED
                                            : PROXY_ERR_CONNECTION_TERMINATED;
    case ETIMEDOUT:
        return phase == PROXY_PHASE_CONNECT ? PROXY_ERR_CONNECTION_TIMEOUT
                                            : PROXY_ERR_CONNECTION_READ_TIMEOUT;
    case ENETUNREACH:
    case EHOSTUNREACH:
        return PROXY_ERR_DESTINATION_IP_UNROUTABLE;
    case EACCES:
    case EPERM:
        return PROXY_ERR_DESTINATION_IP_PROHIBITED;
    case EADDRNOTAVAIL:
    case ENETDOWN:
    case EHOSTDOWN:
        return PROXY_ERR_DESTINATION_UNAVAILABLE;
    default:
        if (phase == PROXY_PHASE_CONNECT)
            return PROXY_ERR_DESTINATION_UNAVAILABLE;
        return phase == PROXY_PHASE_BODY ? PROXY_ERR_HTTP_RESPONSE_INCOMPLETE
                                         : PROXY_ERR_CONNECTION_TERMINATED;
    }
}

enum proxy_error_type
proxy_error_of_parse(const struct http_parser *p, char *detail, size_t len)
{
    if (p->head_too_large || p->too_many_headers) {
        snprintf(detail, len, "%s",
                 p->head_too_large ? "response header section too large"
                                   : "too many response header fields");
        return PROXY_ERR_HTTP_RESPONSE_HEADER_SECTION_SIZE;
    }
    snprintf(detail, len, "invalid response: %s", http_parser_error_text(p));
    return PROXY_ERR_HTTP_PROTOCOL_ERROR;
}

void
proxy_error_set(struct proxy_error *e, enum proxy_error_type type, enum proxy_phase phase,
                int err, const char *addr, uint64_t elapsed_ms, const char *fmt, ...)
{
    va_list ap;
    e->type = type;
    e->phase = phase;
    e->sys_errno = err;
    e->elapsed_ms = elapsed_ms;
    snprintf(e->addr, sizeof(e->addr), "%s", addr ? addr : "");
    va_start(ap, fmt);
    vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
    va_end(ap);
}

/* Copy s into a quoted-string body, escaping '"' and '\\' and dropping controls. */
static size_t
quote(const char *s, char *out, size_t outlen)
{
    size_t n = 0;
    for (; *s && n + 2 < outlen; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x20 || ch == 0x7f)
            continue;
        if (ch == '"' || ch == '\\')
            out[n++] = '\\';
        out[n++] = (char)ch;
    }
    out[n] = '\0';
    return n;
}

size_t
proxy_error_header(const struct proxy_error *e, const char *edge_name, bool with_details,
                   char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s; error=%s", edge_name, proxy_error_name(e->type));
    if (n < 0 || (size_t)n >= outlen)
        return 0;
    if (!with_details)
        return (size_t)n;
    char detail[400], q[440];
    const char *action = (size_t)e->phase < ARRAY_SIZE(phase_actions) ? phase_actions[e->phase]
                                                                       : "proxying";
    snprintf(detail, sizeof(detail), "%s%s%s while %s, after %llu ms", e->detail,
             e->addr[0] ? ", origin " : "", e->addr, action,
             (unsigned long long)e->elapsed_ms);
    quote(detail, q, sizeof(q));
    int m = snprintf(out + n, outlen - (size_t)n, "; details=\"%s\"", q);
    if (m < 0 || (size_t)m >= outlen - (size_t)n)
        return (size_t)n;
    return (size_t)(n + m);
}
