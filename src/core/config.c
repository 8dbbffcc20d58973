/* config.c - reads verge.yaml with libyaml's document API into an immutable struct config. */
#include "core/config.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#define CONFIG_DEFAULT_PORT 8080
#define CONFIG_ADMIN_PORT 8081
#define CONFIG_MAX_WORKERS 256
#define KIB 1024ULL
#define MIB (1024ULL * 1024ULL)

/* What a value must look like; used in "must be X, got Y" messages. */
#define EXPECT_DURATION "a duration such as \"5s\", \"250ms\" or \"1m\""
#define EXPECT_TIMEOUT "a duration greater than 0, such as \"5s\" or \"250ms\""
#define EXPECT_SIZE "a size such as \"64KiB\", \"100MiB\" or \"1GiB\""
#define EXPECT_HEADER_SIZE "a size from 1KiB to 1MiB, such as \"32KiB\""
#define EXPECT_COUNT "a non-negative integer"
#define EXPECT_BOOL "true or false"
#define EXPECT_ADDRESS "an address such as \"127.0.0.1:8080\", \"[::1]:8080\" or \":8080\""
#define EXPECT_HOST "a host name such as \"cdn.example.com\", \"*.example.com\" or \"*\""

/* One parse of one document: where messages go and what is being filled. */
struct parse {
    const char *name; /* file name in messages; NULL: messages carry no position */
    char *dir;        /* directory relative log paths are joined to */
    yaml_document_t doc;
    struct config *cfg;
    const yaml_node_t *admin_node;     /* admin.listen, for the listen/admin clash */
    const yaml_node_t *request_line_node; /* client.max_request_line, for its check */
    const yaml_node_t *zone_name_node; /* current zone's name, for its default host */
    char *err;
    size_t errlen;
};

struct field;
typedef int field_cb(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
                     const struct field *f);

/* The keys one mapping accepts. */
struct field_table {
    const char *where; /* "in zone", for unknown-key messages */
    const struct field *fields;
    size_t nfields;
};

struct field {
    const char *key;
    field_cb *parse;
    size_t offset;                 /* of the uint64_t or bool member, for generic fields */
    const struct field_table *sub; /* for sections */
};

struct unit {
    const char *name;
    uint64_t mult;
};

