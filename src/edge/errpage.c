/* errpage.c - the edge's own error bodies in HTML, problem+json and plain text. */
#include "edge/errpage.h"

#include "http/msg.h"

enum errpage_kind { PAGE_TEXT, PAGE_HTML, PAGE_JSON };

static enum errpage_kind
kind_for(const char *accept, size_t len)
{
    if (accept == NULL)
        return PAGE_TEXT;
    if (memmem(accept, len, "json", 4) != NULL)
        return PAGE_JSON;
    if (memmem(accept, len, "text/html", 9) != NULL)
        return PAGE_HTML;
    return PAGE_TEXT;
}

static void
append_escaped(struct buf *out, const char *s, enum errpage_kind kind)
{
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (kind == PAGE_HTML && (ch == '<' || ch == '>' || ch == '&' || ch == '"'))
            buf_printf(out, "&#%d;", ch);
        else if (kind == PAGE_JSON && (ch == '"' || ch == '\\'))
            buf_printf(out, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            buf_printf(out, kind == PAGE_JSON ? "\\u%04x" : "?", ch);
        else
            buf_append(out, s, 1);
    }
}

/* Who is at fault, in words a visitor understands. */
static const char *
fault_line(int status)
{
    if (status >= 500)
        return "This is a problem between this website's edge server and its origin server. "
               "It is not caused by your device or your connection; trying again in a few "
               "minutes may help.";
    return "The request could not be served as sent.";
}

static void
render_html(const struct errpage *p, struct buf *out)
{
    buf_printf(out,
               "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%d %s</title>"
               "</head>\n<body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\">"
               "\n<h1>%d %s</h1>\n<p>",
               p->status, http_status_reason(p->status), p->status,
               http_status_reason(p->status));
    append_escaped(out, p->message, PAGE_HTML);
    buf_append_str(out, "</p>\n<p>");
    append_escaped(out, fault_line(p->status), PAGE_HTML);
    buf_append_str(out, "</p>\n");
    if (p->err != NULL) {
        buf_printf(out, "<p>Cause: <code>%s</code>", proxy_error_name(p->err->type));
        if (p->details && p->err->detail[0] != '\0') {
            buf_append_str(out, " &mdash; ");
            append_escaped(out, p->err->detail, PAGE_HTML);
        }
        buf_append_str(out, "</p>\n");
    }
    buf_append_str(out, "<p><small>Request id: ");
    append_escaped(out, p->request_id, PAGE_HTML);
    buf_append_str(out, " &middot; edge: ");
    append_escaped(out, p->edge_name, PAGE_HTML);
    buf_append_str(out, "</small></p>\n</body></html>\n");
}

static void
render_json(const struct errpage *p, struct buf *out)
{
    buf_printf(out, "{\"type\":\"about:blank\",\"title\":\"%s\",\"status\":%d,\"detail\":\"",
               http_status_reason(p->status), p->status);
    append_escaped(out, p->message, PAGE_JSON);
    buf_append_str(out, "\"");
    if (p->err != NULL) {
        buf_printf(out, ",\"proxy_status\":\"%s\"", proxy_error_name(p->err->type));
        if (p->details && p->err->detail[0] != '\0') {
            buf_append_str(out, ",\"proxy_details\":\"");
            append_escaped(out, p->err->detail, PAGE_JSON);
            buf_append_str(out, "\"");
        }
    }
    buf_append_str(out, ",\"request_id\":\"");
    append_escaped(out, p->request_id, PAGE_JSON);
    buf_append_str(out, "\"}\n");
}

static void
render_text(const struct errpage *p, struct buf *out)
{
    buf_printf(out, "%d %s\n", p->status, http_status_reason(p->status));
    append_escaped(out, p->message, PAGE_TEXT);
    buf_append_str(out, "\n");
    append_escaped(out, fault_line(p->status), PAGE_TEXT);
    buf_append_str(out, "\n");
    if (p->err != NULL) {
        buf_printf(out, "cause: %s", proxy_error_name(p->err->type));
        if (p->details && p->err->detail[0] != '\0') {
            buf_append_str(out, " (");
            append_escaped(out, p->err->detail, PAGE_TEXT);
            buf_append_str(out, ")");
        }
        buf_append_str(out, "\n");
    }
    buf_append_str(out, "request id: ");
    append_escaped(out, p->request_id, PAGE_TEXT);
    buf_append_str(out, "\n");
}

const char *
errpage_render(const struct errpage *p, const char *accept, size_t accept_len, struct buf *out)
{
    switch (kind_for(accept, accept_len)) {
    case PAGE_HTML:
        render_html(p, out);
        return "text/html; charset=utf-8";
    case PAGE_JSON:
        render_json(p, out);
        return "application/problem+json";
    default:
        render_text(p, out);
        return "text/plain; charset=utf-8";
    }
}
