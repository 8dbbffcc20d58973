/* errpage.c - the edge's own error bodies: one table of causes in plain words, the owner's
 * hint per cause with measured values, and three renderings (HTML, problem+json, text). */
#include "edge/errpage.h"

#include "http/msg.h"

#include <stdlib.h>
#include <strings.h>
#include <time.h>

/* Which link of visitor → edge → origin failed. */
enum errpage_link { LINK_DNS, LINK_NETWORK, LINK_ORIGIN, LINK_EDGE };

struct cause {
    const char *what; /* for visitors; "%s" (if any) is how long the edge waited */
    enum errpage_link link;
};

static const struct cause causes[PROXY_ERR_COUNT] = {
    [PROXY_ERR_DNS_ERROR] = {"The edge server could not find the address of this website's "
                             "origin server.", LINK_DNS},
    [PROXY_ERR_DNS_TIMEOUT] = {"The edge server could not look up the address of this "
                               "website's origin server: its DNS resolver did not answer.",
                               LINK_DNS},
    [PROXY_ERR_DESTINATION_IP_PROHIBITED] = {"The website's origin server points to an address "
                                             "the edge server is not allowed to use.",
                                             LINK_EDGE},
    [PROXY_ERR_DESTINATION_IP_UNROUTABLE] = {"The network could not reach the website's origin "
                                             "server.", LINK_NETWORK},
    [PROXY_ERR_DESTINATION_UNAVAILABLE] = {"The website's origin servers are unavailable right "
                                           "now.", LINK_ORIGIN},
    [PROXY_ERR_CONNECTION_REFUSED] = {"The website's origin server refused the connection from "
                                      "the edge server.", LINK_ORIGIN},
    [PROXY_ERR_CONNECTION_TIMEOUT] = {"The website's origin server did not answer; a firewall "
                                      "may be dropping the edge server's packets.", LINK_NETWORK},
    [PROXY_ERR_CONNECTION_TERMINATED] = {"The website's origin server closed the connection "
                                         "without answering.", LINK_ORIGIN},
    [PROXY_ERR_CONNECTION_READ_TIMEOUT] = {"The website's origin server stopped sending its "
                                           "answer.", LINK_ORIGIN},
    [PROXY_ERR_CONNECTION_WRITE_TIMEOUT] = {"The website's origin server stopped accepting the "
                                            "request.", LINK_ORIGIN},
    [PROXY_ERR_HTTP_PROTOCOL_ERROR] = {"The website's origin server sent an invalid response.",
                                       LINK_ORIGIN},
    [PROXY_ERR_HTTP_RESPONSE_HEADER_SECTION_SIZE] = {"The website's origin server sent a "
                                                     "response too large to accept.",
                                                     LINK_ORIGIN},
    [PROXY_ERR_HTTP_RESPONSE_TIMEOUT] = {"The website's origin server took longer than %s to "
                                         "answer.", LINK_ORIGIN},
    [PROXY_ERR_HTTP_RESPONSE_INCOMPLETE] = {"The website's origin server sent an incomplete "
                                            "response.", LINK_ORIGIN},
    [PROXY_ERR_PROXY_LOOP_DETECTED] = {"The edge server is configured to call itself instead of "
                                       "the website's origin server.", LINK_EDGE},
};

/* ---------------------------------------------------------------- negotiation */

static int
format_of(const char *type, size_t len)
{
    static const struct {
        const char *type;
        enum errpage_format f;
    } known[] = {{"text/html", ERRPAGE_HTML},         {"application/xhtml+xml", ERRPAGE_HTML},
                 {"application/json", ERRPAGE_JSON},  {"application/problem+json", ERRPAGE_JSON},
                 {"text/plain", ERRPAGE_TEXT}};
    for (size_t i = 0; i < ARRAY_SIZE(known); i++)
        if (strlen(known[i].type) == len && strncasecmp(type, known[i].type, len) == 0)
            return (int)known[i].f;
    return -1;
}

