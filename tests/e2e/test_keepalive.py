"""Connection reuse on both sides, pipelining, 100-continue and request body limits."""

import socket
import time

from harness import build_request, chunked, wait_until, zone

WORKERS = 2


def test_origin_connections_are_reused_across_visitor_requests(verge, nginx_origin):
    v = verge([zone("z1", [nginx_origin])], workers=WORKERS)
    n = 30
    for i in range(n):  # sequential, each on a new visitor connection
        resp = v.get(f"/p{i % 10}.txt")
        assert resp.status == 200, resp
    wait_until(lambda: len(nginx_origin.access_lines()) >= n, what="nginx access log")
    conns = nginx_origin.connection_ids()
    # One pool per worker: at most one origin connection per worker for sequential requests.
    assert 1 <= len(conns) <= WORKERS, f"{len(conns)} origin connections for {n} requests"
    m = v.metrics()
    assert m.value("verge_origin_requests_total", zone="z1") == n
    assert m.value("verge_origin_connections_total", zone="z1") == len(conns)


def test_visitor_keepalive_connection_serves_many_requests(verge, nginx_origin):
    v = verge([zone("z1", [nginx_origin])])
    base = v.metrics().value("verge_connections_total")
    with v.client() as c:
        for i in range(20):
            resp = c.request("GET", f"/p{i % 10}.txt")
            assert resp.status == 200 and resp.body == nginx_origin.files[f"p{i % 10}.txt"]
            assert not resp.eof
    assert v.metrics().value("verge_connections_total") - base == 1
    assert len(nginx_origin.connection_ids()) == 1


def test_a_visitor_that_asks_for_the_close_is_closed_at_once(verge, scripted_origin):
    """Connection: close, or HTTP/1.0 without keep-alive: the whole answer (proxied, then
    from the cache), then the edge closes its connection while the visitor still holds its
    side open, as nginx does. It does not linger for the visitor's FIN (it did, up to 5 s:
    a shutdown, a wait and a read more for every such connection)."""
    asked = []

    def handler(conn):
        while (req := conn.read_request()) is not None:
            asked.append(req)
            conn.respond(200, b"stored body\n", {"Cache-Control": "max-age=60"})
    v = verge([zone("z1", [scripted_origin(handler).url], cache=True)])
    for version, headers in [("HTTP/1.1", [("Connection", "close")])] * 2 + [("HTTP/1.0", [])]:
        with v.client() as c:
            c.send(build_request("GET", "/p1.txt", headers=headers, version=version))
            resp = c.read_response()
            assert resp.status == 200 and resp.body == b"stored body\n", resp
            assert c.read_head() is None  # the edge's FIN
            # well within the 5 s a lingering close waits, also under ASan and valgrind
            wait_until(lambda: v.metrics().value("verge_connections_active") == 0,
                       timeout=2.0, what="the edge to close the connection")
    assert len(asked) == 1  # a miss, then two hits


def test_pipelined_requests_are_answered_in_order(verge, nginx_origin):
    v = verge([zone("z1", [nginx_origin])])
    order = [3, 1, 4, 1, 5, 9, 2, 6]
    methods = ["GET"] * len(order)
    methods[2] = "HEAD"
    data = b"".join(build_request(m, f"/p{i}.txt") for m, i in zip(methods, order))
    with v.client() as c:
        c.send(data)  # one write: every request is in verge's buffer at once
        for m, i in zip(methods, order):
            resp = c.read_response(m)
            assert resp.status == 200, resp
            expected = nginx_origin.files[f"p{i}.txt"]
            assert resp.body == (b"" if m == "HEAD" else expected), (m, i, resp)
            assert resp.headers.get("content-length") == str(len(expected))


def slow_or_echo(delay):
    """An origin handler answering each target with its own name, /slow after delay s."""
    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            if req.target == "/slow":
                conn.sleep(delay)
            conn.respond(200, req.target.encode())
    return handler


def test_pipelined_requests_to_slow_and_fast_answers_stay_in_order(verge, scripted_origin):
    v = verge([zone("z1", [scripted_origin(slow_or_echo(0.5))])])
    targets = ["/slow", "/fast1", "/slow", "/fast2"]
    with v.client() as c:
        c.send(b"".join(build_request("GET", t) for t in targets))
        got = [c.read_response().body for _ in targets]
    assert got == [t.encode() for t in targets]


def test_expect_100_continue_is_answered_by_edge_and_not_forwarded(verge, scripted_origin):
    origin = scripted_origin()
    v = verge([zone("z1", [origin])])
    body = b"x" * 50000
    with v.client() as c:
        c.send(build_request("POST", "/upload", headers=[("Content-Length", str(len(body))),
                                                        ("Expect", "100-continue")]))
        interim = c.read_response(keep_interim=True)
        assert interim.status == 100, interim
        assert interim.raw.startswith(b"HTTP/1.1 100 Continue\r\n"), interim.raw
        c.send(body)
        resp = c.read_response()
        assert resp.status == 200, resp
    req = origin.requests[0]
    assert "expect" not in req.headers.names(), req.headers
    assert req.body == body


