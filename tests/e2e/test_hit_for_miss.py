"""Hit-for-miss (Varnish's name): a URL whose response may not be stored is remembered as
such for the zone's hit_for_miss, so its next visitors go to the origin at once, side by
side, instead of queueing behind one another's fetch as collapsed misses; the first
response that may be stored replaces the marker; purge removes it; hit_for_miss: 0 turns
it off; a refusal that is the request's doing (Authorization) marks nothing."""

import threading

from harness import zone
from test_cache import origin_answering
from test_purge import edge, purge

SLOW = 1.0  # seconds the origin takes per answer: all visitors arrive well within it


class SlowUncacheable:
    """An origin that answers after SLOW seconds with the headers in .headers and writes
    down, for every request, how many answers it had sent when the request arrived."""

    def __init__(self, scripted_origin, headers):
        self.headers = headers
        self.lock = threading.Lock()
        self.sent = 0
        self.answers_before = []
        self.origin = scripted_origin(self.handle)

    def handle(self, conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            with self.lock:
                self.answers_before.append(self.sent)
            if conn.sleep(SLOW):
                return
            conn.respond(200, b"per visitor\n", self.headers)
            with self.lock:
                self.sent += 1


def markers(v):
    return v.metrics().value("verge_cache_hit_for_miss")


def concurrently(v, path, n):
    results = []
    lock = threading.Lock()

    def fetch():
        r = v.get(path)
        with lock:
            results.append(r)
    threads = [threading.Thread(target=fetch) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=15)
    return results


def test_visitors_of_an_uncacheable_url_are_not_queued_behind_each_other(verge,
                                                                            scripted_origin):
    slow = SlowUncacheable(scripted_origin, {"Cache-Control": "no-store"})
    v = verge([zone("z1", [slow.origin.url], cache=True)])
    first = v.get("/np")
    assert first.status == 200 and first.headers.get("x-cache") == "MISS"
    assert "detail=hit-for-miss" not in first.headers.get("cache-status")
    assert markers(v) == 1
    results = concurrently(v, "/np", 5)
    assert [r.status for r in results] == [200] * 5
    assert all(r.body == b"per visitor\n" for r in results)
    for r in results:
        assert r.headers.get("x-cache") == "MISS"
        assert r.headers.get("cache-status") == \
            "testedge; fwd=uri-miss; fwd-status=200; detail=hit-for-miss"
    # every one of the five reached the origin before it had answered any of them
    assert slow.answers_before == [0, 1, 1, 1, 1, 1]
    assert markers(v) == 1  # one per URL, however often it is renewed
    m = v.metrics()
    assert m.value("verge_cache_objects") == 0
    assert m.value("verge_cache_requests_total", zone="z1", result="MISS") == 6


def test_without_a_marker_collapsed_visitors_wait_for_the_first_answer(verge, scripted_origin):
    """The behaviour hit-for-miss exists to avoid, shown with it turned off: the visitors
    that arrive together wait for the one fetch in flight and only then go on their own."""
    slow = SlowUncacheable(scripted_origin, {"Cache-Control": "no-store"})
    v = verge([zone("z1", [slow.origin.url], cache=True, hit_for_miss="0s")])
    assert v.get("/np").status == 200
    assert markers(v) == 0
    results = concurrently(v, "/np", 5)
    assert [r.status for r in results] == [200] * 5
    assert all("hit-for-miss" not in r.headers.get("cache-status") for r in results)
    assert slow.answers_before[1] == 1 and max(slow.answers_before[2:]) >= 2


def test_a_url_that_becomes_cacheable_is_stored_at_its_next_request(verge, scripted_origin):
    headers = {"Cache-Control": "private"}
    origin = origin_answering(scripted_origin, headers)
    v = verge([zone("z1", [origin.url], cache=True, hit_for_miss="10m")])
    assert v.get("/u").headers.get("x-cache") == "MISS"
    assert markers(v) == 1
    headers["Cache-Control"] = "max-age=60"  # the origin changed its mind
    resp = v.get("/u")
    assert resp.headers.get("cache-status") == \
        "testedge; fwd=uri-miss; fwd-status=200; stored"
    assert markers(v) == 0
    hit = v.get("/u")
    assert hit.headers.get("x-cache") == "HIT"
    assert len(origin.requests) == 2


def test_purge_removes_the_marker(verge, scripted_origin, tmp_path):
    origin = origin_answering(scripted_origin, {"Cache-Control": "no-store"})
    v = edge(verge, tmp_path, origin)
    v.get("/p")
    assert "detail=hit-for-miss" in v.get("/p").headers.get("cache-status")
    assert markers(v) == 1
    resp = purge(v, "zone=z1&path=/p")
    assert resp.status == 200
    assert markers(v) == 0
    assert "hit-for-miss" not in v.get("/p").headers.get("cache-status")
    assert markers(v) == 1  # marked again by the answer it got


def test_a_refusal_caused_by_the_request_marks_nothing(verge, scripted_origin):
    origin = origin_answering(scripted_origin, {"Cache-Control": "max-age=60"})
    v = verge([zone("z1", [origin.url], cache=True)])
    resp = v.get("/a", headers=[("Authorization", "Bearer x")])
    assert resp.status == 200
    assert markers(v) == 0
    # the next visitor without credentials gets it stored, then from the cache
    assert v.get("/a").headers.get("cache-status").endswith("; stored")
    assert v.get("/a").headers.get("x-cache") == "HIT"
