"""Basic proxying: methods, request and response bodies, framing, forwarding headers,
hop-by-hop stripping and the Host header sent to the origin."""

import re

import pytest

from harness import Client, chunked, zone

RID = re.compile(r"^[0-9a-f]{32}$")
HOP_BY_HOP_REQUEST = [
    ("Connection", "keep-alive, X-Secret"),
    ("X-Secret", "must-not-pass"),
    ("Keep-Alive", "timeout=300"),
    ("TE", "trailers"),
    ("Trailer", "X-Checksum"),
    ("Upgrade", "foo/1"),
    ("Proxy-Authorization", "Basic dXNlcjpwYXNz"),
    ("Proxy-Connection", "keep-alive"),
]


def one_zone(verge, origin, **extra):
    return verge([zone("z1", [origin], hosts=["a.test"], **extra)])


def test_get_static_file_passes_body_and_content_length(verge, nginx_origin):
    v = one_zone(verge, nginx_origin)
    resp = v.get("/index.html")
    assert resp.status == 200, resp
    assert resp.body == nginx_origin.files["index.html"]
    assert resp.headers.get("content-length") == str(len(nginx_origin.files["index.html"]))
    assert "transfer-encoding" not in resp.headers


def test_head_has_no_body_and_keeps_connection_usable(verge, nginx_origin):
    v = one_zone(verge, nginx_origin)
    with v.client() as c:
        head = c.request("HEAD", "/index.html")
        assert head.status == 200, head
        assert head.body == b""
        assert head.headers.get("content-length") == str(len(nginx_origin.files["index.html"]))
        # If verge had sent (or waited for) a body, this next response would be misframed.
        resp = c.request("GET", "/small.txt")
        assert resp.status == 200, resp
        assert resp.body == nginx_origin.files["small.txt"]


def test_post_content_length_body_reaches_origin_intact(verge, scripted_origin):
    origin = scripted_origin()
    v = one_zone(verge, origin)
    body = bytes(range(256)) * 400  # 100 KiB, every byte value
    resp = v.request("POST", "/upload", body=body, headers=[("Content-Type", "application/x-test")])
    assert resp.status == 200, resp
    req = origin.requests[0]
    assert req.method == "POST" and req.target == "/upload"
    assert req.body == body
    if not req.chunked:
        assert req.headers.get("content-length") == str(len(body))
    assert req.headers.get("content-type") == "application/x-test"


def test_put_chunked_body_reaches_origin_intact(verge, scripted_origin):
    origin = scripted_origin()
    v = one_zone(verge, origin)
    body = b"".join(b"line %06d of a chunked upload\n" % i for i in range(3000))
    resp = v.request("PUT", "/object", body=chunked(body, 4093),
                     headers=[("Transfer-Encoding", "chunked")])
    assert resp.status == 200, resp
    req = origin.requests[0]
    assert req.method == "PUT"
    assert req.body == body
    # One framing only: never both Content-Length and chunked towards the origin.
    assert not (req.chunked and "content-length" in req.headers), req


def test_empty_post_sends_zero_length_body(verge, scripted_origin):
    origin = scripted_origin()
    v = one_zone(verge, origin)
    resp = v.request("POST", "/empty", body=b"")
    assert resp.status == 200, resp
    req = origin.requests[0]
    assert req.body == b""
    assert req.chunked or req.headers.get("content-length") == "0", req


def test_chunked_origin_response_reaches_visitor_chunked(verge, scripted_origin):
    body = b"".join(b"chunk %d\n" % i for i in range(500))

    def handler(conn):
        while conn.read_request() is not None:
            conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                      b"Content-Type: text/plain\r\n\r\n" + chunked(body, 777))

    v = one_zone(verge, scripted_origin(handler))
    with v.client() as c:
        resp = c.request("GET", "/chunked")
        assert resp.status == 200, resp
        assert resp.chunked and resp.complete
        assert resp.body == body
        again = c.request("GET", "/chunked")
        assert again.body == body


def test_close_delimited_origin_response_reaches_http11_visitor_chunked(verge, scripted_origin):
    body = b"no length, ends when the origin closes\n" * 100

    def handler(conn):
        if conn.read_request() is not None:
            conn.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body)
        conn.close()

    v = one_zone(verge, scripted_origin(handler))
    with v.client() as c:
        resp = c.request("GET", "/eof")
        assert resp.status == 200, resp
        assert resp.chunked, f"expected chunked framing to the visitor, got {resp.headers}"
        assert resp.complete and resp.body == body
        # The visitor connection is still usable.
        again = c.request("GET", "/eof")
        assert again.status == 200 and again.body == body


