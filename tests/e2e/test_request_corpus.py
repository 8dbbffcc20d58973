"""A corpus of malformed and ambiguous requests (request smuggling, cache poisoning, parser
differentials). Each one is either refused (its status, the connection closed, the limit
counted in verge_client_limit_total, and NOTHING of it at the origin) or normalised (the
origin gets one request, re-serialized, that can be read one way only). Every byte the
origin ever receives goes through harness.strict_requests. Rules: docs/hardening.md."""

import time

import pytest

from harness import Client, ScriptedOrigin, Verge, strict_requests, zone

H = b"Host: a.test\r\n"


def req(line, *fields, body=b"", host=True):
    """Raw request bytes: a request line, Host (unless host=False), fields, empty line, body."""
    head = line + b"\r\n" + (H if host else b"") + b"".join(f + b"\r\n" for f in fields)
    return head + b"\r\n" + body


def post(*fields, body=b""):
    return req(b"POST /p HTTP/1.1", *fields, body=body)


TE = b"Transfer-Encoding: chunked"


class Reject:
    def __init__(self, status, limit="malformed", closes=True):
        self.status, self.limit, self.closes = status, limit, closes


class Normalise:
    """Served; check(origin_requests, responses) asserts what the origin received."""

    def __init__(self, check, responses=1, method="GET"):
        self.check, self.responses, self.method = check, responses, method


# ------------------------------------------------------------------ what the origin must see

def one(check):
    def run(reqs, resps):
        assert len(reqs) == 1, reqs
        check(reqs[0])
    return run


def line_is(expected):
    return one(lambda r: _eq(r.line, expected))


def _eq(a, b):
    assert a == b, (a, b)


def host_is(expected):
    return one(lambda r: _eq(r.values("host"), [expected]))


def body_is(expected, framing):
    def check(r):
        assert r.body == expected, r
        assert framing in r.names(), r
    return one(check)


def lacks(*names):
    def check(r):
        for n in names:
            assert n.lower() not in r.names(), (n, r)
    return one(check)


def head_has(raw):
    return one(lambda r: _eq(raw in r.head, True) or None)


def xff_is(expected):
    return one(lambda r: _eq(r.values("x-forwarded-for"), [expected]))


def upgrade_then_next(reqs, resps):
    assert [r.line for r in reqs] == [b"GET /up HTTP/1.1", b"GET /after HTTP/1.1"], reqs
    for r in reqs:
        assert "upgrade" not in r.names() and "http2-settings" not in r.names(), r
    assert [x.status for x in resps] == [200, 200]


def big_fields(n):
    return [b"X-F%d: v" % i for i in range(n)]


