/* parser.h - llhttp glue shared by the visitor side (requests) and the origin side
 * (responses): collects the head into a struct http_msg, enforces the head, field count,
 * request line and body limits, checks the raw head (http_head_check) and the CRLF after
 * each chunk's data (llhttp 8.1 skips those two bytes unchecked), bounds chunk extensions
 * and trailers (read, never stored), hands body bytes to the owner, and pauses after each
 * complete message so pipelined messages are taken one at a time. Lenient flags stay off;
 * an Upgrade is never taken: what follows a message is parsed as HTTP again. */
#ifndef VERGE_HTTP_PARSER_H
#define VERGE_HTTP_PARSER_H

#include "http/msg.h"

#include <llhttp.h>

struct http_parser;

struct http_parser_ops {
    /* Head complete (p->msg filled, trailing whitespace of values removed, the raw head
     * checked). Return 0 to read a body as framed, 1 when the message has no body
     * (response to HEAD, 204, 304, 1xx), -1 to fail the parse. */
    int (*on_head)(struct http_parser *p);
    /* Body bytes (de-chunked). Return 0, or -1 to fail the parse. */
    int (*on_body)(struct http_parser *p, const char *at, size_t len);
    /* Message complete. The parser pauses after this returns; see http_parser_resume. */
    void (*on_complete)(struct http_parser *p);
};

enum http_parse_status {
    HTTP_PARSE_MORE = 0,     /* consumed everything, wants more input */
    HTTP_PARSE_PAUSED = 1,   /* a message completed; *consumed says where it ended */
    HTTP_PARSE_ERROR = -1,   /* malformed; see http_parser_error_text / head_too_large */
};

struct http_parser {
    llhttp_t ll;
    const struct http_parser_ops *ops;
    void *owner;
    struct http_msg msg;
    struct buf raw;     /* the raw bytes of a head that did not arrive in one input (capped
                         * at max_head), for http_head_check: llhttp 8.1 lets obs-fold,
                         * bare LF and more by. A head that arrives whole is checked where
                         * it lies in the input, without a copy */
    const char *head_at; /* where the input being parsed now holds (the rest of) the head */
    size_t max_head;
    size_t max_fields;  /* header fields per message (<= HTTP_MAX_HEADERS) */
    size_t max_line;    /* request line length; 0: only max_head bounds it */
    uint64_t max_body;  /* body bytes; 0: no limit. The owner may set it in on_head */
    uint64_t body_bytes;
    size_t head_bytes;  /* raw bytes of the current head (and empty lines before it) so far */
    size_t chunk_ext, chunk_ext_total; /* chunk extension bytes: this chunk's, the body's */
    size_t trailer_bytes;
    const char *input_end; /* end of the bytes being parsed now */
    int crlf_owed;      /* bytes of the CRLF after chunk data still to come */
    const char *invalid; /* why Verge's own checks refused the message (static text) */
    bool in_head;       /* between message begin and headers complete */
    bool in_message;    /* between message begin and message complete */
    bool head_too_large;
    bool url_too_long;
    bool too_many_headers;
    bool body_too_large;
    bool headers_done;
    int last_cb; /* 0 none, 1 header field, 2 header value */
    unsigned span_limits; /* limits hit in the current span, reported where it ends */
    bool split_span;    /* a span's pieces were not adjacent in the head (refused) */
};

void http_parser_init(struct http_parser *p, llhttp_type_t type, size_t max_head,
                      const struct http_parser_ops *ops, void *owner);
void http_parser_free(struct http_parser *p);
/* Ready for a new peer, as http_parser_init left it (same type, ops and owner), keeping
 * the memory of its buffers; limits back to their defaults, the head limit max_head. */
void http_parser_reset(struct http_parser *p, size_t max_head);
/* Bound the field count (1..HTTP_MAX_HEADERS; more fails with too_many_headers) and the
 * request line (0 = no bound of its own; longer fails with url_too_long). */
void http_parser_set_limits(struct http_parser *p, size_t max_fields, size_t max_line);

/* Feed bytes. *consumed is set to how many were used (all of them unless PAUSED/ERROR). */
enum http_parse_status http_parser_feed(struct http_parser *p, const char *data, size_t len,
                                        size_t *consumed);
/* The peer closed: completes a close-delimited body. HTTP_PARSE_PAUSED when that completed
 * a message, HTTP_PARSE_MORE when nothing was in progress, HTTP_PARSE_ERROR when a message
 * was cut short. */
enum http_parse_status http_parser_finish(struct http_parser *p);
/* Continue after HTTP_PARSE_PAUSED (the next message may start). */
void http_parser_resume(struct http_parser *p);

/* Whether a message has started and not yet completed (bytes are owed). */
static inline bool
http_parser_in_message(const struct http_parser *p)
{
    return p->in_message;
}
const char *http_parser_error_text(const struct http_parser *p);

#endif