@pytest.mark.parametrize("status", [204, 304])
def test_bodiless_status_has_no_body_and_next_response_is_framed(verge, scripted_origin, status):
    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            if req.target == "/empty":
                conn.send(b"HTTP/1.1 %d X\r\nETag: \"v1\"\r\n\r\n" % status)
            else:
                conn.respond(200, b"after")

    v = one_zone(verge, scripted_origin(handler))
    with v.client() as c:
        c.send(b"GET /empty HTTP/1.1\r\nHost: a.test\r\n\r\nGET /next HTTP/1.1\r\nHost: a.test\r\n\r\n")
        first = c.read_response()
        assert first.status == status, first
        assert first.body == b""
        assert "transfer-encoding" not in first.headers
        second = c.read_response()
        assert second.status == 200 and second.body == b"after", second


def test_forwarding_headers_reach_origin(verge, scripted_origin):
    origin = scripted_origin()
    v = one_zone(verge, origin)
    resp = v.get("/fwd", headers=[("X-Forwarded-For", "203.0.113.7"), ("X-Custom", "kept")])
    assert resp.status == 200, resp
    req = origin.requests[0]
    assert req.headers.get("host") == origin.hostport
    assert req.headers.joined("x-forwarded-for") == "203.0.113.7, 127.0.0.1"
    assert req.headers.get("x-forwarded-proto") == "http"
    assert "1.1 testedge" in req.headers.joined("via")
    assert req.headers.get("x-custom") == "kept"
    rid = req.headers.get("x-request-id")
    assert rid and RID.match(rid), req
    assert resp.headers.get("x-request-id") == rid


def test_forwarding_headers_without_visitor_xff(verge, scripted_origin):
    origin = scripted_origin()
    v = one_zone(verge, origin)
    v.get("/fwd", headers=[("Via", "1.0 visitor-proxy")])
    req = origin.requests[0]
    assert req.headers.joined("x-forwarded-for") == "127.0.0.1"
    via = req.headers.joined("via")
    assert "1.0 visitor-proxy" in via and "1.1 testedge" in via
    assert via.index("1.0 visitor-proxy") < via.index("1.1 testedge")


def test_response_carries_via_and_request_id(verge, nginx_origin):
    v = one_zone(verge, nginx_origin)
    resp = v.get("/small.txt")
    assert resp.status == 200
    assert "1.1 testedge" in resp.headers.joined("via"), resp.headers
    assert RID.match(resp.headers.get("x-request-id") or ""), resp.headers
    other = v.get("/small.txt")
    assert other.headers.get("x-request-id") != resp.headers.get("x-request-id")


def test_visitor_request_id_is_kept_when_sane(verge, scripted_origin):
    origin = scripted_origin()
    v = one_zone(verge, origin)
    resp = v.get("/rid", headers=[("X-Request-Id", "trace-42.abc_DEF")])
    assert resp.headers.get("x-request-id") == "trace-42.abc_DEF"
    assert origin.requests[0].headers.get_all("x-request-id") == ["trace-42.abc_DEF"]


def test_visitor_request_id_is_replaced_when_not_sane(verge, scripted_origin):
    origin = scripted_origin()
    v = one_zone(verge, origin)
    resp = v.get("/rid", headers=[("X-Request-Id", "<script>alert(1)</script> with spaces")])
    assert resp.status == 200, resp
    rid = resp.headers.get("x-request-id")
    assert rid and RID.match(rid), resp.headers
    assert origin.requests[0].headers.get_all("x-request-id") == [rid]


def test_hop_by_hop_request_headers_are_not_forwarded(verge, scripted_origin):
    origin = scripted_origin()
    v = one_zone(verge, origin)
    resp = v.get("/hop", headers=HOP_BY_HOP_REQUEST + [("X-End-To-End", "yes")])
    assert resp.status == 200, resp
    req = origin.requests[0]
    names = set(req.headers.names())
    for banned in ("x-secret", "keep-alive", "te", "trailer", "upgrade", "proxy-authorization",
                   "proxy-connection"):
        assert banned not in names, f"{banned} forwarded to the origin: {req.headers}"
    assert "x-secret" not in req.headers.joined("connection").lower()
    assert req.headers.get("x-end-to-end") == "yes"


def test_hop_by_hop_response_headers_are_not_forwarded(verge, scripted_origin):
    def handler(conn):
        while conn.read_request() is not None:
            conn.respond(200, b"hop", headers=[
                ("Connection", "X-Origin-Secret"),
                ("X-Origin-Secret", "must-not-pass"),
                ("Keep-Alive", "timeout=5, max=100"),
                ("Upgrade", "foo/2"),
                ("Trailer", "X-Checksum"),
                ("Proxy-Connection", "keep-alive"),
                ("Proxy-Authenticate", "Basic realm=origin"),
                ("X-End-To-End", "yes"),
            ])

    v = one_zone(verge, scripted_origin(handler))
    with v.client() as c:
        resp = c.request("GET", "/hop")
        assert resp.status == 200 and resp.body == b"hop", resp
        names = set(resp.headers.names())
        for banned in ("x-origin-secret", "keep-alive", "upgrade", "trailer", "proxy-connection",
                       "proxy-authenticate"):
            assert banned not in names, f"{banned} passed to the visitor: {resp.headers}"
        assert "x-origin-secret" not in resp.headers.joined("connection").lower()
        assert resp.headers.get("x-end-to-end") == "yes"
        assert c.request("GET", "/hop").status == 200


