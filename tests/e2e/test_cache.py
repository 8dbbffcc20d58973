"""The shared cache (zones with cache: true), proven the HAProxy way: the origin answers
once while visitors ask many times. Freshness, what is never stored, Vary, HEAD from a
stored GET, and stale content instead of an error when the origin fails."""

import time

from harness import free_port, zone


def origin_answering(scripted_origin, headers, body=b"cached body\n", status=200):
    """An origin answering every request with these headers; counts requests."""
    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            conn.respond(status, body, headers)
    return scripted_origin(handler)


def cached_edge(verge, origin, **extra):
    return verge([zone("z1", [origin.url], cache=True, **extra)])


def test_origin_answers_once_while_visitors_ask_four_times(verge, scripted_origin):
    origin = origin_answering(scripted_origin, {"Cache-Control": "max-age=60"})
    v = cached_edge(verge, origin)
    first = v.get("/a")
    assert first.status == 200 and first.headers.get("x-cache") == "MISS"
    assert first.headers.get("cache-status") == "testedge; fwd=uri-miss; fwd-status=200; stored"
    for _ in range(3):
        resp = v.get("/a")
        assert resp.status == 200 and resp.body == b"cached body\n"
        assert resp.headers.get("x-cache") == "HIT"
        assert resp.headers.get("cache-status").startswith("testedge; hit; ttl=")
        assert resp.headers.get("age") is not None
        assert resp.headers.get("content-length") == str(len(b"cached body\n"))
    assert len(origin.requests) == 1
    assert "cache=HIT" in v.access_line_for(resp.headers.get("x-request-id"))
    m = v.metrics()
    assert m.value("verge_cache_requests_total", zone="z1", result="HIT") == 3
    assert m.value("verge_cache_requests_total", zone="z1", result="MISS") == 1
    assert m.value("verge_cache_objects") == 1
    assert m.value("verge_cache_bytes") > len(b"cached body\n")


def test_hits_within_a_second_keep_their_own_ids_and_their_zone_fields(verge, scripted_origin):
    # A hit's Content-Length, Age and Cache-Status are formatted once a second per worker
    # and copied after that: hits in the same second must still differ where they should.
    # Two zones with same-sized bodies, one adding Via; ids of the visitor's own and new.
    origin = origin_answering(scripted_origin, {"Cache-Control": "max-age=60"})
    v = verge([zone("via", [origin.url], hosts=("a.test",), cache=True),
               zone("novia", [origin.url], hosts=("b.test",), cache=True,
                    forwarded={"via": False})])
    for host in ("a.test", "b.test"):
        assert v.get("/same", host=host).headers.get("x-cache") == "MISS"
    seen = set()
    for i in range(6):
        host = ("a.test", "b.test")[i % 2]
        own = "visitor-id-%d%s" % (i, "x" * i)  # ids of every length
        resp = v.get("/same", host=host, headers=[("X-Request-Id", own)] if i % 3 else [])
        assert resp.status == 200 and resp.headers.get("x-cache") == "HIT"
        rid = resp.headers.get("x-request-id")
        assert rid == own if i % 3 else len(rid) == 32
        assert rid not in seen
        seen.add(rid)
        assert ("via" in resp.headers) == (host == "a.test")
        assert resp.headers.get("content-length") == str(len(b"cached body\n"))
        assert resp.headers.get("cache-status").startswith("testedge; hit; ttl=")
        assert resp.body == b"cached body\n"
    time.sleep(1.1)  # the next second: Age and ttl move on
    later = v.get("/same", host="a.test")
    ttl = int(later.headers.get("cache-status").split("ttl=")[1])
    assert int(later.headers.get("age")) >= 1 and ttl <= 59
    assert ttl + int(later.headers.get("age")) in (59, 60)


def test_query_is_part_of_the_key(verge, scripted_origin):
    origin = origin_answering(scripted_origin, {"Cache-Control": "max-age=60"})
    v = cached_edge(verge, origin)
    for q in ("/p?x=1", "/p?x=2", "/p?x=1"):
        assert v.get(q).status == 200
    assert len(origin.requests) == 2


