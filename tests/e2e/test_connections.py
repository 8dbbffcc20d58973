"""Listeners and connections: IPv6, failing over to the next origin, malformed and slow
requests, and the origin pool's idle cap."""

import time

from harness import Client, free_port, wait_until, zone


def test_ipv6_listener_serves_visitors(verge, nginx_origin):
    import pytest
    try:
        port6 = free_port("::1")
    except OSError as e:  # a machine without IPv6 on loopback
        pytest.skip(f"no IPv6 loopback here: {e}")
    v = verge.prepare()
    v.write_config(v.build_config([zone("z1", [nginx_origin])],
                                  listen=[f"127.0.0.1:{v.port}", f"[::1]:{port6}"]))
    v.start()
    with Client(port6, host="::1") as c:
        resp = c.request("GET", "/small.txt")
    assert resp.status == 200
    assert resp.body == nginx_origin.files["small.txt"]
    rid = resp.headers.get("x-request-id")
    line = v.access_line_for(rid)
    assert line.startswith("::1 "), line


def test_refused_origin_fails_over_to_the_next_one(verge, nginx_origin):
    dead = f"http://127.0.0.1:{free_port()}"
    v = verge([zone("z1", [dead, nginx_origin])])
    for _ in range(6):  # round-robin starts on each origin in turn
        resp = v.get("/small.txt")
        assert resp.status == 200, resp
        assert "proxy-status" not in resp.headers
    m = v.metrics()
    assert m.value("verge_requests_total", zone="z1", status="200") == 6
    assert m.value("verge_origin_errors_total", zone="z1", error="connection_refused") >= 1


def test_malformed_request_gets_400_and_the_connection_closes(verge, nginx_origin):
    v = verge([zone("z1", [nginx_origin])])
    with Client(v.port) as c:
        c.send(b"GET /a b c HTTP/1.1\r\nHost: a.test\r\n\r\n")
        resp = c.read_response()
        assert resp.status == 400, resp
        assert c.peer_closed()
    assert len(nginx_origin.access_lines()) == 0


def test_oversized_request_header_gets_431(verge, nginx_origin):
    v = verge([zone("z1", [nginx_origin])], client={"max_header_size": "2KiB"})
    resp = v.get("/small.txt", headers=[("X-Big", "x" * 4000)])
    assert resp.status == 431, resp


def test_request_header_not_finished_in_time_gets_408(verge, nginx_origin):
    v = verge([zone("z1", [nginx_origin])], client={"header_timeout": "1s"})
    with Client(v.port) as c:
        c.send(b"GET /small.txt HTTP/1.1\r\nHost: a.te")
        resp = c.read_response()
        assert resp.status == 408, resp
        assert c.peer_closed()


def test_second_request_header_not_finished_in_time_gets_408(verge, nginx_origin):
    """On a kept-alive connection the header timeout runs from the next request's first
    byte, not the keep-alive timeout (30 s here): a head cut short gets 408 after 1 s."""
    v = verge([zone("z1", [nginx_origin])],
              client={"header_timeout": "1s", "keepalive_timeout": "30s"})
    with Client(v.port) as c:
        c.send(b"GET /small.txt HTTP/1.1\r\nHost: a.test\r\n\r\n")
        assert c.read_response().status == 200
        c.send(b"GET /small.txt HTTP/1.1\r\nHost: a.te")
        started = time.monotonic()
        resp = c.read_response()
        assert resp.status == 408, resp
        assert time.monotonic() - started < 10
        assert c.peer_closed()


def test_max_idle_zero_opens_a_new_origin_connection_per_request(verge, nginx_origin):
    v = verge([zone("z1", [nginx_origin])], upstream={"max_idle": 0})
    for _ in range(4):
        assert v.get("/small.txt").status == 200
    wait_until(lambda: len(nginx_origin.access_lines()) >= 4, what="nginx access log")
    assert len(nginx_origin.connection_ids()) == 4


def test_malformed_host_gets_400_not_421(verge, nginx_origin):
    v = verge([zone("z1", [nginx_origin])])
    assert v.get("/small.txt", host="a.test:99999").status == 400
    assert v.get("/small.txt", host="bad host").status == 400
    assert v.get("/small.txt", host="other.test").status == 421
