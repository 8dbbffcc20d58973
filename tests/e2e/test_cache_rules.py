"""Cache rules end to end, proven the HAProxy way (the origin answers once while visitors
ask many times) and with the counters: several ranges as multipart/byteranges, a range
on a miss fetching the whole object, cache key options, BYPASS, negative caching, zero
5xx while the origin is down under load, and stored bodies sent without copies."""

import os
import re
import threading
import time

from harness import Client, build_request, http, proc_io, wait_until, zone
from test_cache import cached_edge, origin_answering
from test_purge import edge as purgeable_edge, purge

BODY = bytes(range(256)) * 4  # 1024 bytes


def recording_origin(scripted_origin, headers, body=BODY, status=200):
    """Answers every request alike; .requests keeps what it was asked."""
    return origin_answering(scripted_origin, headers, body=body, status=status)


def parts_of(resp):
    """The parts of a multipart/byteranges body: [(headers dict, bytes)]."""
    ctype = resp.headers.get("content-type")
    m = re.fullmatch(r"multipart/byteranges; boundary=(\S+)", ctype)
    assert m, ctype
    delim = b"--" + m.group(1).encode()
    body = resp.body
    assert body.startswith(delim + b"\r\n") and body.endswith(b"\r\n" + delim + b"--\r\n")
    parts = []
    for chunk in body[:-len(b"\r\n" + delim + b"--\r\n")].split(b"\r\n" + delim + b"\r\n"):
        chunk = chunk[len(delim) + 2:] if chunk.startswith(delim) else chunk
        head, _, data = chunk.partition(b"\r\n\r\n")
        fields = dict(l.split(": ", 1) for l in head.decode().split("\r\n"))
        parts.append((fields, data))
    return parts


# ---------------------------------------------------------------- ranges

def memfds(pid):
    """The memfds verge holds for large bodies of known length (blocks of shared slabs)."""
    names = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            names.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return [n for n in names if n.startswith("/memfd:verge-bodies")]


def test_a_large_body_goes_out_of_its_memfd_whole_in_ranges_and_pipelined(verge, scripted_origin):
    """A 300 KiB body is held in a memfd and sent from it, after the head: every
    byte right for a hit, a range, several ranges, HEAD and two pipelined requests."""
    body = bytes(range(256)) * 1200
    origin = recording_origin(scripted_origin, {"Cache-Control": "max-age=60"}, body=body)
    v = cached_edge(verge, origin)
    assert v.get("/large").body == body
    resp = v.get("/large")
    assert resp.headers.get("x-cache") == "HIT" and resp.body == body
    assert len(memfds(v.pid)) == 1
    resp = v.get("/large", headers=[("Range", "bytes=100000-200009")])
    assert resp.status == 206 and resp.body == body[100000:200010]
    resp = v.get("/large", headers=[("Range", "bytes=0-9, 300000-300009, -5")])
    assert resp.status == 206
    assert [data for _, data in parts_of(resp)] == [body[:10], body[300000:300010], body[-5:]]
    resp = http(v.port, "HEAD", "/large")
    assert resp.status == 200 and resp.body == b""
    assert resp.headers.get("content-length") == str(len(body))
    with Client(v.port) as c:
        c.send(build_request("GET", "/large", "a.test", (), None, "HTTP/1.1") * 2)
        for _ in range(2):
            resp = c.read_response()
            assert resp.status == 200 and resp.body == body
    assert len(origin.requests) == 1


def test_cache_sendfile_max_picks_sendfile_for_smaller_memfd_bodies_and_writev_for_larger(
        verge, scripted_origin):
    """Bodies in a memfd up to cache.sendfile_max (128 KiB unless set) go out with
    sendfile, larger ones are copied from the memfd's mapping with writev; every answer
    has the body's bytes either way, also a range and two pipelined answers."""
    sizes = {"/small": 100 * 1024, "/large": 300 * 1024}

    def sent_by_file(v, path):
        """Whether three hits of path had their bodies sent with sendfile."""
        body = body_for(path, sizes[path])
        assert v.get(path).body == body
        wait_until(lambda: v.get(path).headers.get("x-cache") == "HIT", what="stored")
        before = proc_io(v.pid, "rchar")
        with Client(v.port) as c:
            c.send(build_request("GET", path, "a.test", (), None, "HTTP/1.1") * 2)
            for _ in range(2):
                resp = c.read_response()
                assert resp.headers.get("x-cache") == "HIT" and resp.body == body
        resp = v.get(path, headers=[("Range", "bytes=1000-70999")])
        assert resp.status == 206 and resp.body == body[1000:71000]
        read = proc_io(v.pid, "rchar") - before
        assert read < 16 * 1024 or read >= 2 * len(body) + 70000, read
        return read >= 2 * len(body)

    origin = sized_origin(scripted_origin, sizes)
    v = cached_edge(verge, origin)
    assert sent_by_file(v, "/small") and not sent_by_file(v, "/large")
    assert len(memfds(v.pid)) == 2
    v = verge([zone("z1", [origin.url], cache=True)], cache={"sendfile_max": "1MiB"})
    assert sent_by_file(v, "/small") and sent_by_file(v, "/large")
    v = verge([zone("z1", [origin.url], cache=True)], cache={"sendfile_max": 0})
    assert not sent_by_file(v, "/small") and not sent_by_file(v, "/large")