CORPUS = [
    # --- framing: Content-Length and Transfer-Encoding (RFC 9112 6) ---
    ("cl_and_te", post(b"Content-Length: 5", TE, body=b"0\r\n\r\n"), Reject(400)),
    ("te_and_cl", post(TE, b"Content-Length: 5", body=b"0\r\n\r\n"), Reject(400)),
    ("cl_differing", post(b"Content-Length: 5", b"Content-Length: 6", body=b"hello!"),
     Reject(400)),
    ("cl_equal_twice", post(b"Content-Length: 5", b"Content-Length: 5", body=b"hello"),
     Reject(400)),  # RFC 9110 8.6 lets a recipient reject it; Verge does
    ("cl_list", post(b"Content-Length: 5, 5", body=b"hello"), Reject(400)),
    ("cl_plus", post(b"Content-Length: +5", body=b"hello"), Reject(400)),
    ("cl_negative", post(b"Content-Length: -1"), Reject(400)),
    ("cl_hex", post(b"Content-Length: 0x5", body=b"hello"), Reject(400)),
    ("cl_overflow", post(b"Content-Length: 99999999999999999999999"), Reject(400)),
    ("cl_empty", post(b"Content-Length:"), Reject(400)),
    ("te_not_chunked", post(b"Transfer-Encoding: gzip", body=b"hello"), Reject(400)),
    ("te_chunked_not_final", post(b"Transfer-Encoding: chunked, gzip", body=b"0\r\n\r\n"),
     Reject(400)),
    ("te_other_coding_first", post(b"Transfer-Encoding: gzip, chunked", body=b"0\r\n\r\n"),
     Reject(501, "transfer_coding")),
    ("te_split_over_fields", post(b"Transfer-Encoding: gzip", TE, body=b"0\r\n\r\n"),
     Reject(501, "transfer_coding")),
    ("te_chunked_twice", post(TE, TE, body=b"0\r\n\r\n"), Reject(400)),
    ("te_identity", post(b"Transfer-Encoding: identity", body=b"0\r\n\r\n"), Reject(400)),
    ("te_with_params", post(b"Transfer-Encoding: chunked;q=1", body=b"0\r\n\r\n"), Reject(400)),
    ("te_vertical_tab", post(b"Transfer-Encoding:\x0bchunked", body=b"0\r\n\r\n"), Reject(400)),
    ("te_in_http10", req(b"POST /p HTTP/1.0", TE, body=b"3\r\nabc\r\n0\r\n\r\n"), Reject(400)),
    # --- line endings, folding, whitespace (RFC 9112 2.2, 5.1, 5.2) ---
    ("obs_fold_space", req(b"GET / HTTP/1.1", b"X-A: a", b" b"), Reject(400)),
    ("obs_fold_tab", req(b"GET / HTTP/1.1", b"X-A: a", b"\tb"), Reject(400)),
    ("fold_after_request_line", b"GET / HTTP/1.1\r\n Host: a.test\r\n\r\n", Reject(400)),
    ("bare_cr_in_value", req(b"GET / HTTP/1.1", b"X-A: a\rb"), Reject(400)),
    ("bare_lf_request_line", b"GET / HTTP/1.1\n" + H + b"\r\n", Reject(400)),
    ("bare_lf_field_line", b"GET / HTTP/1.1\r\nHost: a.test\nX-A: b\r\n\r\n", Reject(400)),
    ("bare_lf_empty_line", b"GET / HTTP/1.1\r\n" + H + b"\n", Reject(400)),
    ("space_before_colon", req(b"GET / HTTP/1.1", b"X-A : b"), Reject(400)),
    ("tab_before_colon", req(b"GET / HTTP/1.1", b"X-A\t: b"), Reject(400)),
    ("space_before_colon_cl", post(b"Content-Length : 5", body=b"hello"), Reject(400)),
    # --- characters (RFC 9110 5.1, 5.5, 9.1; RFC 9112 3) ---
    ("nul_in_value", req(b"GET / HTTP/1.1", b"X-A: a\x00b"), Reject(400)),
    ("ctl_in_value", req(b"GET / HTTP/1.1", b"X-A: a\x01b"), Reject(400)),
    ("del_in_value", req(b"GET / HTTP/1.1", b"X-A: a\x7fb"), Reject(400)),
    ("nul_in_target", req(b"GET /a\x00b HTTP/1.1"), Reject(400)),
    ("tab_in_target", req(b"GET /a\tb HTTP/1.1"), Reject(400)),
    ("non_ascii_in_target", req(b"GET /caf\xe9 HTTP/1.1"), Reject(400)),
    ("name_not_token", req(b"GET / HTTP/1.1", b"X(A): b"), Reject(400)),
    ("name_non_ascii", req(b"GET / HTTP/1.1", b"X-\xe9: b"), Reject(400)),
    ("name_empty", req(b"GET / HTTP/1.1", b": b"), Reject(400)),
    ("line_without_colon", req(b"GET / HTTP/1.1", b"NoColonHere"), Reject(400)),
    ("method_lower_case", req(b"get / HTTP/1.1"), Reject(400)),
    ("method_not_token", req(b"G(T / HTTP/1.1"), Reject(400)),
    ("method_unknown", req(b"FOO / HTTP/1.1"), Reject(400)),
    # --- the request line and version (RFC 9112 2.3, 3) ---
    ("two_spaces", req(b"GET  / HTTP/1.1"), Reject(400)),
    ("tab_separator", req(b"GET\t/ HTTP/1.1"), Reject(400)),
    ("no_version", req(b"GET /"), Reject(400)),
    ("version_lower_case", req(b"GET / http/1.1"), Reject(400)),
    ("version_2", req(b"GET / HTTP/2.0"), Reject(505, "version")),
    ("version_09", req(b"GET / HTTP/0.9"), Reject(505, "version")),
    ("h2_preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Reject(400)),
    # --- chunked bodies (RFC 9112 7.1) ---
    ("chunk_size_plus", post(TE, body=b"+5\r\nhello\r\n0\r\n\r\n"), Reject(400)),
    ("chunk_size_minus", post(TE, body=b"-5\r\nhello\r\n0\r\n\r\n"), Reject(400)),
    ("chunk_size_0x", post(TE, body=b"0x5\r\nhello\r\n0\r\n\r\n"), Reject(400)),
    ("chunk_size_overflow", post(TE, body=b"10000000000000005\r\nhello\r\n0\r\n\r\n"),
     Reject(400)),
    ("chunk_size_trailing_space", post(TE, body=b"5 \r\nhello\r\n0\r\n\r\n"), Reject(400)),
    ("chunk_size_empty", post(TE, body=b"\r\nhello\r\n0\r\n\r\n"), Reject(400)),
    ("chunk_data_without_crlf", post(TE, body=b"5\r\nhelloXX0\r\n\r\n"), Reject(400)),
    ("chunk_data_bare_lf", post(TE, body=b"5\r\nhello\n0\r\n\r\n"), Reject(400)),
    ("chunk_ext_empty", post(TE, body=b"5;\r\nhello\r\n0\r\n\r\n"), Reject(400)),
    ("chunk_ext_ctl", post(TE, body=b"5;a\x01\r\nhello\r\n0\r\n\r\n"), Reject(400)),
    ("chunk_ext_oversized", post(TE, body=b"5;a=" + b"x" * 2000 + b"\r\nhello\r\n0\r\n\r\n"),
     Reject(400)),
    # Valid per RFC 9112 7.1.1, but llhttp 8.1 refuses an extension with a value followed
    # by another one. Refusing is safe (nothing is read two ways); nobody sends these.
    ("chunk_ext_value_then_another", post(TE, body=b"3;a=1;b=2\r\nabc\r\n0\r\n\r\n"),
     Reject(400)),
    ("chunk_past_body_limit", post(TE, body=b"ffffffff\r\nhello"), Reject(413, "body_size")),
    ("chunks_grow_past_body_limit",
     post(TE, body=b"190\r\n" + b"a" * 400 + b"\r\n190\r\n" + b"b" * 400 + b"\r\n190\r\n"
          + b"c" * 400 + b"\r\n0\r\n\r\n"), Reject(413, "body_size")),
    ("content_length_past_body_limit", post(b"Content-Length: 5000"), Reject(413, "body_size")),
    # --- targets (RFC 9112 3.2, RFC 3986) ---
    ("target_without_slash", req(b"GET foo HTTP/1.1"), Reject(400)),
    ("asterisk_with_get", req(b"GET * HTTP/1.1"), Reject(400)),
    ("target_fragment", req(b"GET /a#frag HTTP/1.1"), Reject(400)),
    ("target_backslash", req(b"GET /account.php\\x.css HTTP/1.1"), Reject(400)),
    ("target_quote", req(b'GET /a"b HTTP/1.1'), Reject(400)),
    ("target_bad_percent", req(b"GET /a%zz HTTP/1.1"), Reject(400)),
    ("target_userinfo", req(b"GET http://evil@a.test/ HTTP/1.1", host=False), Reject(400)),
    ("target_other_scheme", req(b"GET ftp://a.test/ HTTP/1.1"), Reject(400)),
    ("authority_form_with_get", req(b"GET a.test:80 HTTP/1.1"), Reject(400)),
    # --- Host (RFC 9112 3.2) ---
    ("host_twice", req(b"GET / HTTP/1.1", b"Host: a.test"), Reject(400)),
    ("host_missing", req(b"GET / HTTP/1.1", host=False), Reject(400)),
    ("host_contradicts_target", req(b"GET http://b.a.test/ HTTP/1.1"), Reject(400)),
    ("host_list", req(b"GET / HTTP/1.1", b"Host: a.test, evil.test", host=False), Reject(400)),
    ("host_with_userinfo", req(b"GET / HTTP/1.1", b"Host: evil@a.test", host=False),
     Reject(400)),
    ("host_not_served", req(b"GET / HTTP/1.1", b"Host: other.example", host=False),
     Reject(421, None, closes=False)),
    ("absolute_form_not_served",
     req(b"GET http://other.example/ HTTP/1.1", b"Host: other.example", host=False),
     Reject(421, None, closes=False)),
    # --- limits (docs/configuration.md, client) ---
    ("request_line_too_long", req(b"GET /" + b"a" * 1100 + b" HTTP/1.1"),
     Reject(414, "request_line")),
    ("header_section_too_large", req(b"GET / HTTP/1.1", b"X-Big: " + b"b" * 5000),
     Reject(431, "header_size")),
    ("too_many_fields", req(b"GET / HTTP/1.1", *big_fields(25)), Reject(431, "header_fields")),
    # --- methods and expectations the edge does not carry ---
    ("connect", req(b"CONNECT a.test:443 HTTP/1.1"), Reject(405, None)),
    ("expect_other", req(b"GET / HTTP/1.1", b"Expect: something"), Reject(417, None, False)),

    # --- normalised: served, re-serialized ---
    ("host_case_dot_port", req(b"GET / HTTP/1.1", b"Host: A.Test.:80", host=False),
     Normalise(host_is(b"a.test"))),
    ("unkeyed_fields_dropped",
     req(b"GET / HTTP/1.1", b"X-Forwarded-Host: evil", b"X_Forwarded_Host: evil",
         b"X-Original-URL: /admin", b"X-Rewrite-URL: /admin", b"X-HTTP-Method-Override: PUT",
         b"X-Custom: kept"),
     Normalise(one(lambda r: _eq((r.values("x-custom"), [n for n in r.names()
                                                          if "forwarded-host" in n
                                                          or "forwarded_host" in n]),
                                 ([b"kept"], []))))),
    ("hop_fields_dropped",
     req(b"GET / HTTP/1.1", b"Connection: keep-alive, X-Secret", b"X-Secret: 1",
         b"Keep-Alive: 5", b"TE: trailers", b"Proxy-Authorization: Basic eA==",
         b"Proxy-Connection: keep-alive"),
     Normalise(lacks("x-secret", "keep-alive", "te", "proxy-authorization"))),
    ("underscore_aliases_dropped",
     req(b"GET / HTTP/1.1", b"X_Forwarded_For: 6.6.6.6", b"Content_Length: 9",
         b"Transfer_Encoding: chunked", b"X_Request_Id: spoofed", b"X_Custom: kept"),
     Normalise(one(lambda r: _eq((r.values("x-forwarded-for"), r.values("x_custom")),
                                 ([b"127.0.0.1"], [b"kept"]))))),
    ("xff_appended", req(b"GET / HTTP/1.1", b"X-Forwarded-For: 1.2.3.4"),
     Normalise(xff_is(b"1.2.3.4, 127.0.0.1"))),
    ("te_case", post(b"Transfer-Encoding: Chunked", body=b"3\r\nabc\r\n0\r\n\r\n"),
     Normalise(body_is(b"abc", "transfer-encoding"), method="POST")),
    ("te_empty_list_elements", post(b"Transfer-Encoding: , chunked", body=b"3\r\nabc\r\n0\r\n\r\n"),
     Normalise(body_is(b"abc", "transfer-encoding"), method="POST")),
    ("cl_with_ows", post(b"Content-Length:   5  ", body=b"hello"),
     Normalise(body_is(b"hello", "content-length"), method="POST")),
    ("chunk_extensions_dropped", post(TE, body=b"3;ext;q=\"a b\"\r\nabc\r\n0\r\n\r\n"),
     Normalise(body_is(b"abc", "transfer-encoding"), method="POST")),
    ("trailers_dropped", post(TE, body=b"3\r\nabc\r\n0\r\nX-Trailer: 1\r\nHost: evil\r\n\r\n"),
     Normalise(body_is(b"abc", "transfer-encoding"), method="POST")),
    ("value_trailing_ows", req(b"GET / HTTP/1.1", b"X-A: b \t "),
     Normalise(head_has(b"\r\nX-A: b\r\n"))),
    ("obs_text_value_passed", req(b"GET / HTTP/1.1", b"X-Latin: caf\xe9"),
     Normalise(head_has(b"\r\nX-Latin: caf\xe9\r\n"))),
    ("absolute_form", req(b"GET http://a.test/p?q=1 HTTP/1.1"),
     Normalise(line_is(b"GET /p?q=1 HTTP/1.1"))),
    ("absolute_form_query_only", req(b"GET http://a.test?q=1 HTTP/1.1"),
     Normalise(line_is(b"GET /?q=1 HTTP/1.1"))),
    ("absolute_form_upper_case", req(b"GET HTTP://A.TEST/x HTTP/1.1", b"Host: a.test:80",
                                     host=False),
     Normalise(one(lambda r: _eq((r.line, r.values("host")),
                                 (b"GET /x HTTP/1.1", [b"a.test"]))))),
    ("empty_lines_before_request", b"\r\n\r\n" + req(b"GET /crlf HTTP/1.1"),
     Normalise(line_is(b"GET /crlf HTTP/1.1"))),
    ("http10_becomes_http11", req(b"GET /ten HTTP/1.0"), Normalise(line_is(b"GET /ten HTTP/1.1"))),
    ("options_asterisk", req(b"OPTIONS * HTTP/1.1"), Normalise(line_is(b"OPTIONS * HTTP/1.1"),
                                                               method="OPTIONS")),
    ("expect_continue_consumed", post(b"Expect: 100-continue", b"Content-Length: 2", body=b"ok"),
     Normalise(one(lambda r: _eq(("expect" in r.names(), r.body), (False, b"ok"))),
               method="POST")),
    ("upgrade_ignored_and_parsing_continues",
     req(b"GET /up HTTP/1.1", b"Connection: Upgrade, HTTP2-Settings", b"Upgrade: h2c",
         b"HTTP2-Settings: AAMAAABkAAQAAP__") + req(b"GET /after HTTP/1.1"),
     Normalise(upgrade_then_next, responses=2)),
    ("repeated_fields_keep_order", req(b"GET / HTTP/1.1", b"X-Dup: 1", b"X-Dup: 2"),
     Normalise(one(lambda r: _eq(r.values("x-dup"), [b"1", b"2"])))),
    ("browser_query_characters", req(b"GET /s?q={%22a%22:1}|^` HTTP/1.1"),
     Normalise(line_is(b"GET /s?q={%22a%22:1}|^` HTTP/1.1"))),
]


@pytest.fixture(scope="module")
def edge(tmp_path_factory, verge_bin):
    origin = ScriptedOrigin()  # keep-alive, answers every request 200 "ok"
    v = Verge(tmp_path_factory.mktemp("corpus"))
    v.write_config(v.build_config(
        [zone("z1", [origin.url], hosts=["a.test", "*.a.test"], origin_host="visitor",
              max_request_body="1000")],
        workers=1,  # one loop: a refused request would reach the origin before the sentinel
        client={"max_request_line": "1KiB", "max_header_fields": 20,
                "max_header_size": "4KiB"}))
    v.start()
    yield v, origin
    v.kill_quietly()
    origin.stop()


def marks(origin):
    with origin.lock:
        return {c.index: len(c.received) for c in origin.conns}


def received_since(origin, mark):
    """Every request the origin got since mark, strictly parsed, connection by connection."""
    with origin.lock:
        conns = list(origin.conns)
    out = []
    for c in conns:
        out += strict_requests(bytes(c.received[mark.get(c.index, 0):]))
    return out


def limits(v):
    m = v.metrics()
    return {k: m.value("verge_client_limit_total", limit=k)
            for k in ("malformed", "transfer_coding", "version", "request_line", "header_size",
                      "header_fields", "body_size")}


def test_corpus_is_big_enough():
    assert len([c for c in CORPUS if isinstance(c[2], Reject)]) >= 40
    assert len(CORPUS) >= 60
    assert len({c[0] for c in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("name,raw,expect", CORPUS, ids=[c[0] for c in CORPUS])
def test_request(edge, name, raw, expect):
    v, origin = edge
    mark, before, nreq = marks(origin), limits(v), len(origin.requests)
    with Client(v.port) as c:
        c.send(raw)
        if isinstance(expect, Reject):
            resp = c.read_response("GET")
            assert resp.status == expect.status, resp
            assert resp.headers.get("cache-control") == "no-store", resp
            if expect.closes:
                assert "close" in resp.headers.joined("connection").lower(), resp
                assert c.peer_closed(), "the connection stayed open after a refusal"
        else:
            resps = [c.read_response(expect.method) for _ in range(expect.responses)]
            assert all(r.status == 200 for r in resps), resps
    if isinstance(expect, Reject):
        # A sentinel after the refusal: once it is in, anything of the refused request
        # would be too (one worker, so the refused request was dealt with first).
        sentinel = f"/sentinel/{name}"
        assert v.get(sentinel).status == 200
        origin.wait_requests(nreq + 1)
        time.sleep(0.05)
        got = received_since(origin, mark)
        assert [r.line for r in got] == [f"GET {sentinel} HTTP/1.1".encode()], got
        after = limits(v)
        for k in after:
            assert after[k] - before[k] == (1 if k == expect.limit else 0), (k, before, after)
    else:
        origin.wait_requests(nreq + expect.responses)
        time.sleep(0.05)
        expect.check(received_since(origin, mark), resps)
        assert limits(v) == before
