"""Origin failures: each class gives its RFC 9209 status and Proxy-Status error type, and is
counted in /metrics and named in the access and error logs."""

import re

import pytest

from harness import Client, build_request, free_port, wait_until, zone

RID = re.compile(r"^[0-9a-f]{32}$")


def counted(v, zone_name, status):
    """The metrics once the request is counted: that happens when its response is finished,
    which may be just after the visitor has read all of it (seen under ASan)."""
    def done():
        m = v.metrics()
        return m if m.value("verge_requests_total", zone=zone_name, status=str(status)) == 1 else None
    return wait_until(done, what=f"verge_requests_total{{zone={zone_name},status={status}}} == 1")


def check_error_response(v, resp, status, error, zone_name="z1"):
    assert resp.status == status, resp
    ps = resp.headers.get("proxy-status") or ""
    assert ps.startswith(f"testedge; error={error}"), f"Proxy-Status: {ps!r}"
    assert re.search(r'; details="(?:[^"\\]|\\.)*"', ps), f"no details in Proxy-Status: {ps!r}"
    assert "no-store" in (resp.headers.get("cache-control") or ""), resp.headers
    rid = resp.headers.get("x-request-id") or ""
    assert RID.match(rid), resp.headers
    m = counted(v, zone_name, status)
    assert m.value("verge_origin_errors_total", zone=zone_name, error=error) == 1, \
        [l for l in m.text.splitlines() if "origin_errors" in l]
    line = v.access_line_for(rid)
    assert f"error={error}" in line, line
    assert f'" {status} ' in line, line
    v.wait_error_log(re.escape(error))
    return rid


def one_zone(verge, origin_url, **extra):
    return verge([zone("z1", [origin_url], **extra)])


def test_closed_origin_port_gives_502_connection_refused(verge):
    v = one_zone(verge, f"http://127.0.0.1:{free_port()}")
    resp = v.get("/x")
    check_error_response(v, resp, 502, "connection_refused")


def test_unresolvable_origin_name_gives_502_dns_error_and_verge_still_starts(verge,
                                                                            dns_server):
    dns_server.set_rcode("nonexistent.invalid", "NXDOMAIN")
    v = verge([zone("z1", ["http://nonexistent.invalid:80"])],
              resolver={"servers": [dns_server.address]})
    resp = v.get("/x")
    check_error_response(v, resp, 502, "dns_error")


def close_after_request(conn):
    if conn.read_request() is not None:
        conn.close()


def reset_after_request(conn):
    if conn.read_request() is not None:
        conn.reset_close()


def partial_head_then_close(conn):
    if conn.read_request() is not None:
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Le")
        conn.sleep(0.1)
        conn.close()


@pytest.mark.parametrize("handler", [close_after_request, reset_after_request,
                                     partial_head_then_close],
                         ids=["close", "reset", "partial_head"])
def test_origin_ending_connection_before_full_header_gives_502_connection_terminated(
        verge, scripted_origin, handler):
    origin = scripted_origin(handler)
    v = one_zone(verge, origin.url)
    resp = v.get("/x")
    check_error_response(v, resp, 502, "connection_terminated")
    assert origin.connections == 1


@pytest.mark.parametrize("garbage", [
    b"HELLO WORLD\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nBad Header Without Colon\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 2000 Huge\r\nContent-Length: 2\r\n\r\nok",
], ids=["status_line", "header_line", "status_code"])
def test_garbage_response_gives_502_http_protocol_error(verge, scripted_origin, garbage):
    def handler(conn):
        if conn.read_request() is not None:
            conn.send(garbage)
            conn.sleep(0.5)
    v = one_zone(verge, scripted_origin(handler).url)
    resp = v.get("/x")
    check_error_response(v, resp, 502, "http_protocol_error")


def test_oversized_response_header_gives_502_header_section_size(verge, scripted_origin):
    def handler(conn):
        if conn.read_request() is not None:
            conn.send(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 20000 +
                      b"\r\nContent-Length: 2\r\n\r\nok")
            conn.sleep(0.5)
    origin = scripted_origin(handler)
    v = verge([zone("z1", [origin])], upstream={"max_header_size": "16KiB"})
    resp = v.get("/x")
    check_error_response(v, resp, 502, "http_response_header_section_size")


