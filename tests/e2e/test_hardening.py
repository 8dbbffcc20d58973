"""First hardening rules: unkeyed request fields that could poison a cache do not reach the
origin unless the zone allows them; Transfer-Encoding in an HTTP/1.0 request is refused."""

from harness import Client, zone


def echo_origin(scripted_origin):
    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            conn.respond(200, b"ok", {"Cache-Control": "no-store"})
    return scripted_origin(handler)


UNKEYED = [("X-Forwarded-Host", "evil.example"), ("X-Original-URL", "/admin"),
           ("X-Rewrite-URL", "/admin"), ("X-HTTP-Method-Override", "DELETE")]


def test_unkeyed_fields_do_not_reach_the_origin(verge, scripted_origin):
    origin = echo_origin(scripted_origin)
    v = verge([zone("z1", [origin.url])])
    assert v.get("/", headers=UNKEYED + [("X-Custom", "kept")]).status == 200
    [req] = origin.requests
    for name, _ in UNKEYED:
        assert req.headers.get(name) is None, name
    assert req.headers.get("x-custom") == "kept"


def test_zone_can_let_an_unkeyed_field_through(verge, scripted_origin):
    origin = echo_origin(scripted_origin)
    v = verge([zone("z1", [origin.url], pass_headers=["X-Forwarded-Host"])])
    v.get("/", headers=UNKEYED)
    [req] = origin.requests
    assert req.headers.get("x-forwarded-host") == "evil.example"
    assert req.headers.get("x-original-url") is None


def test_transfer_encoding_in_http10_request_is_refused(verge, scripted_origin):
    origin = echo_origin(scripted_origin)
    v = verge([zone("z1", [origin.url])])
    with Client(v.port) as c:
        c.send(b"POST / HTTP/1.0\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\nabc\r\n0\r\n\r\n")
        resp = c.read_response("POST")
        assert resp.status == 400
    assert origin.requests == []