def test_never_stored_no_store_private_set_cookie(verge, scripted_origin):
    for headers in ({"Cache-Control": "no-store"}, {"Cache-Control": "private, max-age=60"},
                    {"Cache-Control": "max-age=60", "Set-Cookie": "id=1"}):
        origin = origin_answering(scripted_origin, headers)
        v = cached_edge(verge, origin)
        for _ in range(3):
            resp = v.get("/n")
            assert resp.status == 200 and resp.headers.get("x-cache") == "MISS"
        assert len(origin.requests) == 3, headers
        v.stop()


def test_expired_object_is_fetched_again(verge, scripted_origin):
    # max-age=2: ages are whole seconds, so with max-age=1 a hit right after the miss
    # fails whenever the two fall on either side of a second boundary
    origin = origin_answering(scripted_origin, {"Cache-Control": "max-age=2"})
    v = cached_edge(verge, origin)
    assert v.get("/e").headers.get("x-cache") == "MISS"
    assert v.get("/e").headers.get("x-cache") == "HIT"
    time.sleep(2.2)
    resp = v.get("/e")
    assert resp.headers.get("x-cache") == "EXPIRED"
    assert resp.headers.get("cache-status").startswith("testedge; fwd=stale;")
    assert len(origin.requests) == 2


def test_request_no_cache_goes_to_the_origin(verge, scripted_origin):
    origin = origin_answering(scripted_origin, {"Cache-Control": "max-age=60"})
    v = cached_edge(verge, origin)
    v.get("/r")
    resp = v.get("/r", headers=[("Cache-Control", "no-cache")])
    assert resp.headers.get("x-cache") == "EXPIRED"
    assert len(origin.requests) == 2


def test_vary_keeps_one_variant_per_request_value(verge, scripted_origin):
    origin = origin_answering(scripted_origin, {"Cache-Control": "max-age=60",
                                                "Vary": "Accept-Encoding"})
    v = cached_edge(verge, origin)
    for enc in ("gzip", "identity", "gzip", "identity", "GZIP"):
        assert v.get("/v", headers=[("Accept-Encoding", enc)]).status == 200
    assert len(origin.requests) == 2  # gzip and identity; "GZIP" is gzip normalised


def test_head_is_answered_from_a_stored_get(verge, scripted_origin):
    origin = origin_answering(scripted_origin, {"Cache-Control": "max-age=60"})
    v = cached_edge(verge, origin)
    v.get("/h")
    resp = v.request("HEAD", "/h")
    assert resp.status == 200 and resp.body == b""
    assert resp.headers.get("x-cache") == "HIT"
    assert resp.headers.get("content-length") == str(len(b"cached body\n"))
    assert len(origin.requests) == 1


def test_object_above_max_object_streams_through_uncached(verge, scripted_origin):
    big = b"x" * 200_000
    origin = origin_answering(scripted_origin, {"Cache-Control": "max-age=60"}, body=big)
    v = verge([zone("z1", [origin.url], cache=True)], cache={"max_object": "100KiB"})
    for _ in range(2):
        resp = v.get("/big")
        assert resp.status == 200 and resp.body == big
    assert len(origin.requests) == 2


def test_stale_copy_instead_of_an_error_when_the_origin_is_down(verge, scripted_origin):
    origin = origin_answering(scripted_origin, {"Cache-Control": "max-age=1, stale-if-error=60"})
    v = cached_edge(verge, origin)
    assert v.get("/s").status == 200
    origin.stop()
    time.sleep(1.2)
    resp = v.get("/s", headers=[("Connection", "close")])
    assert resp.status == 200 and resp.body == b"cached body\n"
    assert resp.headers.get("x-cache") == "STALE"
    assert resp.headers.get("cache-status").endswith("detail=stale-if-error")
    assert resp.headers.get("proxy-status").startswith("testedge; error=connection_")
    # the failure is still logged and counted
    m = v.metrics()
    assert m.sum("verge_origin_errors_total", zone="z1") >= 1
    assert "cache=STALE" in v.access_line_for(resp.headers.get("x-request-id"))


