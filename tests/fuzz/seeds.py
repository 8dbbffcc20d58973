#!/usr/bin/python3
"""Write the seed corpus of every fuzz target into tests/fuzz/corpus/<target>/.

Seeds are small valid and tricky inputs in each target's input format (see the comment at
the top of each fuzz_*.c). The files are committed; run this again after changing a
format or adding seeds (`/usr/bin/python3 tests/fuzz/seeds.py`). It writes only the files
it names: reproducers saved as regress-* next to them stay.
"""

import struct
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


# --------------------------------------------------------------------------- HTTP

def http_seed(split, byte, text):
    """2 bytes split point, 1 byte (request: head limit units; response: flags), input."""
    return struct.pack(">HB", split, byte) + text


REQUESTS = {
    "get": b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n",
    "get-http10": b"GET /x HTTP/1.0\r\n\r\n",
    "get-query-fields": b"GET /p?q=1&r=%20 HTTP/1.1\r\nHost: A.Test:8080\r\nUser-Agent: t\r\n"
                        b"Accept: */*\r\nX-Request-Id: abc-123\r\nCache-Control: no-cache\r\n\r\n",
    "pipelined": b"GET /1 HTTP/1.1\r\nHost: a.test\r\n\r\nGET /2 HTTP/1.1\r\nHost: a.test\r\n\r\n"
                 b"HEAD /3 HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
    "post-content-length": b"POST /f HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello",
    "post-chunked": b"POST /u HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5\r\nhello\r\na;ext=1\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n",
    "expect-continue": b"PUT /e HTTP/1.1\r\nHost: a.test\r\nExpect: 100-continue\r\n"
                       b"Content-Length: 2\r\n\r\nok",
    "expect-other": b"PUT /e HTTP/1.1\r\nHost: a.test\r\nExpect: 200-ok\r\nContent-Length: 0\r\n\r\n",
    "absolute-form": b"GET http://x.b.test:8080/path?q HTTP/1.1\r\nHost: a.test\r\n\r\n",
    "absolute-form-no-path": b"GET http://a.test HTTP/1.1\r\nHost: a.test\r\n\r\n",
    "connect": b"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n",
    "options-star": b"OPTIONS * HTTP/1.1\r\nHost: a.test\r\n\r\n",
    "two-hosts": b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: evil.test\r\n\r\n",
    "no-host": b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",
    "host-ipv6": b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
    "host-trailing-dot": b"GET / HTTP/1.1\r\nHost: A.TEST.\r\n\r\n",
    "host-bad": b"GET / HTTP/1.1\r\nHost: a b/c\r\n\r\n",
    "te-http10": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "cl-and-te": b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two-content-lengths": b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n"
                           b"Content-Length: 4\r\n\r\nabcd",
    "te-not-chunked-last": b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: a.test\r\nX-A: one\r\n two\r\n\r\n",
    "bare-lf": b"GET / HTTP/1.1\nHost: a.test\n\n",
    "bare-cr": b"GET / HTTP/1.1\rHost: a.test\r\n\r\n",
    "nul-in-value": b"GET / HTTP/1.1\r\nHost: a.test\r\nX-A: a\x00b\r\n\r\n",
    "space-before-colon": b"GET / HTTP/1.1\r\nHost : a.test\r\n\r\n",
    "chunk-size-sign": b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"-1\r\nx\r\n0\r\n\r\n",
    "chunk-size-overflow": b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"ffffffffffffffffff\r\nx\r\n0\r\n\r\n",
    "empty-lines-first": b"\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a.test\r\n\r\n",
    "connection-named-fields": b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: keep-alive, X-Hop\r\n"
                               b"X-Hop: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nUpgrade: h2c\r\n\r\n",
    "unkeyed-fields": b"GET / HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-Host: evil\r\n"
                      b"X-Original-URL: /admin\r\nX-HTTP-Method-Override: DELETE\r\n\r\n",
    "http09": b"GET /\r\n\r\n",
    "http2-preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
}


