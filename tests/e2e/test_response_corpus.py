"""A corpus of misbehaving origin responses. For each: the visitor's status and Proxy-Status
error type, the error counted, nothing stored although the zone caches and the response
says max-age (a second visitor reaches the origin again), and the next visitor, on the
same worker and so on any origin connection Verge might have kept, gets a clean answer
(never bytes the bad response left behind). Rules: docs/hardening.md."""

import time

import pytest

from harness import Client, ScriptedOrigin, Verge, strict_requests, zone

CACHEABLE = b"Cache-Control: max-age=60\r\n"
# What a connection left in a bad state would hand the next visitor.
POISON = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nCache-Control: max-age=60\r\n\r\nPOISON"


def raw(*parts):
    """A response sender: writes the bytes in one send (so Verge reads them together)."""
    data = b"".join(parts)
    return lambda conn: conn.send(data)


def late(first, later, delay=0.1):
    """Sends first, then later after delay: the two arrive in separate reads."""
    def send(conn):
        conn.send(first)
        conn.sleep(delay)
        conn.send(later)
    return send


def ok_head(*fields):
    return b"HTTP/1.1 200 OK\r\n" + CACHEABLE + b"".join(f + b"\r\n" for f in fields) + b"\r\n"


class Case:
    def __init__(self, name, send, status, error, method="GET", headers=(), settle=0.0,
                 complete=True, body=None, stored=False):
        """stored: the response is valid once its forbidden body is dropped (a 204 with
        max-age): it may be stored, without that body, and the second visitor gets it from
        the cache."""
        self.name, self.send, self.status, self.error = name, send, status, error
        self.method, self.headers, self.settle = method, headers, settle
        self.complete, self.body, self.stored = complete, body, stored