def test_zone_stale_if_error_applies_when_the_origin_says_nothing(verge, scripted_origin):
    origin = origin_answering(scripted_origin, {"Cache-Control": "max-age=1"})
    v = cached_edge(verge, origin, stale_if_error="1h")
    assert v.get("/z").status == 200
    origin.stop()
    time.sleep(1.2)
    assert v.get("/z").headers.get("x-cache") == "STALE"


def test_must_revalidate_forbids_stale_on_error(verge, scripted_origin):
    origin = origin_answering(scripted_origin,
                              {"Cache-Control": "max-age=1, must-revalidate, stale-if-error=60"})
    v = cached_edge(verge, origin)
    assert v.get("/m").status == 200
    origin.stop()
    time.sleep(1.2)
    resp = v.get("/m")
    assert resp.status == 502 and "proxy-status" in resp.headers


def test_cache_off_by_default(verge, scripted_origin):
    origin = origin_answering(scripted_origin, {"Cache-Control": "max-age=60"})
    v = verge([zone("z1", [origin.url])])
    for _ in range(2):
        resp = v.get("/o")
        assert "x-cache" not in resp.headers
    assert len(origin.requests) == 2


def test_stale_copy_when_the_origin_name_stops_resolving(verge, scripted_origin, dns_server):
    origin = origin_answering(scripted_origin, {"Cache-Control": "max-age=1"})
    port = origin.url.rsplit(":", 1)[1]
    dns_server.set_a("origin.test", ["127.0.0.1"], ttl=1)
    v = verge([zone("z1", [f"http://origin.test:{port}"], cache=True, stale_if_error="1h")],
              resolver={"servers": [dns_server.address], "min_ttl": "1s"})
    assert v.get("/d").headers.get("x-cache") == "MISS"
    dns_server.set_rcode("origin.test", "NXDOMAIN", soa_minimum=60)
    time.sleep(1.3)
    resp = v.get("/d")
    assert resp.status == 200 and resp.body == b"cached body\n"
    assert resp.headers.get("x-cache") == "STALE"
    assert resp.headers.get("cache-status").endswith("; detail=stale-if-error")
    assert resp.headers.get("proxy-status").startswith("testedge; error=dns_error")
    assert "rcode=NXDOMAIN" in resp.headers.get("proxy-status")
    assert v.metrics().value("verge_origin_errors_total", zone="z1", error="dns_error") >= 1


def test_visitor_conditional_request_gets_304_from_the_cache(verge, scripted_origin):
    origin = origin_answering(scripted_origin, {"Cache-Control": "max-age=60", "ETag": '"v1"',
                                                "Last-Modified": "Sun, 06 Nov 1994 08:49:37 GMT"})
    v = cached_edge(verge, origin)
    v.get("/c")
    resp = v.get("/c", headers=[("If-None-Match", '"v1"')])
    assert resp.status == 304 and resp.body == b""
    assert resp.headers.get("etag") == '"v1"' and resp.headers.get("x-cache") == "HIT"
    assert v.get("/c", headers=[("If-None-Match", '"v0"')]).status == 200
    resp = v.get("/c", headers=[("If-Modified-Since", "Mon, 07 Nov 1994 08:49:37 GMT")])
    assert resp.status == 304
    assert len(origin.requests) == 1


def test_expired_object_is_revalidated_and_its_body_reused(verge, scripted_origin):
    seen = []

    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            seen.append(req.headers.get("if-none-match"))
            if req.headers.get("if-none-match") == '"v1"':
                conn.respond(304, b"", {"Cache-Control": "max-age=60", "ETag": '"v1"'})
            else:
                conn.respond(200, b"first body\n", {"Cache-Control": "max-age=1", "ETag": '"v1"'})
    origin = scripted_origin(handler)
    v = cached_edge(verge, origin)
    assert v.get("/rv").headers.get("x-cache") == "MISS"
    time.sleep(1.2)
    resp = v.get("/rv")
    assert resp.status == 200 and resp.body == b"first body\n"
    assert resp.headers.get("x-cache") == "REVALIDATED"
    assert seen == [None, '"v1"']
    again = v.get("/rv")
    assert again.headers.get("x-cache") == "HIT"  # the 304's max-age=60 now applies
    assert len(seen) == 2