def request_seeds():
    for name, text in REQUESTS.items():
        write("fuzz_request", name, http_seed(len(text) // 2, 0, text))
    big = b"GET / HTTP/1.1\r\nHost: a.test\r\nX-Pad: " + b"p" * 200 + b"\r\n\r\n"
    write("fuzz_request", "head-over-small-limit", http_seed(10, 2, big))  # limit 128 bytes
    write("fuzz_request", "head-at-limit", http_seed(100, 4, big[:256]))


RESPONSES = {
    "ok-content-length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nCache-Control: max-age=60\r\n\r\nhello",
    "ok-chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nETag: \"v1\"\r\n\r\n"
                  b"5\r\nhello\r\n0\r\n\r\n",
    "close-delimited": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
    "http10": b"HTTP/1.0 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
              b"Last-Modified: Sat, 01 Jan 1994 00:00:00 GMT\r\n\r\nbody",
    "no-reason": b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
    "no-content": b"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\nabc",
    "not-modified": b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nCache-Control: max-age=10\r\n\r\n",
    "continue-then-ok": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "switching-protocols": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
    "interim-storm": b"HTTP/1.1 100 Continue\r\n\r\n" * 20 + b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "keepalive-two": b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nAHTTP/1.1 404 Not Found\r\n"
                     b"Content-Length: 1\r\n\r\nB",
    "bytes-after-response": b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nAjunk after it",
    "cl-and-te": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two-content-lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "bad-status": b"HTTP/1.1 2000 OK\r\n\r\n",
    "bad-version": b"HTTP/9.9 200 OK\r\n\r\n",
    "obs-fold": b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n",
    "set-cookie": b"HTTP/1.1 200 OK\r\nSet-Cookie: a=b\r\nCache-Control: public, max-age=60\r\n"
                  b"Content-Length: 0\r\n\r\n",
    "vary-star": b"HTTP/1.1 200 OK\r\nVary: *\r\nCache-Control: max-age=60\r\nContent-Length: 0\r\n\r\n",
    "private-no-store": b"HTTP/1.1 200 OK\r\nCache-Control: private, no-store\r\nContent-Length: 0\r\n\r\n",
    "stale-directives": b"HTTP/1.1 200 OK\r\nCache-Control: max-age=1, stale-if-error=60, "
                        b"stale-while-revalidate=30\r\nAge: 5\r\nContent-Length: 0\r\n\r\n",
    "expires": b"HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
               b"Expires: Sunday, 06-Nov-94 08:59:37 GMT\r\nContent-Length: 0\r\n\r\n",
    "s-maxage-must-revalidate": b"HTTP/1.1 200 OK\r\nCache-Control: s-maxage=30, must-revalidate\r\n"
                                b"Content-Length: 0\r\n\r\n",
    "chunked-trailers": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n"
                        b"1;a=b\r\nx\r\n0\r\nX-T: 1\r\n\r\n",
    "server-error": b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 4\r\n\r\nbusy",
    "hop-fields": b"HTTP/1.1 200 OK\r\nConnection: X-Hop, keep-alive\r\nX-Hop: 1\r\nKeep-Alive: t=5\r\n"
                  b"Proxy-Authenticate: x\r\nContent-Length: 0\r\n\r\n",
}


def response_seeds():
    for name, text in RESPONSES.items():
        write("fuzz_response", name, http_seed(len(text) // 3, 0, text))
    write("fuzz_response", "head-request", http_seed(20, 1, RESPONSES["ok-content-length"]))
    write("fuzz_response", "authorized-request", http_seed(20, 2, RESPONSES["set-cookie"]))
    write("fuzz_response", "small-head-limit", http_seed(5, 1 << 2, RESPONSES["hop-fields"] * 3))


# --------------------------------------------------------------------------- config

CONFIGS = {
    "minimal.yaml": """zones:
  - name: www
    hosts: [ www.example.com ]
    origins: [ "http://127.0.0.1:8000" ]
""",
    "full.yaml": """listen: [ "127.0.0.1:8080", "[::1]:8080" ]
workers: 2
edge_name: edge-fra1
shutdown_timeout: 5s
logs: { access: stdout, access_format: json, error: stderr, level: debug }
admin: { listen: "127.0.0.1:8081" }
client: { header_timeout: 10s, keepalive_timeout: 75s, send_timeout: 1m, body_timeout: 60s,
          max_header_size: 32KiB }
upstream: { keepalive_timeout: 60s, max_idle: 64, max_header_size: 64KiB }
resolver: { servers: [ "127.0.0.1:5353", "[::1]" ], min_ttl: 5s, max_ttl: 1h,
            serve_stale: 1h, timeout: 250ms, attempts: 2 }
cache: { memory: 256MiB, max_object: 64MiB, heuristic_cap: 1d }
zones:
  - name: www
    hosts: [ www.example.com, example.com, "*.static.example.com" ]
    origins:
      - url: http://10.0.0.5:8000
      - { url: "http://origin.internal:8080", backup: true }
    origin_host: visitor
    timeouts: { connect: 2s, send: 30s, header: 15s, idle: 60s }
    max_request_body: 0
    retries: 1
    health: { failures: 3, hold: 10s, count_5xx: true,
              active: { path: /healthz, interval: 5s, timeout: 2s, fall: 3, rise: 2 } }
    cache: yes
    stale_if_error: 1m
    stale_while_revalidate: 30s
    hit_for_miss: 2m
    pass_headers: [ X-Forwarded-Host ]
    allow_private: false
    expose_details: off
    forwarded: { via: true, x_forwarded_for: false, x_forwarded_proto: on }
  - name: rest
    hosts: [ "*" ]
    origins: [ "http://[::1]:9000/" ]
    origin_host: fixed.example.com
""",
    "zero-admin.yaml": "admin: off\nworkers: auto\nzones: [ { name: a, origins: [ \"http://127.0.0.1\" ] } ]\n",
    "bad-duration.yaml": "client: { header_timeout: 5x }\nzones: [ { name: a, origins: [ \"http://1.2.3.4\" ] } ]\n",
    "bad-size.yaml": "cache: { memory: 12QiB }\nzones: [ { name: a, origins: [ \"http://1.2.3.4\" ] } ]\n",
    "unknown-key.yaml": "zones: [ { name: a, origins: [ \"http://1.2.3.4\" ], weight: 3 } ]\n",
    "duplicate-key.yaml": "workers: 1\nworkers: 2\nzones: [ { name: a, origins: [ \"http://1.2.3.4\" ] } ]\n",
    "duplicate-host.yaml": "zones:\n  - { name: a, hosts: [ x.test ], origins: [ \"http://1.2.3.4\" ] }\n"
                           "  - { name: b, hosts: [ X.TEST ], origins: [ \"http://1.2.3.4\" ] }\n",
    "https-origin.yaml": "zones: [ { name: a, origins: [ \"https://1.2.3.4\" ] } ]\n",
    "no-zones.yaml": "listen: 8080\n",
    "empty.yaml": "",
    "bad-yaml.yaml": "zones: [ { name: a, origins: [ \"http://1.2.3.4\" ] }\n  bad: : :\n",
    "anchors.yaml": "o: &o [ \"http://1.2.3.4\" ]\nzones:\n  - { name: a, origins: *o }\n  - { name: b, origins: *o }\n",
    "error-pages-missing.yaml": "zones: [ { name: a, origins: [ \"http://1.2.3.4\" ],"
                                " error_pages: { 502: nope.html, 5xx: none.html } } ]\n",
    "listen-twice.yaml": "listen: [ \":8080\", \"0.0.0.0:8080\" ]\nzones: [ { name: a, origins: [ \"http://1.2.3.4\" ] } ]\n",
    "admin-same-as-listen.yaml": "listen: 127.0.0.1:9000\nadmin: { listen: 127.0.0.1:9000 }\n"
                                 "zones: [ { name: a, origins: [ \"http://1.2.3.4\" ] } ]\n",
    "ttl-order.yaml": "resolver: { min_ttl: 2h, max_ttl: 1h }\nzones: [ { name: a, origins: [ \"http://1.2.3.4\" ] } ]\n",
    "types.yaml": "workers: [ 1 ]\nzones: { name: a }\n",
    "admin-token.yaml": "admin: { listen: 127.0.0.1:9001, token_file: token }\n"
                        "zones: [ { name: a, origins: [ \"http://1.2.3.4\" ] } ]\n",
    "admin-short-token.yaml": "admin: { token_file: short-token }\n"
                              "zones: [ { name: a, origins: [ \"http://1.2.3.4\" ] } ]\n",
    "admin-missing-token.yaml": "admin: { token_file: /nonexistent/token }\n"
                                "zones: [ { name: a, origins: [ \"http://1.2.3.4\" ] } ]\n",
    # after the NUL: the contents of page.html
    "error-page.yaml": "zones: [ { name: a, origins: [ \"http://1.2.3.4\" ], error_pages: { 502: page.html,"
                       " 5xx: page.html } } ]\n\0<html><h1>{{status}} {{reason}}</h1>{{what}} {{advice}} "
                       "{{cause}} {{hint}} {{check}} {{request_id}} {{edge}} {{time}} {{host}} "
                       "{{retry_after}}</html>\n",
    "error-page-unknown-placeholder.yaml": "zones: [ { name: a, origins: [ \"http://1.2.3.4\" ],"
                                           " error_pages: { 503: page.html } } ]\n\0<p>{{bogus}} {{status</p>",
    "error-page-bad-status.yaml": "zones: [ { name: a, origins: [ \"http://1.2.3.4\" ],"
                                  " error_pages: { 302: page.html, 4xx: page.html } } ]\n\0<p>x</p>",
}


def config_seeds():
    for name, text in CONFIGS.items():
        write("fuzz_config", name, text.encode())
    for value in ["250ms", "1d", "64KiB", "1GiB", "[::1]:8080", ":8080", "18446744073709551615"]:
        write("fuzz_config", "value-" + value.replace("/", "_").replace(":", "_"), value.encode())


# --------------------------------------------------------------------------- Cache-Control

CACHE_CONTROL = {
    "max-age": (0, 0, ["max-age=60"]),
    "s-maxage-public": (0, 0, ["public, s-maxage=600, max-age=60"]),
    "quoted": (0, 0, ["max-age=\"30\", private=\"Set-Cookie\", no-cache=\"a, b\""]),
    "two-fields": (0, 0, ["no-cache", "max-age=5", "must-revalidate"]),
    "big-delta": (0, 0, ["max-age=99999999999999999999, stale-if-error=4294967296"]),
    "no-store-request": (0, 0, [">Cache-Control: no-store", "max-age=60"]),
    "authorization": (0, 0, [">Authorization: Basic eA==", "max-age=60"]),
    "authorization-public": (0, 0, [">Authorization: Basic eA==", "public, max-age=60"]),
    "set-cookie": (0, 0, ["Set-Cookie: a=b", "max-age=60"]),
    "vary-star": (0, 0, ["Vary: accept, *", "max-age=60"]),
    "expires-imf": (0, 0, ["Date: Sun, 06 Nov 1994 08:49:37 GMT",
                           "Expires: Sun, 06 Nov 1994 09:49:37 GMT"]),
    "expires-rfc850": (0, 0, ["Date: Sunday, 06-Nov-94 08:49:37 GMT",
                              "Expires: Sunday, 06-Nov-94 08:59:37 GMT"]),
    "expires-asctime": (0, 0, ["Date: Sun Nov  6 08:49:37 1994", "Expires: Sun Nov  6 08:50:37 1994"]),
    "expires-invalid": (0, 0, ["Date: Sun, 06 Nov 1994 08:49:37 GMT", "Expires: 0"]),
    "heuristic": (0, 0x40, ["Date: Sun, 06 Nov 1994 08:49:37 GMT",
                            "Last-Modified: Sat, 06 Nov 1993 08:49:37 GMT"]),
    "heuristic-404": (11, 0x40, ["Date: Sun, 06 Nov 1994 08:49:37 GMT",
                                 "Last-Modified: Sat, 06 Nov 1993 08:49:37 GMT"]),
    "age": (0, 0x3f, ["Age: 100", "Date: Tue, 14 Nov 2023 22:13:20 GMT", "max-age=60"]),
    "age-huge": (0, 0, ["Age: 18446744073709551615", "max-age=60"]),
    "date-leap-second": (0, 0, ["Date: Sat, 31 Dec 2016 23:59:60 GMT"]),
    "date-far": (0, 0, ["Date: Fri, 31 Dec 9999 23:59:59 GMT", "Expires: Thu, 01 Jan 1970 00:00:00 GMT"]),
    "status-206": (3, 0, ["max-age=60"]),
    "status-302-no-freshness": (6, 0, ["ETag: \"x\""]),
    "head-request": (0, 0x80, ["max-age=60", "Last-Modified: Sat, 06 Nov 1993 08:49:37 GMT"]),
    "stale-windows": (0, 0, ["max-age=1, stale-while-revalidate=30, stale-if-error=60"]),
    "max-stale-any": (0, 0, [">Cache-Control: max-stale, min-fresh=10, only-if-cached", "max-age=1"]),
    "commas-spaces": (0, 0, [" ,, max-age = 5 ,\tno-cache,,"]),
}


def cache_control_seeds():
    for name, (status, flags, lines) in CACHE_CONTROL.items():
        write("fuzz_cache_control", name, bytes([status, flags]) + "\n".join(lines).encode())


# --------------------------------------------------------------------------- DNS

T_A, T_AAAA, T_CNAME, T_SOA = 1, 28, 5, 6
NOERROR, SERVFAIL, NXDOMAIN, REFUSED = 0, 2, 3, 5


def qname(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def rr(name, rtype, ttl, rdata):
    return name + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata


def message(qtype, rcode=NOERROR, answers=(), authority=(), name="origin.test", qd=1):
    head = struct.pack(">HHHHHH", 0x1234, 0x8180 | rcode, qd, len(answers), len(authority), 0)
    question = qname(name) + struct.pack(">HH", qtype, 1) if qd else b""
    return head + question + b"".join(answers) + b"".join(authority)


PTR = b"\xc0\x0c"  # a compression pointer to the question's name


def soa(minimum, ttl=300):
    rdata = qname("ns.test") + qname("admin.test") + struct.pack(">IIIII", 1, 2, 3, 4, minimum)
    return rr(qname("test"), T_SOA, ttl, rdata)


def a(ip, ttl=60, name=PTR):
    return rr(name, T_A, ttl, bytes(int(x) for x in ip.split(".")))


def aaaa(last, ttl=60):
    return rr(PTR, T_AAAA, ttl, b"\x20\x01\x0d\xb8" + b"\x00" * 11 + bytes([last]))


def dns_seed(a_msg, aaaa_msg, flags=0):
    return bytes([flags]) + struct.pack(">H", len(a_msg)) + a_msg + aaaa_msg


def dns_seeds():
    nodata6 = message(T_AAAA, authority=[soa(30)])
    seeds = {
        "a-two-addresses": dns_seed(message(T_A, answers=[a("192.0.2.1", 300), a("192.0.2.2", 60)]),
                                    nodata6),
        "a-and-aaaa": dns_seed(message(T_A, answers=[a("192.0.2.1")]),
                               message(T_AAAA, answers=[aaaa(1, 20), aaaa(2, 40)])),
        "cname-chain": dns_seed(message(T_A, answers=[
            rr(PTR, T_CNAME, 30, qname("real.test")), a("192.0.2.9", 10, qname("real.test"))]),
            nodata6),
        "nxdomain-soa": dns_seed(message(T_A, NXDOMAIN, authority=[soa(45)]),
                                 message(T_AAAA, NXDOMAIN, authority=[soa(45)])),
        "nodata-soa": dns_seed(message(T_A, authority=[soa(600, 120)]), nodata6),
        "servfail": dns_seed(message(T_A, SERVFAIL), message(T_AAAA, SERVFAIL)),
        "refused": dns_seed(message(T_A, REFUSED), message(T_AAAA, REFUSED)),
        "timeout-then-aaaa": dns_seed(message(T_A), message(T_AAAA, answers=[aaaa(3)]), flags=1),
        "connection-refused": dns_seed(b"", b"", flags=2 | 8),
        "many-addresses": dns_seed(message(T_A, answers=[a(f"198.51.100.{i}", i) for i in range(1, 21)]),
                                   nodata6),
        "ttl-zero-and-huge": dns_seed(message(T_A, answers=[a("192.0.2.1", 0), a("192.0.2.2", 0xffffffff)]),
                                      message(T_AAAA, answers=[aaaa(1, 0x80000000)])),
        "truncated-answer": dns_seed(message(T_A, answers=[a("192.0.2.1")])[:-3], nodata6),
        "pointer-loop": dns_seed(message(T_A, NXDOMAIN, authority=[rr(b"\xc0\x30", T_SOA, 5, b"\xc0\x30" * 12)]),
                                 nodata6),
        "soa-short-rdata": dns_seed(message(T_A, NXDOMAIN, authority=[rr(qname("t"), T_SOA, 5, b"\x00" * 8)]),
                                    nodata6),
        "no-question": dns_seed(message(T_A, answers=[a("192.0.2.1", 5, qname("origin.test"))], qd=0),
                                nodata6),
        "wrong-type-in-answer": dns_seed(message(T_A, answers=[aaaa(1)]),
                                         message(T_AAAA, answers=[a("192.0.2.1")])),
    }
    for name, data in seeds.items():
        write("fuzz_dns", name, data)


if __name__ == "__main__":
    request_seeds()
    response_seeds()
    config_seeds()
    cache_control_seeds()
    dns_seeds()
    for d in sorted(CORPUS.iterdir()):
        print(f"{d.relative_to(CORPUS.parent.parent.parent)}: {len(list(d.iterdir()))} seeds")
