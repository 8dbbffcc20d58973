/* wire.c - DNS message walking with c-ares' name expansion (compression pointers). */
#include "dns/wire.h"

#include <ares.h>
#include <arpa/nameser.h>

static unsigned
get16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static uint32_t
get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int
dns_wire_rcode(const unsigned char *msg, int len)
{
    return msg == NULL || len < HFIXEDSZ ? -1 : msg[3] & 0x0f;
}

const char *
dns_wire_rcode_name(int rcode, char out[16])
{
    static const char *const names[] = {"NOERROR",  "FORMERR", "SERVFAIL",
                                        "NXDOMAIN", "NOTIMP",  "REFUSED"};
    if (rcode >= 0 && (size_t)rcode < ARRAY_SIZE(names))
        return names[rcode];
    snprintf(out, 16, "RCODE%d", rcode);
    return out;
}

int
dns_wire_name(const unsigned char *msg, int len, const unsigned char *at, char *out, size_t outlen)
{
    char *name;
    long used;
    if (ares_expand_name(at, msg, len, &name, &used) != ARES_SUCCESS)
        return -1;
    snprintf(out, outlen, "%s", name);
    ares_free_string(name);
    return 0;
}

int
dns_wire_walk(const unsigned char *msg, int len, dns_rr_cb cb, void *arg)
{
    if (msg == NULL || len < HFIXEDSZ)
        return -1;
    int counts[4] = {(int)get16(msg + 4), (int)get16(msg + 6), (int)get16(msg + 8),
                     (int)get16(msg + 10)};
    const unsigned char *p = msg + HFIXEDSZ, *end = msg + len;
    for (int section = 0; section < 4; section++) {
        for (int i = 0; i < counts[section]; i++) {
            char *name;
            long used;
            if (ares_expand_name(p, msg, len, &name, &used) != ARES_SUCCESS)
                return -1;
            p += used;
            if (section == 0) { /* the question: name, type, class */
                ares_free_string(name);
                p += QFIXEDSZ;
                continue;
            }
            if (p + RRFIXEDSZ > end || p + RRFIXEDSZ + get16(p + 8) > end) {
                ares_free_string(name);
                return -1;
            }
            struct dns_rr rr = {
                (enum dns_section)section, name, (int)get16(p), get32(p + 4), p + RRFIXEDSZ,
                (int)get16(p + 8)};
            int stop = cb(arg, &rr, msg, len);
            ares_free_string(name);
            if (stop)
                return 0;
            p += RRFIXEDSZ + rr.rdlen;
        }
    }
    return 0;
}
