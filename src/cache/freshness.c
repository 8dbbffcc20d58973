/* freshness.c - RFC 9111 cacheability, freshness and age; RFC 5861 stale-if-error. */
#include "cache/freshness.h"

#include <llhttp.h>
#include <strings.h>

/* ---------------------------------------------------------------- Cache-Control */

static int64_t
delta_seconds(const char *v, size_t len)
{
    uint64_t n;
    if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
        v++;
        len -= 2;
    }
    if (str_to_u64(v, len, &n) < 0)
        return CC_UNSET; /* invalid: treated as absent (RFC 9111 4.2.1 says as stale for
                          * max-age; callers see no lifetime, which is the same) */
    return n > INT32_MAX ? INT32_MAX : (int64_t)n;
}

static void
directive(struct cache_control *cc, const char *name, size_t nlen, const char *v, size_t vlen)
{
    /* the length first, then the name: no directive is compared with more than a few */
#define CC_NAME(s) s, sizeof(s) - 1
    static const struct {
        const char *name;
        size_t len;
        size_t flag_off;  /* bool member, or 0 */
        size_t delta_off; /* int64_t member, or 0 */
    } table[] = {
        {CC_NAME("no-store"), offsetof(struct cache_control, no_store), 0},
        {CC_NAME("no-cache"), offsetof(struct cache_control, no_cache), 0},
        {CC_NAME("private"), offsetof(struct cache_control, private_), 0},
        {CC_NAME("public"), offsetof(struct cache_control, public_), 0},
        {CC_NAME("must-revalidate"), offsetof(struct cache_control, must_revalidate), 0},
        {CC_NAME("proxy-revalidate"), offsetof(struct cache_control, proxy_revalidate), 0},
        {CC_NAME("only-if-cached"), offsetof(struct cache_control, only_if_cached), 0},
        {CC_NAME("max-age"), 0, offsetof(struct cache_control, max_age)},
        {CC_NAME("s-maxage"), 0, offsetof(struct cache_control, s_maxage)},
        {CC_NAME("min-fresh"), 0, offsetof(struct cache_control, min_fresh)},
        {CC_NAME("max-stale"), 0, offsetof(struct cache_control, max_stale)},
        {CC_NAME("stale-if-error"), 0, offsetof(struct cache_control, stale_if_error)},
        {CC_NAME("stale-while-revalidate"), 0,
         offsetof(struct cache_control, stale_while_revalidate)},
    };
#undef CC_NAME
    for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
        if (table[i].len != nlen || !mem_ieq(table[i].name, name, nlen))
            continue;
        if (table[i].flag_off != 0 || table[i].delta_off == 0)
            *(bool *)((char *)cc + table[i].flag_off) = true;
        else if (vlen == 0 && table[i].delta_off == offsetof(struct cache_control, max_stale))
            cc->max_stale_any = true;
        else
            *(int64_t *)((char *)cc + table[i].delta_off) = delta_seconds(v, vlen);
        return;
    }
}

static void
parse_list(struct cache_control *cc, const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
            i++;
        size_t name = i;
        while (i < len && s[i] != '=' && s[i] != ',' && s[i] != ' ' && s[i] != '\t')
            i++;
        size_t nlen = i - name, val = i, vlen = 0;
        if (i < len && s[i] == '=') {
            val = ++i;
            bool quoted = i < len && s[i] == '"';
            i += quoted;
            while (i < len && (quoted ? s[i] != '"' : (s[i] != ',' && s[i] != ' ')))
                i++;
            i += quoted && i < len;
            vlen = i - val;
        }
        while (i < len && s[i] != ',')
            i++;
        if (nlen > 0)
            directive(cc, s + name, nlen, s + val, vlen);
    }
}

void
cache_control_parse(const struct http_msg *m, struct cache_control *cc)
{
    *cc = (struct cache_control){.max_age = CC_UNSET, .s_maxage = CC_UNSET,
                                 .min_fresh = CC_UNSET, .max_stale = CC_UNSET,
                                 .stale_if_error = CC_UNSET,
                                 .stale_while_revalidate = CC_UNSET};
    for (const struct http_header *h = http_msg_field(m, HTTP_FIELD_CACHE_CONTROL); h != NULL;
         h = http_msg_field_next(m, HTTP_FIELD_CACHE_CONTROL, h))
        parse_list(cc, http_str_ptr(m, h->value), h->value.len);
}

/* ---------------------------------------------------------------- dates */

/* n decimal digits at s, or -1 if one is not a digit. */
static int
digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's
 * days_from_civil); a day past the month's end counts on into the next, as timegm does. */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* IMF-fixdate exactly as RFC 9110 5.6.7 says to send it ("Sun, 06 Nov 1994 08:49:37
 * GMT"), read by hand: strptime tries every day and month name case-insensitively for each
 * field, a quarter of a miss's instructions. The fields' ranges are strptime's, so what
 * this accepts, strptime reads the same; anything else is left to it (false). */