def test_response_fields_are_forwarded_in_order_each_as_name_colon_space_value(verge,
                                                                             scripted_origin):
    # Lines the origin wrote as "Name: value" go out as they came (in runs); the others are
    # rewritten; a hop-by-hop field in the middle of a run is still dropped.
    head = (b"HTTP/1.1 200 OK\r\n"
            b"X-A: 1\r\n"
            b"X-B: two words\r\n"
            b"X-Tight:3\r\n"
            b"X-Spaced:   4  \r\n"
            b"X-C: 5\r\n"
            b"Keep-Alive: timeout=5\r\n"
            b"X-D: 6\r\n"
            b"X-Empty:\r\n"
            b"X-E: 7\r\n"
            b"Content-Length: 2\r\n\r\nok")

    def handler(conn):
        while conn.read_request() is not None:
            conn.send(head)

    v = one_zone(verge, scripted_origin(handler))
    with v.client() as c:
        for _ in range(2):
            resp = c.request("GET", "/fields")
            assert resp.status == 200 and resp.body == b"ok", resp
            assert (b"\r\nX-A: 1\r\nX-B: two words\r\nX-Tight: 3\r\nX-Spaced: 4\r\n"
                    b"X-C: 5\r\nX-D: 6\r\nX-Empty: \r\nX-E: 7\r\n") in resp.raw, resp.raw


def test_origin_connection_close_does_not_close_visitor_connection(verge, scripted_origin):
    def handler(conn):
        if conn.read_request() is not None:
            conn.respond(200, b"bye", headers=[("Connection", "close")])
        conn.close()

    origin = scripted_origin(handler)
    v = one_zone(verge, origin)
    with v.client() as c:
        for _ in range(3):
            resp = c.request("GET", "/close")
            assert resp.status == 200 and resp.body == b"bye", resp
            assert "close" not in resp.headers.joined("connection").lower()
    assert origin.connections == 3


def test_origin_host_default_is_origin_hostport(verge, nginx_origin):
    v = one_zone(verge, nginx_origin)
    resp = v.get("/echo", host="a.test")
    assert resp.status == 200, resp
    assert f"host={nginx_origin.hostport} ".encode() in resp.body, resp.body


def test_origin_host_visitor_passes_visitor_host(verge, nginx_origin):
    v = one_zone(verge, nginx_origin, origin_host="visitor")
    resp = v.get("/echo", host="a.test")
    assert b"host=a.test " in resp.body, resp.body


def test_origin_host_literal_sends_that_name(verge, scripted_origin):
    origin = scripted_origin()
    v = one_zone(verge, origin, origin_host="static.origin.example")
    v.get("/lit", host="a.test")
    assert origin.requests[0].headers.get_all("host") == ["static.origin.example"]


def test_query_string_and_method_pass_through(verge, scripted_origin):
    origin = scripted_origin()
    v = one_zone(verge, origin)
    for method in ("GET", "DELETE", "OPTIONS", "PATCH"):
        body = b"patch-body" if method == "PATCH" else None
        resp = v.request(method, "/path/%7Eq?x=1&y=%20z", body=body)
        assert resp.status == 200, (method, resp)
    assert [r.method for r in origin.requests] == ["GET", "DELETE", "OPTIONS", "PATCH"]
    assert all(r.target == "/path/%7Eq?x=1&y=%20z" for r in origin.requests)
    assert origin.requests[3].body == b"patch-body"


def test_http10_visitor_gets_close_delimited_body_when_origin_gives_no_length(
        verge, scripted_origin):
    body = b"ten-oh body\n" * 50

    def handler(conn):
        if conn.read_request() is not None:
            conn.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body)
        conn.close()

    v = one_zone(verge, scripted_origin(handler))
    with Client(v.port) as c:
        resp = c.request("GET", "/old", version="HTTP/1.0")
        assert resp.status == 200, resp
        assert not resp.chunked, "HTTP/1.0 visitors cannot be sent chunked bodies"
        assert resp.body == body and resp.eof


def test_connect_method_gives_405(verge, scripted_origin):
    origin = scripted_origin()
    v = one_zone(verge, origin)
    with Client(v.port) as c:
        c.send(b"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n")
        resp = c.read_response()
    assert resp.status == 405, resp
    assert not origin.requests


def test_unknown_expectation_gives_417(verge, scripted_origin):
    origin = scripted_origin()
    v = one_zone(verge, origin)
    resp = v.request("POST", "/e", body=b"abc", headers=[("Expect", "something-else")])
    assert resp.status == 417, resp
    assert not origin.requests