/* q of one media range's parameters ("; q=0.5"), 1.0 by default. */
static double
quality(const char *params, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        bool starts = i == 0 || params[i - 1] == ' ' || params[i - 1] == ';';
        if (starts && (params[i] == 'q' || params[i] == 'Q') && params[i + 1] == '=') {
            char num[16];
            size_t n = MIN(len - i - 2, sizeof(num) - 1);
            memcpy(num, params + i + 2, n);
            num[n] = '\0';
            return strtod(num, NULL);
        }
    }
    return 1.0;
}

enum errpage_format
errpage_negotiate(const char *accept, size_t len)
{
    enum errpage_format best = ERRPAGE_TEXT;
    double best_q = 0.0;
    size_t i = 0;
    while (accept != NULL && i < len) {
        size_t item = i, item_end = i, semi = 0;
        while (item_end < len && accept[item_end] != ',')
            item_end++;
        while (item < item_end && accept[item] == ' ')
            item++;
        size_t type_end = item;
        while (type_end < item_end && accept[type_end] != ';')
            type_end++;
        semi = type_end;
        while (type_end > item && accept[type_end - 1] == ' ')
            type_end--;
        int f = format_of(accept + item, type_end - item);
        double q = semi < item_end ? quality(accept + semi, item_end - semi) : 1.0;
        if (f >= 0 && q > best_q) {
            best = (enum errpage_format)f;
            best_q = q;
        }
        i = item_end + 1;
    }
    return best;
}

/* ---------------------------------------------------------------- escaping */

/* Does ch need escaping (or replacing) in format f? */
static bool
special(unsigned char ch, enum errpage_format f)
{
    if (ch < 0x20 || ch == 0x7f)
        return true;
    if (f == ERRPAGE_HTML)
        return ch == '<' || ch == '>' || ch == '&' || ch == '"' || ch == '\'';
    return f == ERRPAGE_JSON && (ch == '"' || ch == '\\');
}

/* Append s escaped for format f: runs of plain bytes are copied at once. */
static void
put(struct buf *out, const char *s, enum errpage_format f)
{
    while (s != NULL && *s != '\0') {
        size_t run = 0;
        while (s[run] != '\0' && !special((unsigned char)s[run], f))
            run++;
        buf_append(out, s, run);
        s += run;
        if (*s == '\0')
            break;
        unsigned char ch = (unsigned char)*s++;
        if (f == ERRPAGE_HTML && ch >= 0x20 && ch != 0x7f)
            buf_printf(out, "&#%d;", ch);
        else if (f == ERRPAGE_JSON && (ch == '"' || ch == '\\'))
            buf_printf(out, "\\%c", ch);
        else if (f == ERRPAGE_JSON)
            buf_printf(out, "\\u%04x", ch);
        else
            buf_append(out, "?", 1);
    }
}

/* ---------------------------------------------------------------- texts with holes */

void
errpage_text_init(struct errpage_text *t, enum errpage_format f)
{
    buf_init(&t->text, SIZE_MAX);
    t->holes = NULL;
    t->holes_cap = 0;
    errpage_text_reset(t, f);
}

void
errpage_text_free(struct errpage_text *t)
{
    buf_free(&t->text);
    free(t->holes);
    t->holes = NULL;
    t->nholes = t->holes_cap = 0;
}

void
errpage_text_reset(struct errpage_text *t, enum errpage_format f)
{
    buf_reset(&t->text);
    t->format = f;
    t->nholes = 0;
}

void
errpage_text_hole(struct errpage_text *t, enum errpage_hole what)
{
    if (t->nholes == t->holes_cap) {
        t->holes_cap = t->holes_cap ? 2 * t->holes_cap : 4;
        t->holes = xrealloc(t->holes, t->holes_cap * sizeof(*t->holes));
    }
    t->holes[t->nholes].at = buf_used(&t->text);
    t->holes[t->nholes++].what = what;
}

