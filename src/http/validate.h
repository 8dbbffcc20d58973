/* validate.h - strict RFC 9110/9112 checks that llhttp 8.1 does not make (or makes only in
 * part): the raw syntax of a message head, the request target, the framing fields of a
 * request or response, and the Host/target agreement. Pure functions over raw bytes or a
 * parsed struct http_msg: no allocation, no I/O, no logging, callable from any thread, so
 * they can be unit tested and fuzzed alone. Every failure comes with a static reason
 * string ("obs-fold in a header field") that the caller logs. See docs/hardening.md. */
#ifndef VERGE_HTTP_VALIDATE_H
#define VERGE_HTTP_VALIDATE_H

#include "http/msg.h"

/* Chunk extensions (";name=value" after a chunk size) are legal but unused: each chunk's
 * extension bytes and all of one message's are bounded. */
#define HTTP_MAX_CHUNK_EXT 1024
#define HTTP_MAX_CHUNK_EXT_TOTAL (16 * 1024)

/* The raw head of one message: its start line, its field lines and the empty line that
 * ends them, in data[0..len) (bytes after the head may follow; they are not looked at).
 * Requests may be preceded by empty lines (RFC 9112 2.2). Checked: every line ends in
 * CRLF (no bare CR, no bare LF), no obs-fold (a line starting with SP or HTAB), field
 * names are tokens directly followed by ':', field values hold only VCHAR, obs-text, SP
 * and HTAB; a request line is token SP target SP HTTP/d.d with single spaces and a target
 * of visible ASCII; a status line is HTTP/d.d SP 3DIGIT [SP reason] with a reason of
 * VCHAR, obs-text, SP, HTAB. Returns NULL when the head is valid and *head_len (may be
 * NULL) is set to its length up to and including the empty line; else the reason. */
const char *http_head_check(const char *data, size_t len, bool request, size_t *head_len);

/* The request target, split (RFC 9112 3.2). */
enum http_target_form {
    HTTP_TARGET_ORIGIN,    /* "/path?query" */
    HTTP_TARGET_ABSOLUTE,  /* "http://host:port/path?query" */
    HTTP_TARGET_AUTHORITY, /* "host:port" (CONNECT) */
    HTTP_TARGET_ASTERISK,  /* "*" (OPTIONS) */
};

struct http_target {
    enum http_target_form form;
    bool https;              /* absolute-form with the https scheme */
    const char *authority;   /* absolute- and authority-form: "host:port"; else NULL */
    size_t authority_len;
    const char *path;        /* origin-form part: "/path?query"; "" when absent */
    size_t path_len;
};

/* Split and check a request target: origin-form starts with '/', absolute-form has the
 * http or https scheme, an authority without userinfo, and a path starting with '/' or
 * '?' (or none); no fragment ('#'), no byte outside visible ASCII, none of '\', '"',
 * '<', '>', and every '%' followed by two hex digits. Returns NULL and fills *t, or the
 * reason. */
const char *http_target_parse(const char *url, size_t len, struct http_target *t);

/* Does the Host field value name the same host and port as an absolute-form target's
 * authority? Host names compare case-insensitively, a trailing dot aside; a missing port
 * is the scheme's default (80, or 443 for https). */
bool http_host_matches(const char *authority, size_t alen, const char *host, size_t hlen,
                       bool https);

/* Transfer-Encoding of a message: every field value as one list (RFC 9110 5.3). */
enum http_te {
    HTTP_TE_NONE,        /* no Transfer-Encoding field */
    HTTP_TE_CHUNKED,     /* exactly "chunked" (case and empty list elements aside) */
    HTTP_TE_NOT_FINAL,   /* chunked absent, or not the final coding */
    HTTP_TE_UNSUPPORTED, /* chunked last, after other codings ("gzip, chunked") */
    HTTP_TE_REPEATED,    /* chunked more than once */
    HTTP_TE_EMPTY,       /* the field is there with no coding in it */
};
enum http_te http_te_classify(const struct http_msg *m);

/* A parsed request head that llhttp accepted: is it one Verge may act on? Returns 0 with
 * its target split into *t, or the status to refuse it with (400, 501 for a transfer
 * coding other than chunked, 505 for a version other than HTTP/1.x) and *reason. Checked: the version; the target
 * (http_target_parse; "*" only with OPTIONS, authority-form only with CONNECT);
 * Content-Length together with Transfer-Encoding; Content-Length more than once (even
 * with equal values: RFC 9110 8.6 lets a recipient reject them) or not one decimal
 * number; Transfer-Encoding in HTTP/1.0 or not ending in chunked; more than one Host, no
 * Host in HTTP/1.1, a Host that contradicts an absolute-form target. */
int http_request_check(const struct http_msg *m, struct http_target *t, const char **reason);

/* A parsed response head: NULL when a proxy may forward it, else the reason. Checked:
 * the version (HTTP/1.x), the status (100-599), Content-Length with Transfer-Encoding,
 * Content-Length more than once or not one decimal number, Transfer-Encoding in HTTP/1.0,
 * Transfer-Encoding other than exactly chunked (a proxy that removes the field must not
 * pass on a body still in another coding, and "read until close" is no framing to trust). */
const char *http_response_check(const struct http_msg *m);

/* May the connection a bodiless response (1xx, 204, 304, or any response to HEAD) came on
 * carry another response after it? Not when the response announced a body the rules say
 * it cannot have: a 1xx or 204 with a non-zero Content-Length or with Transfer-Encoding
 * (RFC 9110 8.6, RFC 9112 6.1). Where such a body ends is anybody's guess, so the body is
 * not read and the connection is closed. 304 and HEAD responses may announce the length
 * the GET would have had. */
bool http_response_framing_reusable(const struct http_msg *m);

#endif
