/* parse_head.h - for unit tests: a message head parsed from text with the real parser. */
#ifndef VERGE_TESTS_PARSE_HEAD_H
#define VERGE_TESTS_PARSE_HEAD_H

#include "http/parser.h"

static int
parse_head_on_head(struct http_parser *p)
{
    return 1; /* stop after the head */
}

static int
parse_head_on_body(struct http_parser *p, const char *at, size_t len)
{
    return 0;
}

static void
parse_head_on_complete(struct http_parser *p)
{
}

/* Parse text (a request or response head) into p; fails the test when it is invalid.
 * Free with http_parser_free(p). */
static const struct http_msg *
parse_head(struct http_parser *p, llhttp_type_t type, const char *text)
{
    static const struct http_parser_ops ops = {parse_head_on_head, parse_head_on_body,
                                               parse_head_on_complete};
    size_t used;
    http_parser_init(p, type, 65536, &ops, NULL);
    if (http_parser_feed(p, text, strlen(text), &used) == HTTP_PARSE_ERROR)
        fail_msg("cannot parse: %s", http_parser_error_text(p));
    return &p->msg;
}

#endif
