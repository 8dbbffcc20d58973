"""Routing by Host: exact names, wildcards, the catch-all, and refusing what no zone serves."""

import pytest

from harness import Client, wait_until, zone


def named_origin(scripted_origin, name):
    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            conn.respond(200, name.encode(), headers=[("X-Target", req.target)])
    return scripted_origin(handler)


@pytest.fixture
def routed(verge, scripted_origin):
    """verge with an exact zone, a wildcard zone and (optionally) a catch-all zone."""
    def make(catch_all):
        zones = [
            zone("exact", [named_origin(scripted_origin, "exact")], hosts=["a.test"]),
            zone("wild", [named_origin(scripted_origin, "wild")], hosts=["*.b.test"]),
            zone("deeper", [named_origin(scripted_origin, "deeper")], hosts=["*.deep.b.test"]),
        ]
        if catch_all:
            zones.append(zone("any", [named_origin(scripted_origin, "any")], hosts=["*"]))
        return verge(zones)
    return make


def served_by(v, host):
    resp = v.get("/", host=host)
    return resp.body.decode() if resp.status == 200 else resp.status


@pytest.mark.parametrize("host,expected", [
    ("a.test", "exact"),
    ("A.TEST", "exact"),
    ("a.test:8080", "exact"),
    ("a.test.", "exact"),
    ("x.b.test", "wild"),
    ("x.y.b.test", "wild"),
    ("q.deep.b.test", "deeper"),  # the longest wildcard wins
    ("b.test", 421),              # "*.b.test" does not match the bare name
    ("xa.test", 421),
    ("unknown.example", 421),
])
def test_routing_without_catch_all(routed, host, expected):
    v = routed(catch_all=False)
    assert served_by(v, host) == expected


def test_catch_all_zone_serves_unknown_hosts_but_not_known_ones(routed):
    v = routed(catch_all=True)
    assert served_by(v, "unknown.example") == "any"
    assert served_by(v, "b.test") == "any"
    assert served_by(v, "a.test") == "exact"
    assert served_by(v, "z.b.test") == "wild"


def test_unknown_host_gives_421_with_short_body_counted_under_dash(routed):
    v = routed(catch_all=False)
    resp = v.get("/", host="nobody.example")
    assert resp.status == 421, resp
    assert 0 < len(resp.body) < 1024, resp.body
    assert resp.headers.get("x-request-id")
    m = v.metrics()
    assert m.value("verge_requests_total", zone="-", status="421") == 1
    assert m.sum("verge_origin_requests_total") == 0


def test_absolute_form_for_foreign_host_gives_421(routed):
    v = routed(catch_all=False)
    with Client(v.port) as c:
        c.send(b"GET http://other.host/ HTTP/1.1\r\nHost: other.host\r\n\r\n")
        resp = c.read_response()
    assert resp.status == 421, resp


def test_absolute_form_for_served_host_routes_by_authority_and_sends_origin_form(routed):
    v = routed(catch_all=False)
    with Client(v.port) as c:
        c.send(b"GET http://a.test/abs/path?q=1 HTTP/1.1\r\nHost: a.test\r\n\r\n")
        resp = c.read_response()
    assert resp.status == 200 and resp.body == b"exact", resp
    assert resp.headers.get("x-target") == "/abs/path?q=1"


def test_absolute_form_routes_by_its_authority(routed):
    v = routed(catch_all=False)
    with Client(v.port) as c:
        c.send(b"GET http://x.b.test/ HTTP/1.1\r\nHost: X.B.test:80\r\n\r\n")
        resp = c.read_response()
    assert resp.body == b"wild", resp


def test_host_contradicting_the_absolute_form_target_gives_400(routed):
    """RFC 9112 3.2.2 lets a server ignore the Host; a proxy in front of other servers must
    not, or the two could route the request differently (docs/hardening.md)."""
    v = routed(catch_all=False)
    with Client(v.port) as c:
        c.send(b"GET http://x.b.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n")
        resp = c.read_response()
        assert resp.status == 400, resp
        assert c.peer_closed()


def test_missing_host_on_http11_gives_400(routed):
    v = routed(catch_all=True)
    with Client(v.port) as c:
        c.send(b"GET / HTTP/1.1\r\nUser-Agent: e2e\r\n\r\n")
        resp = c.read_response()
    assert resp.status == 400, resp


def test_duplicate_host_header_gives_400(routed):
    v = routed(catch_all=True)
    with Client(v.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: x.b.test\r\n\r\n")
        resp = c.read_response()
    assert resp.status == 400, resp


def test_a_reload_moves_a_host_just_routed_to_its_new_zone(verge, scripted_origin):
    # Each worker remembers the last Host it routed (and its zone): a reload that moves the
    # host to another zone must be obeyed all the same.
    old = named_origin(scripted_origin, "old")
    new = named_origin(scripted_origin, "new")
    v = verge([zone("first", [old], hosts=["a.test", "moved.test"]),
               zone("second", [new], hosts=["b.test"])], workers=1)
    for _ in range(3):
        assert served_by(v, "moved.test") == "old"
    assert served_by(v, "b.test") == "new"
    assert served_by(v, "moved.test") == "old"
    v.reload(v.build_config([zone("first", [old], hosts=["a.test"]),
                             zone("second", [new], hosts=["b.test", "moved.test"])], workers=1))
    wait_until(lambda: served_by(v, "moved.test") == "new", timeout=3,
               what="moved.test served by its new zone after the reload")
    for _ in range(3):
        assert served_by(v, "moved.test") == "new"
    assert served_by(v, "a.test") == "old"
    assert served_by(v, "MOVED.test:80") == "new"  # another spelling of the same host