PROTO = "http_protocol_error"
SIZE = "http_response_header_section_size"
CASES = [
    # --- ambiguous framing ---
    Case("cl_and_te", raw(ok_head(b"Content-Length: 5", b"Transfer-Encoding: chunked"),
                          b"5\r\nhello\r\n0\r\n\r\n", POISON), 502, PROTO),
    Case("cl_differing", raw(ok_head(b"Content-Length: 2", b"Content-Length: 8"),
                             b"ok", POISON), 502, PROTO),
    Case("cl_list", raw(ok_head(b"Content-Length: 2, 2"), b"ok"), 502, PROTO),
    Case("cl_not_a_number", raw(ok_head(b"Content-Length: 2x"), b"ok"), 502, PROTO),
    Case("te_not_chunked", raw(ok_head(b"Transfer-Encoding: gzip"), b"\x1f\x8b..."), 502, PROTO),
    Case("te_other_coding_then_chunked",
         raw(ok_head(b"Transfer-Encoding: gzip, chunked"), b"2\r\nok\r\n0\r\n\r\n"), 502, PROTO),
    Case("te_in_http10",
         raw(b"HTTP/1.0 200 OK\r\n" + CACHEABLE + b"Transfer-Encoding: chunked\r\n\r\n",
             b"2\r\nok\r\n0\r\n\r\n"), 502, PROTO),
    # --- chunking: in the same read as the head, so still a 502 ---
    Case("chunk_size_not_hex", raw(ok_head(b"Transfer-Encoding: chunked"), b"zz\r\nok\r\n"),
         502, PROTO),
    Case("chunk_size_overflow", raw(ok_head(b"Transfer-Encoding: chunked"),
                                    b"10000000000000002\r\nok\r\n0\r\n\r\n"), 502, PROTO),
    Case("chunk_data_without_crlf", raw(ok_head(b"Transfer-Encoding: chunked"),
                                        b"2\r\nokXX0\r\n\r\n", POISON), 502, PROTO),
    Case("chunk_extension_ctl", raw(ok_head(b"Transfer-Encoding: chunked"),
                                    b"2;\x01\r\nok\r\n0\r\n\r\n"), 502, PROTO),
    # --- status line ---
    Case("status_four_digits", raw(b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok"), 502, PROTO),
    Case("status_two_digits", raw(b"HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok"), 502, PROTO),
    Case("status_600", raw(b"HTTP/1.1 600 Odd\r\nContent-Length: 2\r\n\r\nok"), 502, PROTO),
    Case("status_line_double_space", raw(b"HTTP/1.1  200 OK\r\nContent-Length: 2\r\n\r\nok"),
         502, PROTO),
    Case("reason_with_control_char", raw(b"HTTP/1.1 200 O\x01K\r\nContent-Length: 2\r\n\r\nok"),
         502, PROTO),
    Case("version_2", raw(b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok"), 502, PROTO),
    Case("no_status_line", raw(b"<html>hello</html>\r\n\r\n"), 502, PROTO),
    # --- field lines ---
    Case("obs_fold", raw(ok_head(b"X-A: a", b" folded", b"Content-Length: 2"), b"ok"), 502, PROTO),
    Case("nul_in_value", raw(ok_head(b"X-A: a\x00b", b"Content-Length: 2"), b"ok"), 502, PROTO),
    Case("bare_lf", raw(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok"), 502, PROTO),
    Case("bare_cr", raw(ok_head(b"X-A: a\rb", b"Content-Length: 2"), b"ok"), 502, PROTO),
    Case("space_before_colon", raw(ok_head(b"Content-Length : 2"), b"ok"), 502, PROTO),
    Case("name_not_token", raw(ok_head(b"X(A): b", b"Content-Length: 2"), b"ok"), 502, PROTO),
    Case("header_section_too_large",
         raw(ok_head(b"X-Big: " + b"b" * 20000, b"Content-Length: 2"), b"ok"), 502, SIZE),
    Case("too_many_header_fields",
         raw(ok_head(*[b"X-F%d: v" % i for i in range(150)], b"Content-Length: 2"), b"ok"),
         502, SIZE),
    # --- interim responses ---
    Case("unasked_101", raw(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n"
                            b"Connection: Upgrade\r\n\r\n", POISON), 502, PROTO),
    Case("1xx_storm", raw(b"HTTP/1.1 100 Continue\r\n\r\n" * 20,
                          ok_head(b"Content-Length: 2"), b"ok"), 502, PROTO),
    Case("1xx_with_body", raw(b"HTTP/1.1 100 Continue\r\nContent-Length: 6\r\n\r\nPOISON",
                              ok_head(b"Content-Length: 2"), b"ok"), 502, PROTO),
    # --- a body where none may be: not forwarded, connection not reused ---
    Case("204_with_body", raw(b"HTTP/1.1 204 No Content\r\n" + CACHEABLE +
                              b"Content-Length: 6\r\n\r\nPOISON"), 204, None, body=b"",
         stored=True),
    Case("204_with_chunked_body", raw(b"HTTP/1.1 204 No Content\r\n" + CACHEABLE +
                                      b"Transfer-Encoding: chunked\r\n\r\n6\r\nPOISON\r\n0\r\n"
                                      b"\r\n"), 204, None, body=b"", stored=True),
    Case("304_with_body", raw(b"HTTP/1.1 304 Not Modified\r\n" + CACHEABLE +
                              b"ETag: \"x\"\r\nContent-Length: 6\r\n\r\nPOISON"), 304, None,
         headers=[("If-None-Match", '"x"')], body=b""),
    Case("head_answered_with_body", raw(ok_head(b"Content-Length: 6"), b"POISON"), 200, None,
         method="HEAD", body=b""),
    # --- bytes after a complete response ---
    Case("bytes_after_response", raw(b"HTTP/1.1 200 OK\r\nCache-Control: no-store\r\n"
                                     b"Content-Length: 2\r\n\r\nok", POISON), 200, None,
         body=b"ok"),
    Case("bytes_after_response_later",
         late(b"HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: 2\r\n\r\nok",
              POISON), 200, None, settle=0.4, body=b"ok"),
    # --- the head went out before the fault: the visitor sees the body cut short ---
    Case("bad_chunk_after_the_head",
         late(ok_head(b"Transfer-Encoding: chunked") + b"2\r\nok\r\n", b"zz\r\n"), 200, None,
         complete=False),
    Case("body_shorter_than_content_length",
         late(ok_head(b"Content-Length: 100") + b"short", b""), 200, None, complete=False),
]
CASES_BY_NAME = {c.name: c for c in CASES}


def origin_handler(conn):
    """/case/NAME misbehaves as NAME says; anything else gets a clean answer. The
    connection stays open afterwards, so a Verge that reused it would read what is left."""
    while True:
        r = conn.read_request()
        if r is None:
            return
        name = r.target.split("/")[2] if r.target.startswith("/case/") else None
        if name is None:
            conn.respond(200, b"clean " + r.target.encode(), {"Cache-Control": "no-store"})
            continue
        CASES_BY_NAME[name].send(conn)
        if name == "body_shorter_than_content_length":
            return  # the close is the fault


@pytest.fixture(scope="module")
def edge(tmp_path_factory, verge_bin):
    origin = ScriptedOrigin(origin_handler)
    v = Verge(tmp_path_factory.mktemp("responses"))
    v.write_config(v.build_config(
        [zone("z1", [origin.url], cache=True, retries=0,
              timeouts={"idle": "1s", "header": "5s"}, health={"failures": 0})],
        workers=1, upstream={"max_header_size": "16KiB"}))
    v.start()
    yield v, origin
    v.kill_quietly()
    origin.stop()


def errors(v, error):
    return v.metrics().value("verge_origin_errors_total", zone="z1", error=error) if error else 0


def visit(v, case):
    """The case's request; then, on the same visitor connection if it is still open, a
    clean one: bytes of the bad response left on the connection would be read as its
    answer (response splitting)."""
    with Client(v.port) as c:
        c.send(b"%s /case/%s HTTP/1.1\r\nHost: a.test\r\n%s\r\n" % (
            case.method.encode(), case.name.encode(),
            b"".join(f"{k}: {val}\r\n".encode() for k, val in case.headers)))
        resp = c.read_response(case.method)
        time.sleep(case.settle)  # let late bytes reach the idle origin connection first
        if resp.complete and "close" not in resp.headers.joined("connection").lower():
            c.send(b"GET /next/same HTTP/1.1\r\nHost: a.test\r\n\r\n")
            same = c.read_response()
            assert same.status == 200 and same.body == b"clean /next/same", same
        return resp


def test_corpus_is_big_enough():
    assert len(CASES) >= 20 and len(CASES_BY_NAME) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_misbehaving_origin(edge, case):
    v, origin = edge
    path = f"/case/{case.name}"
    before = errors(v, case.error)
    for attempt in (1, 2):  # the second visitor proves nothing was stored
        resp = visit(v, case)
        assert resp.status == case.status, resp
        ps = resp.headers.get("proxy-status")
        if case.error:
            assert ps and ps.startswith(f"testedge; error={case.error}"), resp
            assert resp.headers.get("cache-control") == "no-store", resp
        else:
            assert ps is None, resp
            assert resp.complete == case.complete, resp
            if case.body is not None:
                assert resp.body == case.body, resp
        assert b"POISON" not in resp.body, resp
    if case.stored:
        assert resp.headers.get("x-cache") == "HIT" and resp.body == b"", resp
    fetched = sum(1 for r in origin.requests if r.target == path)
    assert fetched == (1 if case.stored else 2), f"fetched {fetched} times: stored or not?"
    if case.error:
        assert errors(v, case.error) - before == 2
    # The next visitors, on the one worker and whatever origin connection it kept.
    for i in range(2):
        nxt = v.get(f"/next/{case.name}/{i}")
        assert nxt.status == 200 and nxt.body == f"clean /next/{case.name}/{i}".encode(), nxt


def test_origin_only_ever_received_unambiguous_requests(edge):
    v, origin = edge
    assert v.get("/final").status == 200
    with origin.lock:
        conns = list(origin.conns)
    assert conns
    for c in conns:
        strict_requests(bytes(c.received))