static const struct unit duration_units[] = {
    {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
};

static const struct unit size_units[] = {
    {"", 1},          {"B", 1},          {"KB", 1000},      {"MB", 1000000},
    {"GB", 1000000000}, {"KiB", KIB},    {"MiB", MIB},      {"GiB", MIB * KIB},
};

/* ---- messages ---- */

static int
fail_at(struct parse *p, const yaml_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail_at(struct parse *p, const yaml_node_t *at, const char *fmt, ...)
{
    va_list ap;
    int n = 0;
    if (p->errlen == 0)
        return -1;
    p->err[0] = '\0';
    if (p->name != NULL && at != NULL)
        n = snprintf(p->err, p->errlen, "%s:%zu:%zu: ", p->name, at->start_mark.line + 1,
                     at->start_mark.column + 1);
    else if (p->name != NULL)
        n = snprintf(p->err, p->errlen, "%s: ", p->name);
    size_t off = n < 0 ? 0 : MIN((size_t)n, p->errlen - 1);
    va_start(ap, fmt);
    vsnprintf(p->err + off, p->errlen - off, fmt, ap);
    va_end(ap);
    return -1;
}

static bool
is_null(const yaml_node_t *v)
{
    const char *s = (const char *)v->data.scalar.value;
    if (v->type != YAML_SCALAR_NODE || v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcasecmp(s, "null") == 0;
}

/* What a node is, for "got ..." in messages. */
static const char *
describe(const yaml_node_t *v, char *buf, size_t len)
{
    const char *s = (const char *)v->data.scalar.value;
    if (v->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (v->type == YAML_SEQUENCE_NODE)
        return "a list";
    if (is_null(v))
        return "an empty value";
    if (strlen(s) > 48)
        snprintf(buf, len, "\"%.45s...\"", s);
    else
        snprintf(buf, len, "\"%s\"", s);
    return buf;
}

static int
fail_expect(struct parse *p, const yaml_node_t *v, const char *label, const char *expected)
{
    char buf[64];
    return fail_at(p, v, "\"%s\" must be %s, got %s", label, expected,
                   describe(v, buf, sizeof(buf)));
}

/* The text of a scalar that must be present and NUL-free. */
static int
get_scalar(struct parse *p, const yaml_node_t *v, const char *label, const char *expected,
           const char **text)
{
    if (v->type != YAML_SCALAR_NODE || is_null(v))
        return fail_expect(p, v, label, expected);
    if (strlen((const char *)v->data.scalar.value) != v->data.scalar.length)
        return fail_at(p, v, "\"%s\" contains a NUL character; remove it", label);
    *text = (const char *)v->data.scalar.value;
    return 0;
}

static const yaml_node_t *
node_at(struct parse *p, int index)
{
    return yaml_document_get_node(&p->doc, index);
}

/* "listen", "hosts" and "origins" take a list or one item: a scalar counts as one. */
static size_t
list_len(const yaml_node_t *v)
{
    if (v->type == YAML_SEQUENCE_NODE)
        return (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    return 1;
}

static const yaml_node_t *
list_item(struct parse *p, const yaml_node_t *v, size_t i)
{
    if (v->type == YAML_SEQUENCE_NODE)
        return node_at(p, v->data.sequence.items.start[i]);
    return v;
}

/* ---- numbers, durations, sizes, addresses ---- */

static int
scale(const char *text, const struct unit *units, size_t nunits, bool icase, uint64_t *out)
{
    uint64_t v;
    size_t digits = strspn(text, "0123456789");
    const char *unit = text + digits;
    if (str_to_u64(text, digits, &v) < 0)
        return -1;
    for (size_t i = 0; i < nunits; i++) {
        if ((icase ? strcasecmp(unit, units[i].name) : strcmp(unit, units[i].name)) != 0)
            continue;
        if (v > UINT64_MAX / units[i].mult)
            return -1;
        *out = v * units[i].mult;
        return 0;
    }
    return -1;
}

int
config_duration_parse(const char *text, uint64_t *ms)
{
    return scale(text, duration_units, ARRAY_SIZE(duration_units), false, ms);
}

int
config_size_parse(const char *text, uint64_t *bytes)
{
    return scale(text, size_units, ARRAY_SIZE(size_units), true, bytes);
}

static int
port_parse(const char *s, size_t len, uint16_t *port)
{
    uint64_t v;
    if (str_to_u64(s, len, &v) < 0 || v == 0 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

static void
addr_set_text(struct config_addr *a)
{
    char ip[INET6_ADDRSTRLEN];
    if (a->sa.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        snprintf(a->text, sizeof(a->text), "[%s]:%u", ip, ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        snprintf(a->text, sizeof(a->text), "%s:%u", ip, ntohs(s4->sin_port));
    }
}

/* host is an IP literal ("" = any IPv4 address); v6 when it was written in brackets. */
static int
addr_fill(const char *host, bool v6, uint16_t port, struct config_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (v6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->sa;
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
            return -1;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        out->salen = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&out->sa;
        if (host[0] == '\0')
            s4->sin_addr.s_addr = htonl(INADDR_ANY);
        else if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
            return -1;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        out->salen = sizeof(*s4);
    }
    addr_set_text(out);
    return 0;
}

/* Split "[v6]:port", "v4:port", ":port", "v4" into host (copied) and port text. */
static int
addr_split(const char *text, char *host, size_t hostlen, bool *v6, const char **port)
{
    const char *end;
    *v6 = text[0] == '[';
    if (*v6) {
        text++;
        end = strchr(text, ']');
        if (end == NULL || (end[1] != '\0' && end[1] != ':'))
            return -1;
        *port = end[1] == ':' ? end + 2 : NULL;
    } else {
        end = strchr(text, ':');
        if (end != NULL && strchr(end + 1, ':') != NULL)
            return -1; /* IPv6 without brackets: the port would be ambiguous */
        *port = end != NULL ? end + 1 : NULL;
        if (end == NULL)
            end = text + strlen(text);
    }
    if ((size_t)(end - text) >= hostlen)
        return -1;
    memcpy(host, text, (size_t)(end - text));
    host[end - text] = '\0';
    return 0;
}

int
config_addr_parse(const char *text, uint16_t default_port, struct config_addr *out)
{
    char host[INET6_ADDRSTRLEN];
    const char *port = NULL;
    uint16_t portnum = default_port;
    bool v6 = false;
    if (text == NULL || text[0] == '\0')
        return -1;
    if (strspn(text, "0123456789") == strlen(text)) {
        host[0] = '\0';
        port = text;
    } else if (addr_split(text, host, sizeof(host), &v6, &port) < 0) {
        return -1;
    }
    if (port != NULL && port_parse(port, strlen(port), &portnum) < 0)
        return -1;
    if (portnum == 0)
        return -1;
    return addr_fill(host, v6, portnum, out);
}

static bool
addr_equal(const struct config_addr *a, const struct config_addr *b)
{
    if (a->sa.ss_family != b->sa.ss_family)
        return false;
    if (a->sa.ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)&a->sa, *y = (const void *)&b->sa;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    const struct sockaddr_in *x = (const void *)&a->sa, *y = (const void *)&b->sa;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
}

/* ---- names ---- */

static bool
isalnum_ascii(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Letters, digits, '-' and '_' in dot-separated labels of 1-63 characters. */
static bool
dns_name_valid(const char *s, size_t len)
{
    size_t label = 0;
    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (isalnum_ascii(c) || c == '-' || c == '_') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0;
}

/* A host pattern for a zone: a name, "*.name", or "*". Lower-cased in place. */
static bool
host_pattern_valid(char *s)
{
    for (char *c = s; *c != '\0'; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    if (strcmp(s, "*") == 0)
        return true;
    if (s[0] == '*' && s[1] == '.')
        return dns_name_valid(s + 2, strlen(s + 2));
    size_t len = strlen(s);
    if (len > 0 && s[len - 1] == '.')
        s[len - 1] = '\0';
    return dns_name_valid(s, strlen(s));
}

/* ---- generic fields ---- */

static uint64_t *
u64_at(void *obj, const struct field *f)
{
    return (uint64_t *)((char *)obj + f->offset);
}

static int
field_duration(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
               const struct field *f)
{
    const char *text;
    if (get_scalar(p, v, label, EXPECT_DURATION, &text) < 0)
        return -1;
    if (config_duration_parse(text, u64_at(obj, f)) < 0)
        return fail_expect(p, v, label, EXPECT_DURATION);
    return 0;
}

static int
field_timeout(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
              const struct field *f)
{
    if (field_duration(p, v, label, obj, f) < 0)
        return -1;
    if (*u64_at(obj, f) == 0)
        return fail_expect(p, v, label, EXPECT_TIMEOUT);
    return 0;
}

static int
field_size(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
           const struct field *f)
{
    const char *text;
    if (get_scalar(p, v, label, EXPECT_SIZE, &text) < 0)
        return -1;
    if (config_size_parse(text, u64_at(obj, f)) < 0)
        return fail_expect(p, v, label, EXPECT_SIZE);
    return 0;
}

static int
field_header_size(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
                  const struct field *f)
{
    if (field_size(p, v, label, obj, f) < 0)
        return -1;
    uint64_t n = *u64_at(obj, f);
    if (n < KIB || n > MIB)
        return fail_expect(p, v, label, EXPECT_HEADER_SIZE);
    return 0;
}

static int
field_count(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
            const struct field *f)
{
    const char *text;
    if (get_scalar(p, v, label, EXPECT_COUNT, &text) < 0)
        return -1;
    if (str_to_u64(text, strlen(text), u64_at(obj, f)) < 0)
        return fail_expect(p, v, label, EXPECT_COUNT);
    return 0;
}

/* A small count (0..1000) into a uint32_t member. */
static int
field_u32(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
          const struct field *f)
{
    const char *text;
    uint64_t n;
    const char *expected = "a whole number from 0 to 1000";
    if (get_scalar(p, v, label, expected, &text) < 0)
        return -1;
    if (str_to_u64(text, strlen(text), &n) < 0 || n > 1000)
        return fail_expect(p, v, label, expected);
    *(uint32_t *)((char *)obj + f->offset) = (uint32_t)n;
    return 0;
}

static int
parse_bool(struct parse *p, const yaml_node_t *v, const char *label, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    const char *text;
    if (get_scalar(p, v, label, EXPECT_BOOL, &text) < 0)
        return -1;
    for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return fail_expect(p, v, label, EXPECT_BOOL);
}

static int
field_bool(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
           const struct field *f)
{
    return parse_bool(p, v, label, (bool *)((char *)obj + f->offset));
}

static int
field_reserved(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
               const struct field *f)
{
    return fail_at(p, v, "\"%s\" is not supported yet by this version of Verge; remove it",
                   label);
}

static int parse_mapping(struct parse *p, const yaml_node_t *v, const char *label,
                         const struct field_table *t, void *obj);

static int
field_section(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
              const struct field *f)
{
    return parse_mapping(p, v, label, f->sub, obj);
}

static void
list_keys(const struct field_table *t, char *out, size_t len)
{
    size_t off = 0;
    out[0] = '\0';
    for (size_t i = 0; i < t->nfields && off < len; i++)
        off += (size_t)snprintf(out + off, len - off, "%s%s", i ? ", " : "", t->fields[i].key);
}

/* Walk a mapping: every key must be known to t and appear once. */
static int
parse_mapping(struct parse *p, const yaml_node_t *v, const char *label,
              const struct field_table *t, void *obj)
{
    if (v->type != YAML_MAPPING_NODE)
        return fail_expect(p, v, label, "a mapping of keys to values");
    yaml_node_pair_t *start = v->data.mapping.pairs.start, *top = v->data.mapping.pairs.top;
    for (yaml_node_pair_t *pair = start; pair < top; pair++) {
        const yaml_node_t *k = node_at(p, pair->key), *val = node_at(p, pair->value);
        const char *key;
        if (get_scalar(p, k, label, "a plain key", &key) < 0)
            return -1;
        for (yaml_node_pair_t *prev = start; prev < pair; prev++)
            if (strcmp((const char *)node_at(p, prev->key)->data.scalar.value, key) == 0)
                return fail_at(p, k, "duplicate key \"%s\" %s; keep one of them", key,
                               t->where);
        const struct field *f = NULL;
        for (size_t i = 0; i < t->nfields && f == NULL; i++)
            if (strcmp(t->fields[i].key, key) == 0)
                f = &t->fields[i];
        if (f == NULL) {
            char keys[512];
            list_keys(t, keys, sizeof(keys));
            return fail_at(p, k, "unknown key \"%s\" %s; valid keys are: %s", key, t->where,
                           keys);
        }
        if (f->parse(p, val, key, obj, f) < 0)
            return -1;
    }
    return 0;
}

/* ---- strings, logs, admin, listen, workers ---- */

static int
set_string(struct parse *p, const yaml_node_t *v, const char *label, char **out)
{
    const char *text;
    if (get_scalar(p, v, label, "a non-empty string", &text) < 0)
        return -1;
    free(*out);
    *out = xstrdup(text);
    return 0;
}

static int
field_edge_name(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
                const struct field *f)
{
    struct config *cfg = obj;
    if (set_string(p, v, label, &cfg->edge_name) < 0)
        return -1;
    for (const char *c = cfg->edge_name; *c; c++)
        if (!isalnum_ascii((unsigned char)*c) && strchr("-._", *c) == NULL)
            return fail_at(p, v, "\"edge_name\" may hold letters, digits, '-', '.' and '_' "
                                 "only (it goes into Via and Proxy-Status)");
    return 0;
}

/* A log destination: "off", "stdout", "stderr", or a path (relative to the file's dir). */
static int
log_dest(struct parse *p, const yaml_node_t *v, const char *label, char **out)
{
    const char *text;
    if (get_scalar(p, v, label, "a path, \"stdout\", \"stderr\" or \"off\"", &text) < 0)
        return -1;
    free(*out);
    *out = NULL;
    if (strcmp(text, "off") == 0)
        return 0;
    if (text[0] == '/' || strcmp(text, "stdout") == 0 || strcmp(text, "stderr") == 0 ||
        p->dir == NULL) {
        *out = xstrdup(text);
        return 0;
    }
    size_t len = strlen(p->dir) + strlen(text) + 2;
    *out = xmalloc(len);
    snprintf(*out, len, "%s/%s", p->dir, text);
    return 0;
}

static int
field_log_access(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
                 const struct field *f)
{
    return log_dest(p, v, label, &((struct config *)obj)->access_log);
}

static int
field_log_error(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
                const struct field *f)
{
    return log_dest(p, v, label, &((struct config *)obj)->error_log);
}

/* A scalar that must be one of names; its index goes to *out. */
static int
parse_choice(struct parse *p, const yaml_node_t *v, const char *label,
             const char *const *names, size_t n, int *out)
{
    const char *text;
    char expected[128] = "";
    size_t off = 0;
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(expected + off, sizeof(expected) - off, "%s\"%s\"",
                                i == 0 ? "one of " : ", ", names[i]);
    if (get_scalar(p, v, label, expected, &text) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(text, names[i]) == 0) {
            *out = (int)i;
            return 0;
        }
    return fail_expect(p, v, label, expected);
}

static int
field_log_format(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
                 const struct field *f)
{
    static const char *const names[] = {"combined", "json"};
    int i;
    if (parse_choice(p, v, label, names, ARRAY_SIZE(names), &i) < 0)
        return -1;
    ((struct config *)obj)->access_log_format = (enum config_log_format)i;
    return 0;
}

static int
field_preflight(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
                const struct field *f)
{
    static const char *const names[] = {"warn", "refuse", "off"};
    int i;
    if (parse_choice(p, v, label, names, ARRAY_SIZE(names), &i) < 0)
        return -1;
    ((struct config *)obj)->preflight = (enum config_preflight)i;
    return 0;
}

static int
field_log_level(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
                const struct field *f)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    int i;
    if (parse_choice(p, v, label, names, ARRAY_SIZE(names), &i) < 0)
        return -1;
    ((struct config *)obj)->error_log_level = (enum config_log_level)i;
    return 0;
}

static int
parse_addr(struct parse *p, const yaml_node_t *v, const char *label, uint16_t port,
           struct config_addr *out)
{
    const char *text;
    if (get_scalar(p, v, label, EXPECT_ADDRESS, &text) < 0)
        return -1;
    if (config_addr_parse(text, port, out) < 0)
        return fail_expect(p, v, label, EXPECT_ADDRESS);
    return 0;
}

static int
field_admin_listen(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
                   const struct field *f)
{
    struct config *cfg = obj;
    if (v->type == YAML_SCALAR_NODE && strcmp((const char *)v->data.scalar.value, "off") == 0) {
        cfg->admin_enabled = false;
        return 0;
    }
    cfg->admin_enabled = true;
    p->admin_node = v;
    return parse_addr(p, v, label, CONFIG_ADMIN_PORT, &cfg->admin_listen);
}

/* The admin token: the first line of a file (relative to the configuration's directory). */
static int
field_token_file(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
                 const struct field *f)
{
    struct config *cfg = obj;
    char *path = NULL, line[512];
    if (log_dest(p, v, label, &path) < 0)
        return -1;
    FILE *file = path ? fopen(path, "r") : NULL;
    if (file == NULL) {
        int rc = fail_at(p, v, "cannot read admin token file %s: %s; create it with one "
                               "secret line (e.g. openssl rand -hex 32 > FILE)",
                         path ? path : "off", path ? strerror(errno) : "no path");
        free(path);
        return rc;
    }
    if (fgets(line, sizeof(line), file) == NULL)
        line[0] = '\0';
    fclose(file);
    line[strcspn(line, "\r\n")] = '\0';
    if (strlen(line) < 16) {
        int rc = fail_at(p, v, "admin token in %s is shorter than 16 characters; use a long "
                               "random secret", path);
        free(path);
        return rc;
    }
    free(path);
    free(cfg->admin_token);
    cfg->admin_token = xstrdup(line);
    return 0;
}

static const struct field admin_fields[] = {
    {"listen", field_admin_listen, 0, NULL},
    {"token_file", field_token_file, 0, NULL},
};
static const struct field_table admin_table = {"in admin", admin_fields,
                                               ARRAY_SIZE(admin_fields)};

static int
field_admin(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
            const struct field *f)
{
    if (v->type == YAML_SCALAR_NODE && strcmp((const char *)v->data.scalar.value, "off") == 0)
        return field_admin_listen(p, v, label, obj, f);
    return parse_mapping(p, v, label, &admin_table, obj);
}

static int
field_listen(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
             const struct field *f)
{
    struct config *cfg = obj;
    size_t n = list_len(v);
    if (n == 0)
        return fail_at(p, v, "\"listen\" is empty; give at least one address such as "
                              "\"127.0.0.1:8080\"");
    free(cfg->listens);
    cfg->listens = xcalloc(n, sizeof(*cfg->listens));
    cfg->nlistens = n;
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = list_item(p, v, i);
        if (parse_addr(p, item, label, CONFIG_DEFAULT_PORT, &cfg->listens[i]) < 0)
            return -1;
        for (size_t j = 0; j < i; j++)
            if (addr_equal(&cfg->listens[i], &cfg->listens[j]))
                return fail_at(p, item, "listen address %s is given twice; keep one",
                               cfg->listens[i].text);
    }
    return 0;
}

static int
field_workers(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
              const struct field *f)
{
    struct config *cfg = obj;
    const char *text;
    uint64_t n;
    const char *expected = "\"auto\" or a number of threads from 1 to 256";
    if (get_scalar(p, v, label, expected, &text) < 0)
        return -1;
    if (strcmp(text, "auto") == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->workers = (int)MIN(MAX(cpus, 1L), (long)CONFIG_MAX_WORKERS);
        return 0;
    }
    if (str_to_u64(text, strlen(text), &n) < 0 || n < 1 || n > CONFIG_MAX_WORKERS)
        return fail_expect(p, v, label, expected);
    cfg->workers = (int)n;
    return 0;
}

/* ---- origins ---- */

/* The address of a literal IP origin. Names are resolved later, per request (src/dns). */
static void
origin_resolve(struct config_origin *o)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST},
                    *res, *ai;
    char port[8];
    snprintf(port, sizeof(port), "%u", o->port);
    int rc = getaddrinfo(o->host, port, &hints, &res);
    if (rc != 0) {
        o->resolve_error = xstrdup(gai_strerror(rc));
        return;
    }
    for (ai = res; ai != NULL && o->naddrs < CONFIG_MAX_ADDRS; ai = ai->ai_next) {
        struct config_addr a = {0};
        memcpy(&a.sa, ai->ai_addr, ai->ai_addrlen);
        a.salen = ai->ai_addrlen;
        addr_set_text(&a);
        bool seen = false;
        for (int i = 0; i < o->naddrs && !seen; i++)
            seen = addr_equal(&o->addrs[i], &a);
        if (!seen)
            o->addrs[o->naddrs++] = a;
    }
    freeaddrinfo(res);
    if (o->naddrs == 0)
        o->resolve_error = xstrdup("no IPv4 or IPv6 address");
}

/* "http://host[:port][/]" → host, port, hostport. An error message, or NULL. */
static const char *
origin_parse_url(const char *url, struct config_origin *o)
{
    static const char *const scheme = "http://";
    if (strncasecmp(url, "https://", 8) == 0)
        return "TLS to origins is not supported yet; use an http:// origin URL";
    if (strncasecmp(url, scheme, strlen(scheme)) != 0)
        return "an origin URL starts with http://, as in \"http://origin.example.com:8000\"";
    const char *auth = url + strlen(scheme);
    size_t alen = strcspn(auth, "/?#");
    if (auth[alen] != '\0' && strcmp(auth + alen, "/") != 0)
        return "an origin URL has no path or query; give only http://host:port";
    char host[256], text[300];
    bool v6;
    const char *port;
    if (alen == 0 || alen >= sizeof(text))
        return "the origin URL has no host";
    memcpy(text, auth, alen);
    text[alen] = '\0';
    if (addr_split(text, host, sizeof(host), &v6, &port) < 0 || host[0] == '\0')
        return "the origin URL's host is not valid (IPv6 addresses go in brackets: "
               "http://[2001:db8::1]:8000)";
    o->port = 80;
    if (port != NULL && port_parse(port, strlen(port), &o->port) < 0)
        return "the origin URL's port must be a number from 1 to 65535";
    struct in6_addr a6;
    struct in_addr a4;
    if (v6 ? inet_pton(AF_INET6, host, &a6) != 1 : !dns_name_valid(host, strlen(host)))
        return "the origin URL's host is not a valid name or address";
    o->literal = v6 || inet_pton(AF_INET, host, &a4) == 1;
    o->url = xstrdup(url);
    o->host = xstrdup(host);
    size_t hplen = strlen(host) + 16;
    o->hostport = xmalloc(hplen);
    if (o->port == 80)
        snprintf(o->hostport, hplen, v6 ? "[%s]" : "%s", host);
    else
        snprintf(o->hostport, hplen, v6 ? "[%s]:%u" : "%s:%u", host, o->port);
    return NULL;
}

static int
field_origin_url(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
                 const struct field *f)
{
    struct config_origin *o = obj;
    const char *url, *problem;
    if (get_scalar(p, v, label, "an origin URL such as \"http://10.0.0.5:8000\"", &url) < 0)
        return -1;
    if ((problem = origin_parse_url(url, o)) != NULL)
        return fail_at(p, v, "%s", problem);
    if (o->literal)
        origin_resolve(o);
    return 0;
}

static const struct field origin_fields[] = {
    {"url", field_origin_url, 0, NULL},
    {"backup", field_bool, offsetof(struct config_origin, backup), NULL},
    {"weight", field_reserved, 0, NULL},
};
static const struct field_table origin_table = {"in an origin", origin_fields,
                                                ARRAY_SIZE(origin_fields)};

static int
field_origins(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
              const struct field *f)
{
    struct config_zone *z = obj;
    size_t n = list_len(v);
    if (n == 0)
        return fail_at(p, v, "\"origins\" is empty; give at least one, such as "
                              "\"http://10.0.0.5:8000\"");
    z->origins = xcalloc(n, sizeof(*z->origins));
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = list_item(p, v, i);
        struct config_origin *o = &z->origins[z->norigins++];
        int rc = item->type == YAML_MAPPING_NODE
                     ? parse_mapping(p, item, "origin", &origin_table, o)
                     : field_origin_url(p, item, "origins", o, NULL);
        if (rc < 0)
            return -1;
        if (o->url == NULL)
            return fail_at(p, item, "this origin has no \"url\"; add url: http://host:port");
    }
    return 0;
}

/* ---- zones ---- */

static int
field_zone_name(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
                const struct field *f)
{
    p->zone_name_node = v;
    return set_string(p, v, label, &((struct config_zone *)obj)->name);
}

static int
field_hosts(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
            const struct field *f)
{
    struct config_zone *z = obj;
    size_t n = list_len(v);
    if (n == 0)
        return fail_at(p, v, "\"hosts\" is empty; give the names this zone serves");
    z->hosts = xcalloc(n, sizeof(*z->hosts));
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = list_item(p, v, i);
        const char *text;
        if (get_scalar(p, item, label, EXPECT_HOST, &text) < 0)
            return -1;
        z->hosts[z->nhosts++] = xstrdup(text);
        if (!host_pattern_valid(z->hosts[z->nhosts - 1]))
            return fail_expect(p, item, label, EXPECT_HOST);
    }
    return 0;
}

static int
field_origin_host(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
                  const struct field *f)
{
    struct config_zone *z = obj;
    const char *text;
    if (get_scalar(p, v, label, "\"origin\", \"visitor\" or a host name", &text) < 0)
        return -1;
    free(z->origin_host_value);
    z->origin_host_value = NULL;
    if (strcmp(text, "origin") == 0) {
        z->origin_host = CONFIG_HOST_ORIGIN;
    } else if (strcmp(text, "visitor") == 0) {
        z->origin_host = CONFIG_HOST_VISITOR;
    } else {
        if (strcspn(text, " \t\r\n/@") != strlen(text))
            return fail_expect(p, v, label, "\"origin\", \"visitor\" or a host name");
        z->origin_host = CONFIG_HOST_FIXED;
        z->origin_host_value = xstrdup(text);
    }
    return 0;
}

#define ZONE_FIELD(member) offsetof(struct config_zone, member)
#define ERROR_PAGE_MAX (64 * 1024)

/* Placeholders a template may use; anything else between {{ }} is a mistake. */
static const char *const page_placeholders[] = {
    "status", "reason", "what", "advice", "cause", "hint", "check",
    "request_id", "edge", "time", "host", "retry_after",
};

static int
check_placeholders(struct parse *p, const yaml_node_t *v, const char *path, const char *html)
{
    for (const char *s = strstr(html, "{{"); s != NULL; s = strstr(s + 2, "{{")) {
        const char *end = strstr(s + 2, "}}");
        size_t len = end ? (size_t)(end - s - 2) : 0;
        bool known = false;
        for (size_t i = 0; end && i < ARRAY_SIZE(page_placeholders) && !known; i++)
            known = strlen(page_placeholders[i]) == len &&
                    strncmp(page_placeholders[i], s + 2, len) == 0;
        if (!known)
            return fail_at(p, v, "error page %s has an unknown placeholder \"%.*s\"; known "
                                 "ones: {{status}} {{reason}} {{what}} {{advice}} {{cause}} "
                                 "{{hint}} {{check}} {{request_id}} {{edge}} {{time}} {{host}} "
                                 "{{retry_after}}",
                           path, end ? (int)MIN(len + 4, 64u) : 2, s);
    }
    return 0;
}

static int
load_page(struct parse *p, const yaml_node_t *v, struct config_error_page *page)
{
    if (log_dest(p, v, "error page", &page->path) < 0)
        return -1;
    FILE *f = page->path ? fopen(page->path, "r") : NULL;
    if (f == NULL)
        return fail_at(p, v, "cannot read error page %s: %s; fix the path (relative paths "
                              "start at the configuration's directory)",
                       page->path ? page->path : "off", strerror(errno));
    page->html = xmalloc(ERROR_PAGE_MAX + 1);
    size_t n = fread(page->html, 1, ERROR_PAGE_MAX + 1, f);
    fclose(f);
    if (n > ERROR_PAGE_MAX)
        return fail_at(p, v, "error page %s is larger than 64 KiB; keep pages small",
                       page->path);
    page->html[n] = '\0';
    return check_placeholders(p, v, page->path, page->html);
}

/* pass_headers: [ X-Forwarded-Host ]: field names, kept lower case. */
static int
field_pass_headers(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
                   const struct field *f)
{
    struct config_zone *z = obj;
    size_t n = list_len(v);
    z->pass_headers = xcalloc(n ? n : 1, sizeof(*z->pass_headers));
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = list_item(p, v, i);
        const char *text;
        if (get_scalar(p, item, label, "a header field name", &text) < 0)
            return -1;
        char *name = xstrdup(text);
        z->pass_headers[z->npass_headers++] = name;
        for (char *c = name; *c; c++) {
            if (!isalnum_ascii((unsigned char)*c) && *c != '-' && *c != '_')
                return fail_expect(p, item, label, "a header field name");
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        }
    }
    return 0;
}

/* error_pages: { 502: pages/502.html, 5xx: pages/5xx.html } */
static int
field_error_pages(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
                  const struct field *f)
{
    struct config_zone *z = obj;
    if (v->type != YAML_MAPPING_NODE)
        return fail_expect(p, v, label, "a mapping of statuses to HTML files");
    size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    z->error_pages = xcalloc(n ? n : 1, sizeof(*z->error_pages));
    for (yaml_node_pair_t *pair = v->data.mapping.pairs.start; pair < v->data.mapping.pairs.top;
         pair++) {
        const yaml_node_t *k = node_at(p, pair->key);
        const char *key;
        uint64_t status = 0;
        if (get_scalar(p, k, label, "a status such as 502, or 5xx", &key) < 0)
            return -1;
        if (strcmp(key, "5xx") != 0 &&
            (str_to_u64(key, strlen(key), &status) < 0 || status < 400 || status > 599))
            return fail_expect(p, k, label, "a status from 400 to 599, or 5xx");
        struct config_error_page *page = &z->error_pages[z->nerror_pages++];
        page->status = (int)status;
        for (size_t i = 0; i + 1 < z->nerror_pages; i++)
            if (z->error_pages[i].status == page->status)
                return fail_at(p, k, "error page for %s is given twice; keep one", key);
        if (load_page(p, node_at(p, pair->value), page) < 0)
            return -1;
    }
    return 0;
}

static int
field_key_query(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
                const struct field *f)
{
    static const char *const names[] = {"keep", "ignore", "sort"};
    int i;
    if (parse_choice(p, v, label, names, ARRAY_SIZE(names), &i) < 0)
        return -1;
    ((struct config_zone *)obj)->cache_key_query = (enum config_cache_query)i;
    return 0;
}

static const struct field cache_key_fields[] = {
    {"query", field_key_query, 0, NULL},
};
static const struct field_table cache_key_table = {"in cache_key", cache_key_fields,
                                                   ARRAY_SIZE(cache_key_fields)};

static const struct field timeout_fields[] = {
    {"connect", field_timeout, ZONE_FIELD(connect_timeout), NULL},
    {"send", field_timeout, ZONE_FIELD(send_timeout), NULL},
    {"header", field_timeout, ZONE_FIELD(header_timeout), NULL},
    {"idle", field_timeout, ZONE_FIELD(idle_timeout), NULL},
};
static const struct field_table timeout_table = {"in timeouts", timeout_fields,
                                                 ARRAY_SIZE(timeout_fields)};

static const struct field forwarded_fields[] = {
    {"via", field_bool, ZONE_FIELD(add_via), NULL},
    {"x_forwarded_for", field_bool, ZONE_FIELD(add_x_forwarded_for), NULL},
    {"x_forwarded_proto", field_bool, ZONE_FIELD(add_x_forwarded_proto), NULL},
};
static const struct field_table forwarded_table = {"in forwarded", forwarded_fields,
                                                   ARRAY_SIZE(forwarded_fields)};

static int
field_active_path(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
                  const struct field *f)
{
    struct config_zone *z = obj;
    if (set_string(p, v, label, &z->active_path) < 0)
        return -1;
    if (z->active_path[0] != '/' || strcspn(z->active_path, " \t\r\n") != strlen(z->active_path))
        return fail_expect(p, v, label, "a path starting with /, such as \"/healthz\"");
    return 0;
}

static const struct field active_fields[] = {
    {"path", field_active_path, 0, NULL},
    {"interval", field_timeout, ZONE_FIELD(active_interval), NULL},
    {"timeout", field_timeout, ZONE_FIELD(active_timeout), NULL},
    {"rise", field_u32, ZONE_FIELD(active_rise), NULL},
    {"fall", field_u32, ZONE_FIELD(active_fall), NULL},
};
static const struct field_table active_table = {"in health.active", active_fields,
                                                ARRAY_SIZE(active_fields)};

static const struct field health_fields[] = {
    {"failures", field_u32, ZONE_FIELD(health_failures), NULL},
    {"hold", field_timeout, ZONE_FIELD(health_hold), NULL},
    {"count_5xx", field_bool, ZONE_FIELD(health_count_5xx), NULL},
    {"active", field_section, 0, &active_table},
};
static const struct field_table health_table = {"in health", health_fields,
                                                ARRAY_SIZE(health_fields)};

static const struct field zone_fields[] = {
    {"name", field_zone_name, 0, NULL},
    {"hosts", field_hosts, 0, NULL},
    {"origins", field_origins, 0, NULL},
    {"origin_host", field_origin_host, 0, NULL},
    {"timeouts", field_section, 0, &timeout_table},
    {"max_request_body", field_size, ZONE_FIELD(max_request_body), NULL},
    {"forwarded", field_section, 0, &forwarded_table},
    {"allow_private", field_bool, ZONE_FIELD(allow_private), NULL},
    {"expose_details", field_bool, ZONE_FIELD(expose_details), NULL},
    {"retries", field_u32, ZONE_FIELD(retries), NULL},
    {"health", field_section, 0, &health_table},
    {"stale_if_error", field_duration, ZONE_FIELD(stale_if_error), NULL},
    {"stale_while_revalidate", field_duration, ZONE_FIELD(stale_while_revalidate), NULL},
    {"hit_for_miss", field_duration, ZONE_FIELD(hit_for_miss), NULL},
    {"error_pages", field_error_pages, 0, NULL},
    {"pass_headers", field_pass_headers, 0, NULL},
    {"cache", field_bool, ZONE_FIELD(cache_enabled), NULL},
    {"cache_key", field_section, 0, &cache_key_table},
};
static const struct field_table zone_table = {"in a zone", zone_fields,
                                              ARRAY_SIZE(zone_fields)};

static void
zone_defaults(struct config_zone *z)
{
    z->connect_timeout = 5000;
    z->send_timeout = 30000;
    z->header_timeout = 30000;
    z->idle_timeout = 60000;
    z->max_request_body = 100 * MIB;
    z->add_via = z->add_x_forwarded_for = z->add_x_forwarded_proto = true;
    z->allow_private = true;
    z->expose_details = true;
    z->health_failures = 3;
    z->health_hold = 10000;
    z->retries = 2;
    z->hit_for_miss = 120000;
    z->active_interval = 5000;
    z->active_timeout = 2000;
    z->active_rise = 2;
    z->active_fall = 3;
}

const struct config_zone *
config_host_find(const struct config *cfg, uint64_t hash, const char *key, size_t len,
                 bool wildcard)
{
    if (cfg->hosts_by_name == NULL)
        return NULL; /* no zone has a host other than "*" */
    for (size_t i = hash & cfg->host_mask;; i = (i + 1) & cfg->host_mask) {
        const struct config_host *h = &cfg->hosts_by_name[i];
        if (h->zone == NULL)
            return NULL;
        if (h->len == len && h->wildcard == wildcard && memcmp(h->key, key, len) == 0)
            return h->zone;
    }
}

static void
host_put(struct config *cfg, uint64_t hash, struct config_host h)
{
    size_t s = hash & cfg->host_mask;
    while (cfg->hosts_by_name[s].zone != NULL)
        s = (s + 1) & cfg->host_mask;
    cfg->hosts_by_name[s] = h;
}

/* Host (as written in hosts:) of zone z into hosts_by_name, which stays at most half full
 * (twice the slots when it would not) so that a probe for a name no zone has ends soon.
 * The zone that has it already, or NULL. A zone's list may name a host twice. */
static const struct config_zone *
host_add(struct config *cfg, const char *host, const struct config_zone *z)
{
    bool wildcard = host[0] == '*';
    if (wildcard && host[1] == '\0') {
        if (cfg->catch_all == NULL)
            cfg->catch_all = z;
        return cfg->catch_all == z ? NULL : cfg->catch_all;
    }
    const char *key = host + wildcard;
    size_t len = strlen(key);
    uint64_t hash = config_host_hash(key, len);
    const struct config_zone *o = config_host_find(cfg, hash, key, len, wildcard);
    if (o != NULL)
        return o == z ? NULL : o;
    if (2 * (cfg->nhosts_by_name + 1) > cfg->host_mask + 1) { /* also: no table yet */
        struct config_host *old = cfg->hosts_by_name;
        size_t slots = old == NULL ? 8 : 2 * (cfg->host_mask + 1);
        cfg->hosts_by_name = xcalloc(slots, sizeof(*old));
        cfg->host_mask = slots - 1;
        for (size_t i = 0; old != NULL && i < slots / 2; i++)
            if (old[i].zone != NULL)
                host_put(cfg, config_host_hash(old[i].key, old[i].len), old[i]);
        free(old);
    }
    host_put(cfg, hash, (struct config_host){key, (uint32_t)len, wildcard, z});
    cfg->nhosts_by_name++;
    cfg->wildcard_lens |= wildcard ? config_host_len_bit(len) : 0;
    return NULL;
}

/* Names and hosts must be unique across zones: a host served twice would be ambiguous. */
static int
zone_check(struct parse *p, const yaml_node_t *v, size_t index)
{
    struct config *cfg = p->cfg;
    struct config_zone *z = &cfg->zones[index];
    if (z->name == NULL)
        return fail_at(p, v, "this zone has no \"name\"; add name: followed by a label");
    if (z->origins == NULL)
        return fail_at(p, v, "zone \"%s\" has no \"origins\"; add origins: "
                             "[ \"http://host:port\" ]", z->name);
    size_t primaries = 0;
    for (size_t i = 0; i < z->norigins; i++)
        primaries += !z->origins[i].backup;
    if (primaries == 0)
        return fail_at(p, v, "every origin of zone \"%s\" is a backup; mark at least one "
                             "without backup: true", z->name);
    if (z->hosts == NULL) {
        char *h = xstrdup(z->name);
        if (!host_pattern_valid(h)) {
            free(h);
            return fail_at(p, v, "zone \"%s\" has no \"hosts\" and its name is not a host "
                                 "name; add hosts: [ www.example.com ]", z->name);
        }
        z->hosts = xcalloc(1, sizeof(*z->hosts));
        z->hosts[z->nhosts++] = h;
    }
    for (size_t i = 0; i < index; i++) {
        const struct config_zone *o = &cfg->zones[i];
        if (strcmp(o->name, z->name) == 0)
            return fail_at(p, p->zone_name_node ? p->zone_name_node : v,
                           "zone name \"%s\" is used twice; zone names must be unique",
                           z->name);
    }
    for (size_t a = 0; a < z->nhosts; a++) {
        const struct config_zone *o = host_add(cfg, z->hosts[a], z);
        if (o != NULL)
            return fail_at(p, v, "host \"%s\" is served by zones \"%s\" and \"%s\"; "
                                 "a host belongs to one zone", z->hosts[a], o->name, z->name);
    }
    return 0;
}

static int
field_zones(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
            const struct field *f)
{
    struct config *cfg = obj;
    if (v->type != YAML_SEQUENCE_NODE)
        return fail_expect(p, v, label, "a list of zones");
    size_t n = list_len(v);
    cfg->zones = xcalloc(n ? n : 1, sizeof(*cfg->zones));
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = list_item(p, v, i);
        struct config_zone *z = &cfg->zones[cfg->nzones++];
        zone_defaults(z);
        z->zone_index = (int)i;
        p->zone_name_node = NULL;
        if (parse_mapping(p, item, "zone", &zone_table, z) < 0 || zone_check(p, item, i) < 0)
            return -1;
    }
    return 0;
}

/* ---- the top level ---- */

#define CFG_FIELD(member) offsetof(struct config, member)

static const struct field log_fields[] = {
    {"access", field_log_access, 0, NULL},
    {"access_format", field_log_format, 0, NULL},
    {"error", field_log_error, 0, NULL},
    {"level", field_log_level, 0, NULL},
};
static const struct field_table log_table = {"in logs", log_fields, ARRAY_SIZE(log_fields)};

/* client.max_request_line: at least 256 bytes; the header size bounds it anyway, which
 * config_check says when it is set larger. */
static int
field_request_line(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
                   const struct field *f)
{
    const char *expected = "a size from 256 to 1MiB, such as \"8KiB\"";
    if (field_size(p, v, label, obj, f) < 0)
        return -1;
    uint64_t n = *u64_at(obj, f);
    if (n < 256 || n > MIB)
        return fail_expect(p, v, label, expected);
    p->request_line_node = v;
    return 0;
}

static int
field_header_fields(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
                    const struct field *f)
{
    char expected[64];
    snprintf(expected, sizeof(expected), "a number of header fields from 1 to %d",
             CONFIG_MAX_HEADER_FIELDS);
    if (field_count(p, v, label, obj, f) < 0)
        return -1;
    uint64_t n = *u64_at(obj, f);
    if (n < 1 || n > CONFIG_MAX_HEADER_FIELDS)
        return fail_expect(p, v, label, expected);
    return 0;
}

static int
field_max_connections(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
                      const struct field *f)
{
    const char *text, *expected = "\"auto\" or a number of connections from 1 up";
    if (get_scalar(p, v, label, expected, &text) < 0)
        return -1;
    if (strcmp(text, "auto") == 0) {
        *u64_at(obj, f) = 0;
        return 0;
    }
    if (str_to_u64(text, strlen(text), u64_at(obj, f)) < 0 || *u64_at(obj, f) == 0)
        return fail_expect(p, v, label, expected);
    return 0;
}

static const struct field client_fields[] = {
    {"header_timeout", field_timeout, CFG_FIELD(client_header_timeout), NULL},
    {"keepalive_timeout", field_timeout, CFG_FIELD(client_keepalive_timeout), NULL},
    {"send_timeout", field_timeout, CFG_FIELD(client_send_timeout), NULL},
    {"body_timeout", field_timeout, CFG_FIELD(client_body_timeout), NULL},
    {"max_header_size", field_header_size, CFG_FIELD(client_max_header_size), NULL},
    {"max_request_line", field_request_line, CFG_FIELD(client_max_request_line), NULL},
    {"max_header_fields", field_header_fields, CFG_FIELD(client_max_header_fields), NULL},
    {"max_connections", field_max_connections, CFG_FIELD(client_max_connections), NULL},
    {"max_connections_per_client", field_count, CFG_FIELD(client_max_connections_per_client),
     NULL},
};
static const struct field_table client_table = {"in client", client_fields,
                                                ARRAY_SIZE(client_fields)};

static const struct field upstream_fields[] = {
    {"keepalive_timeout", field_timeout, CFG_FIELD(upstream_keepalive_timeout), NULL},
    {"max_idle", field_count, CFG_FIELD(upstream_max_idle), NULL},
    {"max_header_size", field_header_size, CFG_FIELD(upstream_max_header_size), NULL},
};
static const struct field_table upstream_table = {"in upstream", upstream_fields,
                                                  ARRAY_SIZE(upstream_fields)};

#define RES_FIELD(member) offsetof(struct config, resolver.member)

/* Resolver servers: addresses (port 53 by default) kept as c-ares' CSV form. */
static int
field_servers(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
              const struct field *f)
{
    struct config *cfg = obj;
    size_t n = list_len(v), off = 0, cap = n * 72 + 1;
    if (n == 0)
        return fail_at(p, v, "\"servers\" is empty; give resolver addresses or leave the "
                              "key out to use /etc/resolv.conf");
    free(cfg->resolver.servers);
    cfg->resolver.servers = xcalloc(1, cap);
    for (size_t i = 0; i < n; i++) {
        struct config_addr a;
        if (parse_addr(p, list_item(p, v, i), label, 53, &a) < 0)
            return -1;
        off += (size_t)snprintf(cfg->resolver.servers + off, cap - off, "%s%s", i ? "," : "",
                                a.text);
    }
    return 0;
}

static int
field_attempts(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
               const struct field *f)
{
    const char *text;
    uint64_t n;
    if (get_scalar(p, v, label, "a number of attempts from 1 to 10", &text) < 0)
        return -1;
    if (str_to_u64(text, strlen(text), &n) < 0 || n < 1 || n > 10)
        return fail_expect(p, v, label, "a number of attempts from 1 to 10");
    ((struct config *)obj)->resolver.attempts = (int)n;
    return 0;
}

static const struct field resolver_fields[] = {
    {"servers", field_servers, 0, NULL},
    {"min_ttl", field_duration, RES_FIELD(min_ttl), NULL},
    {"max_ttl", field_timeout, RES_FIELD(max_ttl), NULL},
    {"serve_stale", field_duration, RES_FIELD(serve_stale), NULL},
    {"timeout", field_timeout, RES_FIELD(timeout), NULL},
    {"attempts", field_attempts, 0, NULL},
};
static const struct field_table resolver_table = {"in resolver", resolver_fields,
                                                  ARRAY_SIZE(resolver_fields)};

static int
field_eviction(struct parse *p, const yaml_node_t *v, const char *label, void *obj,
               const struct field *f)
{
    static const char *const names[] = {"s3fifo", "lru"};
    int i;
    if (parse_choice(p, v, label, names, ARRAY_SIZE(names), &i) < 0)
        return -1;
    ((struct config *)obj)->cache_eviction = (enum config_eviction)i;
    return 0;
}

static const struct field cache_fields[] = {
    {"memory", field_size, CFG_FIELD(cache_memory), NULL},
    {"eviction", field_eviction, 0, NULL},
    {"max_object", field_size, CFG_FIELD(cache_max_object), NULL},
    {"sendfile_max", field_size, CFG_FIELD(cache_sendfile_max), NULL},
    {"heuristic_cap", field_duration, CFG_FIELD(cache_heuristic_cap), NULL},
    {"lock_timeout", field_duration, CFG_FIELD(cache_lock_timeout), NULL},
};
static const struct field_table cache_table = {"in cache", cache_fields,
                                               ARRAY_SIZE(cache_fields)};

static const struct field top_fields[] = {
    {"listen", field_listen, 0, NULL},
    {"workers", field_workers, 0, NULL},
    {"io_uring", field_bool, CFG_FIELD(io_uring), NULL},
    {"edge_name", field_edge_name, 0, NULL},
    {"shutdown_timeout", field_duration, CFG_FIELD(shutdown_timeout), NULL},
    {"logs", field_section, 0, &log_table},
    {"admin", field_admin, 0, NULL},
    {"client", field_section, 0, &client_table},
    {"upstream", field_section, 0, &upstream_table},
    {"zones", field_zones, 0, NULL},
    {"resolver", field_section, 0, &resolver_table},
    {"cache", field_section, 0, &cache_table},
    {"preflight", field_preflight, 0, NULL},
};
static const struct field_table top_table = {"at the top level", top_fields,
                                             ARRAY_SIZE(top_fields)};

static struct config *
config_new_defaults(void)
{
    struct config *cfg = xcalloc(1, sizeof(*cfg));
    char host[256];
    cfg->refs = 1;
    cfg->listens = xcalloc(1, sizeof(*cfg->listens));
    cfg->nlistens = 1;
    config_addr_parse("127.0.0.1:8080", CONFIG_DEFAULT_PORT, &cfg->listens[0]);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->workers = (int)MIN(MAX(cpus, 1L), (long)CONFIG_MAX_WORKERS);
    cfg->io_uring = true;
    if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
        snprintf(host, sizeof(host), "verge");
    host[sizeof(host) - 1] = '\0';
    cfg->edge_name = xstrdup(host);
    cfg->access_log = xstrdup("stdout");
    cfg->error_log = xstrdup("stderr");
    cfg->error_log_level = CONFIG_LOG_INFO;
    cfg->admin_enabled = true;
    config_addr_parse("127.0.0.1:8081", CONFIG_ADMIN_PORT, &cfg->admin_listen);
    cfg->client_header_timeout = 10000;
    cfg->client_keepalive_timeout = 75000;
    cfg->client_send_timeout = 60000;
    cfg->client_body_timeout = 60000;
    cfg->client_max_header_size = 32 * KIB;
    cfg->client_max_request_line = 8 * KIB;
    cfg->client_max_header_fields = 100;
    cfg->client_max_connections = 0;
    cfg->client_max_connections_per_client = 1000;
    cfg->shutdown_timeout = 10000;
    cfg->upstream_keepalive_timeout = 60000;
    cfg->upstream_max_idle = 64;
    cfg->upstream_max_header_size = 64 * KIB;
    cfg->cache_memory = 256 * MIB;
    cfg->cache_max_object = 64 * MIB;
    cfg->cache_sendfile_max = 128 * KIB;
    cfg->cache_heuristic_cap = 86400000;
    cfg->cache_lock_timeout = 5000;
    cfg->resolver.min_ttl = 5000;
    cfg->resolver.max_ttl = 3600000;
    cfg->resolver.serve_stale = 3600000;
    cfg->resolver.timeout = 2000;
    cfg->resolver.attempts = 2;
    return cfg;
}

static void
config_free(struct config *cfg)
{
    for (size_t i = 0; i < cfg->nzones; i++) {
        struct config_zone *z = &cfg->zones[i];
        for (size_t j = 0; j < z->nhosts; j++)
            free(z->hosts[j]);
        for (size_t j = 0; j < z->norigins; j++) {
            free(z->origins[j].url);
            free(z->origins[j].host);
            free(z->origins[j].hostport);
            free(z->origins[j].resolve_error);
        }
        free(z->name);
        free(z->hosts);
        free(z->origins);
        free(z->origin_host_value);
        free(z->active_path);
        for (size_t j = 0; j < z->npass_headers; j++)
            free(z->pass_headers[j]);
        free(z->pass_headers);
        for (size_t j = 0; j < z->nerror_pages; j++) {
            free(z->error_pages[j].path);
            free(z->error_pages[j].html);
        }
        free(z->error_pages);
    }
    free(cfg->zones);
    free(cfg->hosts_by_name);
    free(cfg->resolver.servers);
    free(cfg->admin_token);
    free(cfg->listens);
    free(cfg->file);
    free(cfg->edge_name);
    free(cfg->access_log);
    free(cfg->error_log);
    free(cfg);
}

struct config *
config_acquire(struct config *cfg)
{
    if (cfg != NULL)
        __atomic_add_fetch(&cfg->refs, 1, __ATOMIC_RELAXED);
    return cfg;
}

void
config_release(struct config **cfgp)
{
    struct config *cfg = *cfgp;
    *cfgp = NULL;
    if (cfg != NULL && __atomic_sub_fetch(&cfg->refs, 1, __ATOMIC_ACQ_REL) == 0)
        config_free(cfg);
}

/* Checks that need the whole file. */
static int
config_check(struct parse *p, const yaml_node_t *root)
{
    struct config *cfg = p->cfg;
    if (cfg->nzones == 0)
        return fail_at(p, root, "no zones configured; add a zones: list (see "
                                "docs/configuration.md)");
    if (cfg->resolver.min_ttl > cfg->resolver.max_ttl)
        return fail_at(p, root, "resolver min_ttl is larger than max_ttl; make min_ttl the "
                                "smaller one");
    if (p->request_line_node != NULL && cfg->client_max_request_line > cfg->client_max_header_size)
        return fail_at(p, p->request_line_node,
                       "client max_request_line (%llu bytes) is larger than max_header_size "
                       "(%llu bytes), which bounds the request line too; make it smaller or "
                       "raise max_header_size",
                       (unsigned long long)cfg->client_max_request_line,
                       (unsigned long long)cfg->client_max_header_size);
    for (size_t i = 0; cfg->admin_enabled && i < cfg->nlistens; i++)
        if (addr_equal(&cfg->listens[i], &cfg->admin_listen))
            return fail_at(p, p->admin_node ? p->admin_node : root,
                           "admin listen address %s is also a visitor listen address; "
                           "give the admin endpoint its own port", cfg->admin_listen.text);
    return 0;
}

static int
parse_document(struct parse *p, yaml_parser_t *parser)
{
    if (!yaml_parser_load(parser, &p->doc)) {
        snprintf(p->err, p->errlen, "%s:%zu:%zu: %s%s%s; fix the YAML syntax", p->name,
                 parser->problem_mark.line + 1, parser->problem_mark.column + 1,
                 parser->problem ? parser->problem : "invalid YAML",
                 parser->context ? " " : "", parser->context ? parser->context : "");
        return -1;
    }
    const yaml_node_t *root = yaml_document_get_root_node(&p->doc);
    int rc;
    if (root == NULL) {
        yaml_mark_t m = {0};
        yaml_node_t empty = {.type = YAML_SCALAR_NODE, .start_mark = m};
        rc = fail_at(p, &empty, "the configuration is empty; add a zones: list (see "
                                "docs/configuration.md)");
    } else {
        rc = parse_mapping(p, root, "configuration", &top_table, p->cfg);
        if (rc == 0)
            rc = config_check(p, root);
    }
    yaml_document_delete(&p->doc);
    return rc;
}

static int
load(const char *name, FILE *file, const char *yaml, struct config **out, char *err,
     size_t errlen)
{
    yaml_parser_t parser;
    struct parse p = {.name = name, .err = err, .errlen = errlen};
    p.cfg = config_new_defaults();
    const char *slash = strrchr(name, '/');
    p.dir = slash == name ? xstrdup("/")
            : slash      ? xstrndup(name, (size_t)(slash - name))
                         : xstrdup(".");
    yaml_parser_initialize(&parser);
    if (file != NULL)
        yaml_parser_set_input_file(&parser, file);
    else
        yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, strlen(yaml));
    int rc = parse_document(&p, &parser);
    yaml_parser_delete(&parser);
    free(p.dir);
    if (rc < 0) {
        config_free(p.cfg);
        return -1;
    }
    p.cfg->file = xstrdup(name);
    *out = p.cfg;
    return 0;
}

int
config_load(const char *path, struct config **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s; check the path given to -c", path,
                 strerror(errno));
        return -1;
    }
    int rc = load(path, f, NULL, out, err, errlen);
    fclose(f);
    return rc;
}