static bool
fixdate(const char *s, size_t len, time_t *t)
{
    static const char days[] = "SunMonTueWedThuFriSat";
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    if (len != 29 || memcmp(s + 3, ", ", 2) != 0 || s[7] != ' ' || s[11] != ' ' ||
        s[16] != ' ' || s[19] != ':' || s[22] != ':' || memcmp(s + 25, " GMT", 4) != 0)
        return false;
    int wday = 0, mon = 0;
    while (wday < 7 && memcmp(s, days + 3 * wday, 3) != 0)
        wday++;
    while (mon < 12 && memcmp(s + 8, months + 3 * mon, 3) != 0)
        mon++;
    int d = digits(s + 5, 2), y = digits(s + 12, 4), hh = digits(s + 17, 2),
        mm = digits(s + 20, 2), ss = digits(s + 23, 2);
    if (wday == 7 || mon == 12 || d < 1 || d > 31 || y < 0 || hh < 0 || hh > 23 || mm < 0 ||
        mm > 59 || ss < 0 || ss > 61)
        return false;
    *t = (time_t)(days_from_civil(y, mon + 1, d) * 86400 + hh * 3600 + mm * 60 + ss);
    return true;
}

time_t
http_date_parse(const char *s, size_t len)
{
    time_t t;
    if (fixdate(s, len, &t))
        return t > HTTP_DATE_MAX ? HTTP_DATE_MAX : t; /* as below */
    static const char *const formats[] = {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
                                          "%a %b %e %H:%M:%S %Y"};
    char text[64];
    if (len == 0 || len >= sizeof(text))
        return -1;
    memcpy(text, s, len);
    text[len] = '\0';
    for (size_t i = 0; i < ARRAY_SIZE(formats); i++) {
        struct tm tm = {0};
        const char *end = strptime(text, formats[i], &tm);
        if (end != NULL && *end == '\0') {
            /* A leap second on the last day of year 9999 rolls into year 10000, which
             * IMF-fixdate cannot write: clamp so every date read can be written back. */
            t = timegm(&tm);
            return t > HTTP_DATE_MAX ? HTTP_DATE_MAX : t;
        }
    }
    return -1;
}