def test_ranges_are_served_from_a_stored_object(verge, scripted_origin):
    body = bytes(range(256)) * 4  # 1024 bytes
    origin = origin_answering(scripted_origin, {"Cache-Control": "max-age=60", "ETag": '"r1"'},
                              body=body)
    v = cached_edge(verge, origin)
    v.get("/r")
    resp = v.get("/r", headers=[("Range", "bytes=10-19")])
    assert resp.status == 206 and resp.body == body[10:20]
    assert resp.headers.get("content-range") == "bytes 10-19/1024"
    assert v.get("/r", headers=[("Range", "bytes=1000-")]).body == body[1000:]
    assert v.get("/r", headers=[("Range", "bytes=-4")]).body == body[-4:]
    resp = v.get("/r", headers=[("Range", "bytes=5000-")])
    assert resp.status == 416 and resp.headers.get("content-range") == "bytes */1024"
    # If-Range with another validator: the whole object
    resp = v.get("/r", headers=[("Range", "bytes=0-0"), ("If-Range", '"old"')])
    assert resp.status == 200 and resp.body == body
    assert v.get("/r", headers=[("Range", "bytes=0-0"), ("If-Range", '"r1"')]).status == 206
    assert len(origin.requests) == 1


def test_origin_503_is_covered_by_stale_if_error(verge, scripted_origin):
    answers = []

    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            if not answers:
                answers.append(200)
                conn.respond(200, b"good copy\n", {"Cache-Control": "max-age=1, stale-if-error=60"})
            else:
                answers.append(503)
                conn.respond(503, b"overloaded\n", {"Cache-Control": "no-store"})
    origin = scripted_origin(handler)
    v = cached_edge(verge, origin)
    assert v.get("/5").body == b"good copy\n"
    time.sleep(1.2)
    resp = v.get("/5")
    assert resp.status == 200 and resp.body == b"good copy\n"
    assert resp.headers.get("x-cache") == "STALE"
    assert answers == [200, 503]
    v.wait_error_log(r"answered 503 .*serving the stored copy \(stale-if-error\)")


def test_stale_while_revalidate_answers_at_once_and_refreshes_behind(verge, scripted_origin):
    bodies = [b"version 1\n", b"version 2\n"]
    sent = []

    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            body = bodies[min(len(sent), 1)]
            sent.append(body)
            conn.respond(200, body, {"Cache-Control": "max-age=2, stale-while-revalidate=60"})
    origin = scripted_origin(handler)
    v = cached_edge(verge, origin)
    assert v.get("/w").body == b"version 1\n"
    time.sleep(2.2)  # max-age=2: the refreshed copy stays fresh while the test looks
    resp = v.get("/w")
    assert resp.body == b"version 1\n" and resp.headers.get("x-cache") == "UPDATING"
    assert resp.headers.get("cache-status").endswith("detail=stale-while-revalidate")
    from harness import wait_until
    wait_until(lambda: len(sent) == 2, what="background refresh")
    resp = wait_until(lambda: (lambda r: r if r.headers.get("x-cache") == "HIT" else None)(
        v.get("/w")), what="refreshed object")
    assert resp.body == b"version 2\n"
    assert len(sent) == 2


def test_concurrent_misses_make_one_origin_request(verge, scripted_origin):
    import threading

    def slow(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            conn.sleep(0.5)
            conn.respond(200, b"slow body\n", {"Cache-Control": "max-age=60"})
    origin = scripted_origin(slow)
    v = verge([zone("z1", [origin.url], cache=True)], workers=1)  # collapsing is per worker
    results = []

    def fetch():
        results.append(v.get("/slow"))
    threads = [threading.Thread(target=fetch) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert [r.status for r in results] == [200] * 5
    assert all(r.body == b"slow body\n" for r in results)
    assert len(origin.requests) == 1
    assert sorted(r.headers.get("x-cache") for r in results) == ["HIT"] * 4 + ["MISS"]