int
config_load_string(const char *name, const char *yaml, struct config **out, char *err,
                   size_t errlen)
{
    return load(name, NULL, yaml, out, err, errlen);
}

int
config_from_origin(const char *origin_url, const char *listen, struct config **out, char *err,
                   size_t errlen)
{
    struct config *cfg = config_new_defaults();
    struct config_zone *z;
    const char *problem;
    if (listen != NULL && config_addr_parse(listen, CONFIG_DEFAULT_PORT, &cfg->listens[0]) < 0) {
        snprintf(err, errlen, "--listen '%s' is not %s", listen, EXPECT_ADDRESS);
        goto fail;
    }
    cfg->zones = xcalloc(1, sizeof(*cfg->zones));
    cfg->nzones = 1;
    z = &cfg->zones[0];
    zone_defaults(z);
    z->name = xstrdup("default");
    z->hosts = xcalloc(1, sizeof(*z->hosts));
    z->hosts[z->nhosts++] = xstrdup("*");
    host_add(cfg, z->hosts[0], z);
    z->origins = xcalloc(1, sizeof(*z->origins));
    if ((problem = origin_parse_url(origin_url, &z->origins[0])) != NULL) {
        snprintf(err, errlen, "--origin '%s': %s", origin_url, problem);
        goto fail;
    }
    z->norigins = 1;
    if (z->origins[0].literal)
        origin_resolve(&z->origins[0]);
    if (addr_equal(&cfg->listens[0], &cfg->admin_listen))
        cfg->admin_enabled = false;
    *out = cfg;
    return 0;
fail:
    config_free(cfg);
    return -1;
}