void
http_date_format(time_t t, char out[30])
{
    struct tm tm;
    if (t < 0)
        t = 0;
    if (t > HTTP_DATE_MAX)
        t = HTTP_DATE_MAX;
    gmtime_r(&t, &tm);
    strftime(out, 30, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static time_t
header_date(const struct http_msg *m, enum http_field f)
{
    const struct http_header *h = http_msg_field(m, f);
    return h ? http_date_parse(http_str_ptr(m, h->value), h->value.len) : -1;
}

/* ---------------------------------------------------------------- storing */

/* RFC 9110 15.1: statuses heuristically cacheable. */
static bool
heuristically_cacheable(int status)
{
    static const int statuses[] = {200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501};
    for (size_t i = 0; i < ARRAY_SIZE(statuses); i++)
        if (statuses[i] == status)
            return true;
    return false;
}

/* max-age, s-maxage or Expires: a lifetime the origin gave. */
static bool
has_explicit_lifetime(const struct http_msg *resp, const struct cache_control *cc)
{
    return cc->max_age != CC_UNSET || cc->s_maxage != CC_UNSET ||
           http_msg_field(resp, HTTP_FIELD_EXPIRES) != NULL;
}

/* An explicit lifetime, or public (which allows heuristic freshness for any status). */
static bool
has_explicit_freshness(const struct http_msg *resp, const struct cache_control *cc)
{
    return has_explicit_lifetime(resp, cc) || cc->public_;
}

/* The refusals that come from the request (cache_refusal_by_request): distinct objects. */
static const char refused_method[] = "method", refused_authorization[] = "authorization",
                  refused_request_no_store[] = "no-store";

const char *
cache_refusal(const struct http_msg *req, const struct http_msg *resp)
{
    struct cache_control rq, rs;
    cache_control_parse(req, &rq);
    cache_control_parse(resp, &rs);
    if (req->method != HTTP_GET)
        return refused_method;
    if (rq.no_store)
        return refused_request_no_store;
    if (rs.no_store)
        return "no-store";
    if (rs.private_)
        return "private";
    if (http_msg_field(req, HTTP_FIELD_AUTHORIZATION) && !rs.public_ && rs.s_maxage == CC_UNSET &&
        !rs.must_revalidate)
        return refused_authorization;
    if (http_msg_field(resp, HTTP_FIELD_SET_COOKIE))
        return "set-cookie";
    const struct http_header *vary = http_msg_field(resp, HTTP_FIELD_VARY);
    if (vary && http_list_has_token(http_str_ptr(resp, vary->value), vary->value.len, "*"))
        return "vary-star";
    /* A 304 answers one visitor's conditional request: stored, it would be every
     * unconditional visitor's answer (it only refreshes a stored response, 4.3.4). */
    if (resp->status == 206 || resp->status == 304 || resp->status < 200)
        return "status";
    if (!heuristically_cacheable(resp->status) && !has_explicit_freshness(resp, &rs))
        return "status";
    if (resp->status >= 500 && !has_explicit_lifetime(resp, &rs))
        return "5xx without explicit freshness"; /* not even public */
    if (!has_explicit_freshness(resp, &rs) && !rs.no_cache &&
        http_msg_field(resp, HTTP_FIELD_LAST_MODIFIED) == NULL &&
        http_msg_field(resp, HTTP_FIELD_ETAG) == NULL)
        return "no-freshness";
    return NULL;
}

bool
cache_refusal_by_request(const char *why)
{
    return why == refused_method || why == refused_authorization ||
           why == refused_request_no_store;
}

bool
cache_storable(const struct http_msg *req, const struct http_msg *resp, char *why,
               size_t whylen)
{
    const char *reason = cache_refusal(req, resp);
    if (reason != NULL)
        str_copy(why, whylen, reason);
    return reason == NULL;
}

/* ---------------------------------------------------------------- freshness and age */

int64_t
cache_freshness_lifetime(const struct http_msg *resp, int64_t heuristic_cap)
{
    struct cache_control cc;
    cache_control_parse(resp, &cc);
    return cache_lifetime_by(resp, &cc, heuristic_cap);
}

int64_t
cache_lifetime_by(const struct http_msg *resp, const struct cache_control *cc,
                  int64_t heuristic_cap)
{
    if (cc->s_maxage != CC_UNSET)
        return cc->s_maxage;
    if (cc->max_age != CC_UNSET)
        return cc->max_age;
    time_t date = header_date(resp, HTTP_FIELD_DATE);
    const struct http_header *exp = http_msg_field(resp, HTTP_FIELD_EXPIRES);
    if (exp != NULL) {
        time_t expires = http_date_parse(http_str_ptr(resp, exp->value), exp->value.len);
        if (expires < 0 || date < 0)
            return 0; /* an invalid Expires means already expired */
        return expires > date ? expires - date : 0;
    }
    time_t modified = header_date(resp, HTTP_FIELD_LAST_MODIFIED);
    if (heuristic_cap > 0 && heuristically_cacheable(resp->status) && modified >= 0 &&
        date >= modified)
        return MIN((int64_t)(date - modified) / 10, heuristic_cap);
    return 0;
}

int64_t
cache_current_age(const struct http_msg *resp, time_t request_time, time_t response_time,
                  time_t now)
{
    const struct http_header *h = http_msg_field(resp, HTTP_FIELD_AGE);
    uint64_t age_value = 0;
    if (h != NULL && str_to_u64(http_str_ptr(resp, h->value), h->value.len, &age_value) < 0)
        age_value = 0;
    time_t date = header_date(resp, HTTP_FIELD_DATE);
    int64_t apparent_age = date >= 0 ? MAX((int64_t)0, (int64_t)(response_time - date)) : 0;
    int64_t response_delay = (int64_t)(response_time - request_time);
    int64_t corrected_age_value = (int64_t)MIN(age_value, (uint64_t)INT32_MAX) + response_delay;
    int64_t corrected_initial_age = MAX(apparent_age, corrected_age_value);
    int64_t resident_time = (int64_t)(now - response_time);
    return corrected_initial_age + resident_time;
}

/* A stale window (seconds) from a response directive, else the zone's default; 0 when
 * RFC 9111 4.2.4 forbids serving the response stale at all. */
int64_t
cache_stale_window_by(const struct cache_control *cc, bool if_error, int64_t zone_default)
{
    if (cc->must_revalidate || cc->proxy_revalidate || cc->s_maxage != CC_UNSET || cc->no_cache)
        return 0;
    int64_t directive = if_error ? cc->stale_if_error : cc->stale_while_revalidate;
    return directive != CC_UNSET ? directive : zone_default;
}

static int64_t
stale_window(const struct http_msg *resp, bool if_error, int64_t zone_default)
{
    struct cache_control cc;
    cache_control_parse(resp, &cc);
    return cache_stale_window_by(&cc, if_error, zone_default);
}

int64_t
cache_stale_if_error(const struct http_msg *resp, int64_t zone_default)
{
    return stale_window(resp, true, zone_default);
}

int64_t
cache_stale_while_revalidate(const struct http_msg *resp, int64_t zone_default)
{
    return stale_window(resp, false, zone_default);
}