static void utc_time(double now, char *out, size_t len);

/* This thread's last UTC time text and the second it shows. */
static __thread time_t shown_second = -1;
static __thread char shown_time[40];

void
errpage_text_fill(const struct errpage_text *t, const char *request_id, double now,
                  uint64_t length, struct buf *out)
{
    const char *text = buf_head(&t->text);
    size_t from = 0;
    if ((time_t)now != shown_second) {
        utc_time(now, shown_time, sizeof(shown_time));
        shown_second = (time_t)now;
    }
    for (size_t i = 0; i < t->nholes; i++) {
        buf_append(out, text + from, t->holes[i].at - from);
        from = t->holes[i].at;
        if (t->holes[i].what == ERRPAGE_HOLE_REQUEST_ID)
            put(out, request_id, t->format);
        else if (t->holes[i].what == ERRPAGE_HOLE_TIME)
            put(out, shown_time, t->format);
        else
            buf_append_u64(out, length);
    }
    buf_append(out, text + from, buf_used(&t->text) - from);
}

/* ---------------------------------------------------------------- the words */

struct facts {
    char name[128];    /* origin host name */
    char port[8];
    char waited[32];   /* "30 s" / "250 ms" */
    char what[256];    /* the visitor sentence */
    char hint[512];    /* the owner's */
    char check[192];   /* "verge check http://..." */
};

static void
parse_origin(const char *url, struct facts *f)
{
    const char *h = url ? strstr(url, "://") : NULL;
    snprintf(f->port, sizeof(f->port), "80");
    if (h == NULL) {
        snprintf(f->name, sizeof(f->name), "the origin");
        return;
    }
    h += 3;
    const char *end = h + strcspn(h, "/");
    const char *colon = *h == '[' ? strstr(h, "]:") : memchr(h, ':', (size_t)(end - h));
    if (colon != NULL && *h == '[')
        colon++;
    size_t n = (size_t)((colon && colon < end ? colon : end) - h);
    snprintf(f->name, sizeof(f->name), "%.*s", (int)MIN(n, sizeof(f->name) - 1), h);
    if (colon && colon < end)
        snprintf(f->port, sizeof(f->port), "%.*s", (int)MIN((size_t)(end - colon - 1), 5u),
                 colon + 1);
}

static void
owner_hint(const struct errpage *p, struct facts *f)
{
    const struct proxy_error *e = p->err;
    const char *addr = e->addr[0] ? e->addr : f->name;
    switch (e->type) {
    case PROXY_ERR_DNS_ERROR:
        snprintf(f->hint, sizeof(f->hint), "The name %s does not resolve (%s). Check its A/AAAA "
                 "records at its DNS provider.", f->name, e->detail);
        break;
    case PROXY_ERR_DNS_TIMEOUT:
        snprintf(f->hint, sizeof(f->hint), "No DNS resolver answered for %s within %s. Check "
                 "resolver.servers (or /etc/resolv.conf) on the edge.", f->name, f->waited);
        break;
    case PROXY_ERR_CONNECTION_REFUSED:
        snprintf(f->hint, sizeof(f->hint), "Nothing accepts connections on %s. Is the origin "
                 "server running and listening on port %s?", addr, f->port);
        break;
    case PROXY_ERR_CONNECTION_TIMEOUT:
        snprintf(f->hint, sizeof(f->hint), "%s did not answer the connection attempt within %s. "
                 "A firewall may be dropping the edge's packets, or the host is down.", addr,
                 f->waited);
        break;
    case PROXY_ERR_DESTINATION_IP_UNROUTABLE:
        snprintf(f->hint, sizeof(f->hint), "The network reported %s unreachable (%s). A "
                 "firewall may be rejecting the edge, or the address is wrong.", addr, e->detail);
        break;
    case PROXY_ERR_HTTP_RESPONSE_TIMEOUT:
        snprintf(f->hint, sizeof(f->hint), "%s accepted the request but sent no response header "
                 "within %s. The application behind it may be overloaded or stuck.", addr,
                 f->waited);
        break;
    case PROXY_ERR_HTTP_PROTOCOL_ERROR:
    case PROXY_ERR_HTTP_RESPONSE_HEADER_SECTION_SIZE:
        snprintf(f->hint, sizeof(f->hint), "%s sent a response that is not acceptable HTTP: %s.",
                 addr, e->detail);
        break;
    default:
        snprintf(f->hint, sizeof(f->hint), "%s: %s.", addr, e->detail);
        break;
    }
    if (p->origin_url != NULL)
        snprintf(f->check, sizeof(f->check), "verge check %s", p->origin_url);
}