def test_response_header_within_limit_is_accepted(verge, scripted_origin):
    def handler(conn):
        while conn.read_request() is not None:
            conn.respond(200, b"ok", headers=[("X-Big", "b" * 12000)])
    v = verge([zone("z1", [scripted_origin(handler)])], upstream={"max_header_size": "16KiB"})
    resp = v.get("/x")
    assert resp.status == 200 and resp.headers.get("x-big") == "b" * 12000


def test_no_header_within_header_timeout_gives_504_http_response_timeout(verge, scripted_origin):
    def handler(conn):
        if conn.read_request() is not None:
            conn.sleep(6)  # returns at once when the test ends
    origin = scripted_origin(handler)
    v = one_zone(verge, origin.url,
                 timeouts={"connect": "5s", "send": "30s", "header": "1s", "idle": "60s"})
    resp = v.get("/x", timeout=15)
    check_error_response(v, resp, 504, "http_response_timeout")


def cl_body_cut_short(conn):
    if conn.read_request() is not None:
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"a" * 1000)
        conn.sleep(0.2)
        conn.close()


def chunked_body_cut_short(conn):
    if conn.read_request() is not None:
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n" + b"a" * 1000
                  + b"\r\n")
        conn.sleep(0.2)
        conn.close()


def body_cut_mid_chunk(conn):
    if conn.read_request() is not None:
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n" + b"a" * 500)
        conn.sleep(0.2)
        conn.close()


def body_reset_midway(conn):
    if conn.read_request() is not None:
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"a" * 1000)
        conn.sleep(0.2)
        conn.reset_close()


@pytest.mark.parametrize("handler", [cl_body_cut_short, chunked_body_cut_short,
                                     body_cut_mid_chunk, body_reset_midway],
                         ids=["content_length", "chunked", "mid_chunk", "reset"])
def test_body_cut_short_aborts_visitor_connection_as_http_response_incomplete(
        verge, scripted_origin, handler):
    v = one_zone(verge, scripted_origin(handler).url)
    with Client(v.port) as c:
        resp = c.request("GET", "/x")
        assert resp.status == 200, resp
        assert not resp.complete, f"visitor saw a clean end of a truncated body: {resp}"
        assert resp.eof, "visitor connection not closed after a truncated body"
        assert resp.body_len <= 1000
    rid = resp.headers.get("x-request-id")
    m = v.metrics()
    assert m.value("verge_origin_errors_total", zone="z1", error="http_response_incomplete") == 1
    line = v.access_line_for(rid)
    assert "error=http_response_incomplete" in line, line
    v.wait_error_log("http_response_incomplete")



def test_body_stalling_past_idle_timeout_closes_visitor_as_connection_read_timeout(
        verge, scripted_origin):
    def handler(conn):
        if conn.read_request() is not None:
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"s" * 100)
            conn.sleep(6)  # returns at once when the test ends
    v = one_zone(verge, scripted_origin(handler).url,
                 timeouts={"connect": "5s", "send": "30s", "header": "30s", "idle": "1s"})
    with Client(v.port, timeout=15) as c:
        resp = c.request("GET", "/stall")
        assert resp.status == 200
        assert not resp.complete and resp.eof, resp
    m = v.metrics()
    assert m.value("verge_origin_errors_total", zone="z1", error="connection_read_timeout") == 1
    line = v.access_line_for(resp.headers.get("x-request-id"))
    assert "error=connection_read_timeout" in line, line


def test_origin_that_stops_reading_the_request_gives_504_connection_write_timeout(
        verge, scripted_origin):
    def handler(conn):
        conn.sleep(4)  # accepts, never reads: the request body backs up
    origin = scripted_origin(handler)
    v = one_zone(verge, origin.url,
                 timeouts={"connect": "5s", "send": "1s", "header": "30s", "idle": "60s"})
    body = b"x" * (16 * 1024 * 1024)
    with Client(v.port, timeout=20) as c:
        c.send(build_request("POST", "/upload", "a.test", [], body))
        resp = c.read_response("POST")
    check_error_response(v, resp, 504, "connection_write_timeout")
