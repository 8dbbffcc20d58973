/* admit.c - the edge's checks on a request head, before routing, and what it reads once. */
#include "edge/admit.h"

#include <llhttp.h>

/* The host and the origin's target, from the split target and the Host field. */
static void
read_facts(const struct http_msg *m, struct admit_facts *f)
{
    const struct http_target *t = &f->target;
    const struct http_header *h = http_msg_field(m, HTTP_FIELD_HOST);
    if (t->form == HTTP_TARGET_ABSOLUTE) {
        f->host = t->authority;
        f->host_len = t->authority_len;
        f->origin_target = t->path_len > 0 ? t->path : "/";
        f->origin_target_len = t->path_len > 0 ? t->path_len : 1;
        return;
    }
    f->host = h ? http_str_ptr(m, h->value) : "";
    f->host_len = h ? h->value.len : 0;
    f->origin_target = http_str_ptr(m, m->url);
    f->origin_target_len = m->url.len;
}

int
admit_head_check(const struct http_msg *m, struct admit_facts *f, const char **reason)
{
    int status = http_request_check(m, &f->target, reason);
    if (status != 0)
        return status;
    read_facts(m, f);
    if (m->method == HTTP_CONNECT) {
        *reason = "This server does not act as a tunnel (CONNECT).";
        return 405;
    }
    const struct http_header *e = http_msg_field(m, HTTP_FIELD_EXPECT);
    if (e != NULL && !str_ieq(http_str_ptr(m, e->value), e->value.len, "100-continue")) {
        *reason = "Only \"Expect: 100-continue\" is supported.";
        return 417;
    }
    return 0;
}

bool
admit_request_id_valid(const char *s, size_t len, size_t max)
{
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.' || ch == ':'))
            return false;
    }
    return true;
}