def test_a_miss_writes_its_head_and_body_in_one_write_as_a_pass_does(verge, scripted_origin):
    """When the origin's head and body come in one read, the visitor of a miss that is
    stored gets both in one write, as a pass-through answer does: a miss costs no more
    writes than a pass (until now its head went out alone, then the body: one more write
    per request). The counts are per process, so a rare write of another kind (a wake-up
    between workers, a log line) may land in either loop; only a whole extra write per
    request is a failure."""
    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            cc = "no-store" if req.target.startswith("/pass") else "max-age=600"
            conn.respond(200, BODY, {"Cache-Control": cc})

    v = cached_edge(verge, scripted_origin(handler))

    def writes_per_request(path, n=40):
        with Client(v.port) as c:
            c.send(build_request("GET", f"{path}?warm", "a.test", (), None, "HTTP/1.1"))
            assert c.read_response().body == BODY
            before = proc_io(v.pid, "syscw")
            for i in range(n):
                c.send(build_request("GET", f"{path}?{i}", "a.test", (), None, "HTTP/1.1"))
                resp = c.read_response()
                assert resp.status == 200 and resp.body == BODY
            return (proc_io(v.pid, "syscw") - before) / n, resp.headers.get("x-cache")

    passes, result = writes_per_request("/pass")
    assert result == "MISS"  # no-store: fetched every time, never stored
    misses, result = writes_per_request("/miss")
    assert result == "MISS" and v.get("/miss?3").headers.get("x-cache") == "HIT"
    assert misses < passes + 0.5, (misses, passes)


