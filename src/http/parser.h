/* parser.h - llhttp glue shared by the visitor side (requests) and the origin side
 * (responses): collects the head into a struct http_msg, enforces the head size limit,
 * hands body bytes to the owner, and pauses after each complete message so pipelined
 * messages are taken one at a time. Lenient flags stay off. */
#ifndef VERGE_HTTP_PARSER_H
#define VERGE_HTTP_PARSER_H

#include "http/msg.h"

#include <llhttp.h>

struct http_parser;

struct http_parser_ops {
    /* Head complete (p->msg filled). Return 0 to read a body as framed, 1 when the message
     * has no body (response to HEAD), -1 to fail the parse. */
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
    size_t max_head;
    size_t head_bytes; /* raw bytes of the current head (and empty lines before it) so far */
    bool in_head;      /* between message begin and headers complete */
    bool in_message;   /* between message begin and message complete */
    bool head_too_large;
    bool url_too_long;
    bool too_many_headers;
    bool headers_done;
    int last_cb; /* 0 none, 1 header field, 2 header value */
    unsigned span_limits; /* limits hit in the current span, reported where it ends */
};

void http_parser_init(struct http_parser *p, llhttp_type_t type, size_t max_head,
                      const struct http_parser_ops *ops, void *owner);
void http_parser_free(struct http_parser *p);

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