static void
gather(const struct errpage *p, struct facts *f)
{
    memset(f, 0, sizeof(*f));
    parse_origin(p->origin_url, f);
    if (p->err == NULL) {
        snprintf(f->what, sizeof(f->what), "%s", p->message ? p->message : "");
        return;
    }
    uint64_t ms = p->err->elapsed_ms;
    if (ms >= 1000)
        snprintf(f->waited, sizeof(f->waited), "%.1f s", (double)ms / 1000.0);
    else
        snprintf(f->waited, sizeof(f->waited), "%llu ms", (unsigned long long)ms);
    const char *what = p->err->type < PROXY_ERR_COUNT ? causes[p->err->type].what : NULL;
    if (what == NULL)
        what = "The edge server could not get a valid response from the website's origin "
               "server.";
    snprintf(f->what, sizeof(f->what), what, f->waited);
    owner_hint(p, f);
}

static const char *
visitor_advice(const struct errpage *p)
{
    if (p->status < 500)
        return "";
    return "This is not a problem with your browser, device or connection. Reload the page "
           "in a moment.";
}

static void
utc_time(double now, char *out, size_t len)
{
    time_t t = (time_t)now;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* ---------------------------------------------------------------- renderings */

static void
html_chain(const struct errpage *p, struct buf *out)
{
    enum errpage_link link = causes[p->err->type].link;
    const char *bad = "<b style=\"color:#b00\">&#10007;</b>", *ok = "&#10003;";
    buf_printf(out, "<p class=c>You %s &rarr; Edge (", ok);
    put(out, p->edge_name, ERRPAGE_HTML);
    buf_printf(out, ") %s &rarr; %s%s</p>\n",
               link == LINK_EDGE ? bad : ok, link == LINK_DNS ? "DNS lookup of the origin " :
                                             "Origin ",
               link == LINK_EDGE ? "" : bad);
}

static void
render_html(const struct errpage *p, const struct facts *f, struct errpage_text *t)
{
    struct buf *out = &t->text;
    buf_printf(out, "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
               "<meta name=viewport content=\"width=device-width,initial-scale=1\">");
    bool reloads = p->status >= 500 && p->retry_after > 0 && p->is_get;
    if (reloads)
        buf_printf(out, "<meta http-equiv=refresh content=\"%d\">", p->retry_after);
    buf_printf(out, "<title>%d %s</title><style>body{font:16px/1.5 sans-serif;max-width:40em;"
               "margin:2em auto;padding:0 1em;color:#222}h1{font-size:1.5em}.c{font-size:1.1em}"
               "small{color:#666}code{background:#eee;padding:0 .2em}</style></head>\n<body>\n"
               "<h1>%d %s</h1>\n<p>", p->status, http_status_reason(p->status), p->status,
               http_status_reason(p->status));
    put(out, f->what, ERRPAGE_HTML);
    buf_append_str(out, "</p>\n");
    if (p->err != NULL)
        html_chain(p, out);
    if (p->status >= 500) {
        buf_append_str(out, "<h2>What you can do</h2>\n<p>");
        put(out, visitor_advice(p), ERRPAGE_HTML);
        if (reloads)
            buf_printf(out, " This page tries again by itself in %d seconds.", p->retry_after);
        buf_append_str(out, "</p>\n");
    }
    if (p->err != NULL && p->details) {
        buf_append_str(out, "<h2>For the site owner</h2>\n<p>");
        put(out, f->hint, ERRPAGE_HTML);
        buf_append_str(out, "</p>\n");
        if (f->check[0]) {
            buf_append_str(out, "<p>Run on the edge: <code>");
            put(out, f->check, ERRPAGE_HTML);
            buf_append_str(out, "</code></p>\n");
        }
        buf_printf(out, "<p>Cause: <code>%s</code></p>\n", proxy_error_name(p->err->type));
    }
    buf_append_str(out, "<p><small>Request id ");
    errpage_text_hole(t, ERRPAGE_HOLE_REQUEST_ID);
    buf_append_str(out, " &middot; ");
    errpage_text_hole(t, ERRPAGE_HOLE_TIME);
    buf_append_str(out, " &middot; edge ");
    put(out, p->edge_name, ERRPAGE_HTML);
    if (p->host != NULL) {
        buf_append_str(out, " &middot; site ");
        put(out, p->host, ERRPAGE_HTML);
    }
    buf_append_str(out, "</small></p>\n</body></html>\n");
}

static void
json_field(struct buf *out, const char *key, const char *value)
{
    buf_printf(out, ",\"%s\":\"", key);
    put(out, value, ERRPAGE_JSON);
    buf_append_str(out, "\"");
}

static void
render_json(const struct errpage *p, const struct facts *f, struct errpage_text *t)
{
    struct buf *out = &t->text;
    if (p->err != NULL)
        buf_printf(out, "{\"type\":\"https://verge.invalid/problems/%s\"",
                   proxy_error_name(p->err->type));
    else
        buf_append_str(out, "{\"type\":\"about:blank\"");
    json_field(out, "title", http_status_reason(p->status));
    buf_printf(out, ",\"status\":%d", p->status);
    json_field(out, "detail", f->what);
    if (p->err != NULL)
        json_field(out, "proxy_status", proxy_error_name(p->err->type));
    buf_append_str(out, ",\"request_id\":\"");
    errpage_text_hole(t, ERRPAGE_HOLE_REQUEST_ID);
    buf_append_str(out, "\"");
    json_field(out, "edge", p->edge_name);
    buf_append_str(out, ",\"time\":\"");
    errpage_text_hole(t, ERRPAGE_HOLE_TIME);
    buf_append_str(out, "\"");
    if (p->err != NULL && p->details) {
        json_field(out, "origin", p->origin_url ? p->origin_url : "");
        json_field(out, "address", p->err->addr);
        buf_printf(out, ",\"waited_ms\":%llu", (unsigned long long)p->err->elapsed_ms);
        json_field(out, "hint", f->hint);
        if (f->check[0])
            json_field(out, "check", f->check);
    }
    buf_append_str(out, "}\n");
}

static void
render_text(const struct errpage *p, const struct facts *f, struct errpage_text *t)
{
    struct buf *out = &t->text;
    buf_printf(out, "%d %s\n\n", p->status, http_status_reason(p->status));
    put(out, f->what, ERRPAGE_TEXT);
    buf_append_str(out, "\n");
    if (p->status >= 500) {
        put(out, visitor_advice(p), ERRPAGE_TEXT);
        buf_append_str(out, "\n");
    }
    if (p->err != NULL && p->details) {
        buf_printf(out, "\nFor the site owner (cause: %s):\n", proxy_error_name(p->err->type));
        put(out, f->hint, ERRPAGE_TEXT);
        buf_append_str(out, "\n");
        if (f->check[0]) {
            buf_append_str(out, "Run on the edge: ");
            put(out, f->check, ERRPAGE_TEXT);
            buf_append_str(out, "\n");
        }
    }
    buf_append_str(out, "\nrequest id: ");
    errpage_text_hole(t, ERRPAGE_HOLE_REQUEST_ID);
    buf_append_str(out, "\ntime: ");
    errpage_text_hole(t, ERRPAGE_HOLE_TIME);
    buf_append_str(out, "\nedge: ");
    put(out, p->edge_name, ERRPAGE_TEXT);
    buf_append_str(out, "\n");
}

/* The value of one placeholder, unescaped. */
static const char *
placeholder(const struct errpage *p, const struct facts *f, const char *name, size_t len,
            char *scratch, size_t scratchlen)
{
#define IS(lit) (len == sizeof(lit) - 1 && memcmp(name, lit, len) == 0)
    bool owner = p->err != NULL && p->details;
    if (IS("status") || IS("retry_after")) {
        snprintf(scratch, scratchlen, "%d", IS("status") ? p->status : p->retry_after);
        return scratch;
    }

    if (IS("reason"))
        return http_status_reason(p->status);
    if (IS("what"))
        return f->what;
    if (IS("advice"))
        return visitor_advice(p);
    if (IS("edge"))
        return p->edge_name;
    if (IS("host"))
        return p->host ? p->host : "";
    if (IS("cause"))
        return p->err ? proxy_error_name(p->err->type) : "";
    if (IS("hint"))
        return owner ? f->hint : "";
    if (IS("check"))
        return owner ? f->check : "";
    return NULL;
#undef IS
}

/* {{request_id}} and {{time}}: holes, filled per request. */
static bool
placeholder_hole(const char *name, size_t len, enum errpage_hole *what)
{
    if (len == 10 && memcmp(name, "request_id", 10) == 0)
        *what = ERRPAGE_HOLE_REQUEST_ID;
    else if (len == 4 && memcmp(name, "time", 4) == 0)
        *what = ERRPAGE_HOLE_TIME;
    else
        return false;
    return true;
}

static void
render_template(const struct errpage *p, const struct facts *f, struct errpage_text *t)
{
    struct buf *out = &t->text;
    const char *s = p->html_template;
    char scratch[64];
    enum errpage_hole what;
    for (const char *open = strstr(s, "{{"); open != NULL; open = strstr(s, "{{")) {
        const char *close = strstr(open + 2, "}}");
        size_t len = close ? (size_t)(close - open - 2) : 0;
        const char *value =
            close ? placeholder(p, f, open + 2, len, scratch, sizeof(scratch)) : NULL;
        buf_append(out, s, (size_t)(open - s));
        if (close != NULL && value == NULL && placeholder_hole(open + 2, len, &what)) {
            errpage_text_hole(t, what);
            s = close + 2;
            continue;
        }
        if (value == NULL) {
            buf_append(out, "{{", 2); /* not ours: written as it is */
            s = open + 2;
            continue;
        }
        put(out, value, ERRPAGE_HTML);
        s = close + 2;
    }
    buf_append_str(out, s);
}

const char *
errpage_render_text(const struct errpage *p, enum errpage_format format, struct errpage_text *t)
{
    struct facts f;
    gather(p, &f);
    errpage_text_reset(t, format);
    switch (format) {
    case ERRPAGE_HTML:
        if (p->html_template != NULL)
            render_template(p, &f, t);
        else
            render_html(p, &f, t);
        return "text/html; charset=utf-8";
    case ERRPAGE_JSON:
        render_json(p, &f, t);
        return "application/problem+json";
    default:
        render_text(p, &f, t);
        return "text/plain; charset=utf-8";
    }
}

const char *
errpage_render(const struct errpage *p, const char *accept, size_t accept_len, struct buf *out)
{
    struct errpage_text t;
    errpage_text_init(&t, ERRPAGE_TEXT);
    const char *type = errpage_render_text(p, errpage_negotiate(accept, accept_len), &t);
    errpage_text_fill(&t, p->request_id, p->now, 0, out);
    errpage_text_free(&t);
    return type;
}