def test_request_body_over_limit_with_content_length_gives_413(verge, scripted_origin):
    origin = scripted_origin()
    v = verge([zone("z1", [origin], max_request_body="1MiB")])
    with v.client() as c:
        c.send(build_request("POST", "/big", headers=[("Content-Length", str(2 * 1024 * 1024)),
                                                     ("Expect", "100-continue")]))
        resp = c.read_response()
        assert resp.status == 413, resp
        assert all(r.status != 100 for r in resp.interim), "100 Continue sent for a body over the limit"
    assert origin.connections == 0 and not origin.requests


def test_request_body_over_limit_without_expect_gives_413(verge, scripted_origin):
    origin = scripted_origin()
    v = verge([zone("z1", [origin], max_request_body="1MiB")])
    with v.client() as c:
        c.send(build_request("PUT", "/big", headers=[("Content-Length", str(3 * 1024 * 1024))]))
        try:  # verge may answer before reading the body and close; both are fine
            c.send(b"y" * (256 * 1024))
        except OSError:
            pass
        resp = c.read_response()
        assert resp.status == 413, resp
    assert not origin.requests


def test_chunked_request_body_over_limit_gives_413(verge, scripted_origin):
    origin = scripted_origin()
    v = verge([zone("z1", [origin], max_request_body="1MiB")])
    body = b"z" * (1024 * 1024 + 4096)
    with v.client() as c:
        c.send(build_request("POST", "/big", headers=[("Transfer-Encoding", "chunked")]))
        try:
            c.send(chunked(body, 64 * 1024))
        except OSError:
            pass
        resp = c.read_response()
        assert resp.status == 413, resp
    # Whatever the origin saw, it never got the whole over-limit body as a complete request.
    assert all(len(r.body) <= 1024 * 1024 for r in origin.requests)


def test_request_body_at_limit_is_accepted(verge, scripted_origin):
    origin = scripted_origin()
    v = verge([zone("z1", [origin], max_request_body="1MiB")])
    body = b"k" * (1024 * 1024)
    resp = v.request("POST", "/exact", body=body)
    assert resp.status == 200, resp
    assert origin.requests[0].body == body


def test_idle_origin_connection_closed_by_origin_is_not_reused_for_failure(verge, scripted_origin):
    """The origin closes idle keep-alive connections; the next request must still succeed."""
    def handler(conn):
        req = conn.read_request()
        if req is not None:
            conn.respond(200, b"once", headers=[("Keep-Alive", "timeout=1")])
        conn.sleep(0.3)  # then close while idle in verge's pool
        conn.close()

    origin = scripted_origin(handler)
    v = verge([zone("z1", [origin])], workers=1)
    with v.client() as c:
        assert c.request("GET", "/1").status == 200
        time.sleep(0.8)
        resp = c.request("GET", "/2")
        assert resp.status == 200 and resp.body == b"once", resp
    assert origin.connections == 2


def test_requests_sent_before_a_half_close_are_all_answered(verge, scripted_origin):
    """A visitor that sends its requests and shuts its side (printf ... | nc) still gets every
    answer, the slow proxied one first; then the edge closes."""
    v = verge([zone("z1", [scripted_origin(slow_or_echo(0.3))])])
    targets = ["/slow", "/a", "/b"]
    with v.client() as c:
        c.send(b"".join(build_request("GET", t) for t in targets))
        c.sock.shutdown(socket.SHUT_WR)
        got = [c.read_response().body for _ in targets]
        assert got == [t.encode() for t in targets]
        assert c.read_head() is None  # then the connection ends


def test_origin_connection_kept_after_a_response_that_fills_the_read_buffer_exactly(
        verge, scripted_origin):
    """A response of exactly the edge's read size (64 KiB, head and body, in one write)
    ends at a read's last byte: the connection goes back to the pool clean, and the next
    requests go on it (an edge-triggered loop, tried for #6, closed it instead)."""
    size = 64 * 1024

    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            head = "HTTP/1.1 200 OK\r\nContent-Length: %05d\r\n\r\n"
            n = size - len(head % 0)
            conn.send((head % n).encode() + b"x" * n)  # one write of `size` bytes

    origin = scripted_origin(handler)
    v = verge([zone("z1", [origin])], workers=1)
    with v.client() as c:
        for i in range(4):
            resp = c.request("GET", f"/exact{i}")
            assert resp.status == 200 and len(resp.body) == size - 42, resp
            time.sleep(0.1)  # the edge's next poll sees the connection idle in its pool
    assert origin.connections == 1