def body_for(path, size):
    """A body of size bytes that no other path's is like."""
    seed = path.encode() + b"|"
    return (seed * (size // len(seed) + 1))[:size]


def sized_origin(scripted_origin, sizes):
    """An origin answering each path of sizes with body_for(path, its size), cacheable."""
    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            path = req.target.split("?")[0]
            conn.respond(200, body_for(path, sizes[path]), {"Cache-Control": "max-age=600"})
    return scripted_origin(handler)


def test_large_bodies_share_a_memfd_per_block_size_and_each_answer_has_its_own_bytes(
        verge, scripted_origin, tmp_path):
    """Ten 100 KiB bodies (128 KiB blocks) and three of 300 KiB (512 KiB blocks) take one
    memfd per block size, not one each; every answer, whole or a range of one body, has
    that body's bytes, also after a purge freed a block and another body was stored."""
    sizes = {f"/b{i}": 100 * 1024 + i for i in range(10)}
    sizes.update({f"/c{i}": 300 * 1024 + i for i in range(3)})
    sizes["/d"] = 100 * 1024 + 77
    origin = sized_origin(scripted_origin, sizes)
    v = purgeable_edge(verge, tmp_path, origin)
    paths = [p for p in sizes if p != "/d"]
    for p in paths:
        assert v.get(p).body == body_for(p, sizes[p])
    assert len(memfds(v.pid)) == 2
    m = v.metrics()
    assert m.value("verge_cache_body_files") == 2 and m.value("verge_cache_body_blocks") == 13
    for p in paths:
        resp = v.get(p)
        assert resp.headers.get("x-cache") == "HIT" and resp.body == body_for(p, sizes[p]), p
    resp = v.get("/b7", headers=[("Range", "bytes=50000-50099")])
    assert resp.status == 206 and resp.body == body_for("/b7", sizes["/b7"])[50000:50100]
    assert purge(v, "zone=z1&path=/b3").status == 200
    assert v.get("/d").body == body_for("/d", sizes["/d"])
    for p in paths + ["/d"]:
        if p != "/b3":
            resp = v.get(p)
            assert resp.headers.get("x-cache") == "HIT" and resp.body == body_for(p, sizes[p]), p
    assert len(memfds(v.pid)) == 2
    assert v.metrics().value("verge_cache_body_blocks") == 13  # one purged, one stored
    assert len(origin.requests) == len(sizes)


def test_several_ranges_are_answered_as_multipart_byteranges(verge, scripted_origin):
    origin = recording_origin(scripted_origin, {"Cache-Control": "max-age=60",
                                                "Content-Type": "application/x-test"})
    v = cached_edge(verge, origin)
    v.get("/m")
    resp = v.get("/m", headers=[("Range", "bytes=0-9, 500-509, -4")])
    assert resp.status == 206 and resp.headers.get("x-cache") == "HIT"
    assert "content-range" not in resp.headers
    assert int(resp.headers.get("content-length")) == len(resp.body)
    parts = parts_of(resp)
    assert [p[1] for p in parts] == [BODY[0:10], BODY[500:510], BODY[-4:]]
    assert [p[0]["Content-Range"] for p in parts] == ["bytes 0-9/1024", "bytes 500-509/1024",
                                                      "bytes 1020-1023/1024"]
    assert all(p[0]["Content-Type"] == "application/x-test" for p in parts)
    # overlapping ranges are merged: one part, a plain 206
    merged = v.get("/m", headers=[("Range", "bytes=0-99, 50-149")])
    assert merged.status == 206 and merged.body == BODY[0:150]
    assert merged.headers.get("content-range") == "bytes 0-149/1024"
    assert v.get("/m", headers=[("Range", "bytes=2000-3000, 4000-")]).status == 416
    assert len(origin.requests) == 1


def test_a_range_on_a_miss_fetches_and_stores_the_whole_object(verge, scripted_origin):
    origin = recording_origin(scripted_origin, {"Cache-Control": "max-age=60", "ETag": '"e1"'})
    v = cached_edge(verge, origin)
    resp = v.get("/whole", headers=[("Range", "bytes=10-19"), ("If-Range", '"e1"')])
    assert resp.status == 206 and resp.body == BODY[10:20]
    assert resp.headers.get("x-cache") == "MISS"
    asked = origin.requests[0].headers
    assert "range" not in asked and "if-range" not in asked
    full = v.get("/whole")
    assert full.status == 200 and full.body == BODY and full.headers.get("x-cache") == "HIT"
    assert len(origin.requests) == 1


def test_a_conditional_miss_is_answered_by_the_edge_from_the_whole_object(verge,
                                                                          scripted_origin):
    origin = recording_origin(scripted_origin, {"Cache-Control": "max-age=60", "ETag": '"c1"'})
    v = cached_edge(verge, origin)
    resp = v.get("/cond", headers=[("If-None-Match", '"c1"')])
    assert resp.status == 304 and resp.body == b""
    assert "if-none-match" not in origin.requests[0].headers
    assert v.get("/cond").body == BODY
    assert len(origin.requests) == 1


# ---------------------------------------------------------------- the key

def test_cache_key_query_sort_makes_one_object_of_any_parameter_order(verge, scripted_origin):
    origin = recording_origin(scripted_origin, {"Cache-Control": "max-age=60"})
    v = cached_edge(verge, origin, cache_key={"query": "sort"})
    assert v.get("/s?b=1&a=2").headers.get("x-cache") == "MISS"
    assert v.get("/s?a=2&b=1").headers.get("x-cache") == "HIT"
    assert v.get("/s?a=2&b=1&").headers.get("x-cache") == "HIT"
    assert v.get("/s?a=3&b=1").headers.get("x-cache") == "MISS"
    assert [r.target for r in origin.requests] == ["/s?b=1&a=2", "/s?a=3&b=1"]  # as sent


def test_cache_key_query_ignore_and_keep(verge, scripted_origin):
    origin = recording_origin(scripted_origin, {"Cache-Control": "max-age=60"})
    v = verge([zone("ign", [origin.url], hosts=["i.test"], cache=True,
                    cache_key={"query": "ignore"}),
               zone("keep", [origin.url], hosts=["k.test"], cache=True)])
    assert v.get("/q?x=1", host="i.test").headers.get("x-cache") == "MISS"
    assert v.get("/q?y=2", host="i.test").headers.get("x-cache") == "HIT"
    assert v.get("/q", host="i.test").headers.get("x-cache") == "HIT"
    assert v.get("/q?x=1", host="k.test").headers.get("x-cache") == "MISS"
    assert v.get("/q?y=2", host="k.test").headers.get("x-cache") == "MISS"
    assert len(origin.requests) == 3


# ---------------------------------------------------------------- bypass

def test_requests_the_cache_may_not_answer_are_bypass(verge, scripted_origin):
    origin = recording_origin(scripted_origin, {"Cache-Control": "max-age=60"})
    v = cached_edge(verge, origin)
    post = v.request("POST", "/b", body=b"data")
    assert post.headers.get("x-cache") == "BYPASS"
    assert post.headers.get("cache-status") == "testedge; fwd=bypass; fwd-status=200"
    nostore = v.get("/b", headers=[("Cache-Control", "no-store")])
    assert nostore.headers.get("x-cache") == "BYPASS"
    assert "cache=BYPASS" in v.access_line_for(nostore.headers.get("x-request-id"))
    assert v.get("/b").headers.get("x-cache") == "MISS"  # the no-store answer was not kept
    assert v.get("/b").headers.get("x-cache") == "HIT"
    m = v.metrics()
    assert m.value("verge_cache_requests_total", zone="z1", result="BYPASS") == 2
    assert m.value("verge_cache_requests_total", zone="z1", result="MISS") == 1
    assert m.value("verge_cache_requests_total", zone="z1", result="HIT") == 1
    assert len(origin.requests) == 3


# ---------------------------------------------------------------- negative caching

def test_404_and_410_are_stored_per_their_headers(verge, scripted_origin):
    for status, headers in ((404, {"Cache-Control": "max-age=60"}),
                            (410, {"Last-Modified": "Sun, 06 Nov 1994 08:49:37 GMT",
                                   "Date": time.strftime("%a, %d %b %Y %H:%M:%S GMT",
                                                         time.gmtime())})):
        origin = recording_origin(scripted_origin, headers, body=b"not here\n", status=status)
        v = cached_edge(verge, origin)
        words = [v.get("/missing").headers.get("x-cache") for _ in range(4)]
        assert words == ["MISS", "HIT", "HIT", "HIT"], status
        resp = v.get("/missing")
        assert resp.status == status and resp.body == b"not here\n"
        assert len(origin.requests) == 1
        m = v.metrics()
        assert m.value("verge_requests_total", zone="z1", status=str(status)) == 5
        v.stop()


def test_a_404_without_freshness_and_5xx_without_a_lifetime_are_not_stored(verge,
                                                                            scripted_origin):
    for status, headers in ((404, {}), (503, {}),
                            (500, {"Cache-Control": "public",
                                   "Last-Modified": "Sun, 06 Nov 1994 08:49:37 GMT"})):
        origin = recording_origin(scripted_origin, headers, body=b"err\n", status=status)
        v = cached_edge(verge, origin)
        for _ in range(3):
            resp = v.get("/e")
            assert resp.status == status and resp.headers.get("x-cache") == "MISS"
        assert len(origin.requests) == 3, status
        v.stop()


def test_a_5xx_with_an_explicit_lifetime_is_stored(verge, scripted_origin):
    origin = recording_origin(scripted_origin, {"Cache-Control": "max-age=30"}, body=b"busy\n",
                              status=503)
    v = cached_edge(verge, origin)
    assert v.get("/busy").headers.get("x-cache") == "MISS"
    resp = v.get("/busy")
    assert resp.status == 503 and resp.headers.get("x-cache") == "HIT"
    assert len(origin.requests) == 1


# ---------------------------------------------------------------- the origin down

def test_origin_down_under_load_gives_zero_5xx_for_stale_allowed_urls(verge, scripted_origin):
    origin = recording_origin(scripted_origin, {"Cache-Control": "max-age=1, stale-if-error=300"})
    v = cached_edge(verge, origin)
    urls = [f"/item/{i}" for i in range(10)]
    for u in urls:
        assert v.get(u).status == 200
    origin.stop()
    time.sleep(1.2)  # every copy is now expired
    results, lock = [], threading.Lock()

    def load(k):
        with Client(v.port) as c:  # keep-alive: 25 requests on one connection
            for j in range(25):
                r = c.request("GET", urls[(k + j) % len(urls)])
                with lock:
                    results.append(r)
    threads = [threading.Thread(target=load, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 100
    assert [r.status for r in results] == [200] * 100
    assert all(r.body == BODY for r in results)
    assert all(r.headers.get("x-cache") == "STALE" for r in results)
    assert all(r.headers.get("cache-status").endswith("detail=stale-if-error") for r in results)
    causes = {r.headers.get("proxy-status").split(";")[1].strip() for r in results}
    assert causes <= {"error=connection_refused", "error=destination_unavailable"}, causes
    m = v.metrics()
    assert m.sum("verge_requests_total", zone="z1") == 110
    assert sum(v for (n, lab), v in m.items()
               if n == "verge_requests_total" and dict(lab).get("status", "").startswith("5")) == 0
    assert m.value("verge_cache_requests_total", zone="z1", result="STALE") == 100
    assert m.sum("verge_origin_errors_total", zone="z1") >= 1


# ---------------------------------------------------------------- sending stored bodies

def test_slow_visitors_of_a_large_stored_object_are_sent_it_without_copies(verge,
                                                                          scripted_origin):
    big = bytes(range(256)) * (8 * 4096)  # 8 MiB
    origin = recording_origin(scripted_origin, {"Cache-Control": "max-age=60"}, body=big)
    v = cached_edge(verge, origin)
    assert v.get("/eight").body == big
    before = v.rss_kib()
    slow = [Client(v.port, rcvbuf=4096) for _ in range(8)]
    for c in slow:
        c.send(build_request("GET", "/eight"))
    time.sleep(1.0)  # let the edge write what the sockets take and stall
    grown = v.rss_kib() - before
    # A copy of the unsent part per visitor would be ~8 x 4 MiB; references cost nothing.
    assert grown < 16 * 1024, f"RSS grew {grown} KiB with 8 stalled visitors"
    for c in slow:
        resp = c.read_response()
        assert resp.status == 200 and resp.body == big
        assert resp.headers.get("x-cache") == "HIT"
        c.close()
    assert len(origin.requests) == 1


def test_pipelined_hits_on_one_connection(verge, scripted_origin):
    origin = recording_origin(scripted_origin, {"Cache-Control": "max-age=60"})
    v = cached_edge(verge, origin)
    v.get("/p")
    with Client(v.port) as c:
        c.send(b"".join(build_request("GET", "/p") for _ in range(5)))
        for _ in range(5):
            r = c.read_response()
            assert r.status == 200 and r.body == BODY and r.headers.get("x-cache") == "HIT"
    assert len(origin.requests) == 1


def test_many_pipelined_hits_with_ranges_and_heads_come_back_in_order(verge, scripted_origin):
    """More than one pass of pipelined answers (64 each), small ones queued together and
    ranges written as they come: every answer whole, in order, counted once."""
    origin = recording_origin(scripted_origin, {"Cache-Control": "max-age=60"})
    v = cached_edge(verge, origin)
    v.get("/q")
    kinds = ["GET"] * 100
    kinds[10], kinds[65], kinds[99] = "HEAD", "RANGE", "RANGE"
    data = b"".join(build_request("HEAD" if k == "HEAD" else "GET", "/q",
                                  headers=[("Range", "bytes=10-19")] if k == "RANGE" else [])
                    for k in kinds)
    with Client(v.port) as c:
        c.send(data)
        for i, k in enumerate(kinds):
            r = c.read_response("HEAD" if k == "HEAD" else "GET")
            assert r.headers.get("x-cache") == "HIT", (i, r)
            if k == "RANGE":
                assert r.status == 206 and r.body == BODY[10:20], (i, r)
            else:
                assert r.status == 200 and r.body == (b"" if k == "HEAD" else BODY), (i, r)
        assert c.request("GET", "/q").body == BODY  # the connection goes on
    assert len(origin.requests) == 1
    m = v.metrics()
    assert m.value("verge_cache_requests_total", zone="z1", result="HIT") == 101
    assert m.value("verge_requests_total", zone="z1", status="206") == 2


def test_http_1_0_visitor_of_a_fill_of_unknown_length(verge, scripted_origin):
    def chunked_origin(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            conn.send(b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n0\r\n\r\n" %
                      (len(BODY), BODY))
    origin = scripted_origin(chunked_origin)
    v = cached_edge(verge, origin)
    first = v.get("/u", version="HTTP/1.0")
    assert first.status == 200 and first.body == BODY and first.eof  # ended by the close
    again = http(v.port, "GET", "/u", version="HTTP/1.0")
    assert again.headers.get("x-cache") == "HIT"
    assert again.headers.get("content-length") == str(len(BODY))  # known once stored
    assert len(origin.requests) == 1
