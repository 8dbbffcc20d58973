"""One fetch per object, shared by every worker: visitors of an object being fetched wait
for its head, then read what has arrived and follow the fill; failures reach them with
what to do; a fill whose visitor left goes on; one slow fetch cannot hold the others past
cache.lock_timeout. Each origin below is gated by the test (never by timing), so "the
second visitor received bytes before the fill ended" is a fact, not a race."""

import threading
import time

from harness import Client, build_request, wait_until, zone

BIG = bytes(range(256)) * 800  # 204,800 bytes
HALF = len(BIG) // 2


def gated_origin(scripted_origin, gate, body=BIG, first=HALF, headers=None, cut=False,
                 before_head=False, chunked=False):
    """Answers each request with `first` bytes of body, waits for gate, then sends the
    rest (or closes: cut). before_head: waits for gate before any byte (then closes when
    cut). Counts requests in .requests."""
    headers = dict(headers or {"Cache-Control": "max-age=60"})

    def head():
        lines = ["HTTP/1.1 200 OK"] + [f"{k}: {v}" for k, v in headers.items()]
        lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def frame(data):
        return b"%x\r\n%s\r\n" % (len(data), data) if chunked and data else data

    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            if before_head:
                gate.wait(10)
                if cut:
                    conn.close()
                    return
            conn.send(head() + frame(body[:first]))
            gate.wait(10)
            if cut:
                conn.close()
                return
            conn.send(frame(body[first:]) + (b"0\r\n\r\n" if chunked else b""))
    return scripted_origin(handler)


def read_until(client, n):
    """Read until the client's buffer holds n bytes after the head (False on EOF)."""
    while len(client.buf) < n:
        if not client._fill():
            return False
    return True


def start_request(v, target, headers=(), rcvbuf=None):
    """A visitor whose request is sent and head read; its body is left in the socket."""
    c = Client(v.port, rcvbuf=rcvbuf)
    c.send(build_request("GET", target, headers=headers))
    from harness import parse_head
    head = c.read_head()
    assert head is not None, "no response head"
    line, fields = parse_head(head[:-4])
    return c, line, fields


def rest_of_body(client, fields, already=0):
    from harness import Response
    resp = Response()
    kind = "chunked" if "chunked" in fields.get("transfer-encoding", "") else \
        int(fields.get("content-length"))
    client.read_body(resp, kind)
    return resp


def test_cross_worker_visitors_of_one_slow_object_make_one_origin_request(verge, scripted_origin):
    gate = threading.Event()
    origin = gated_origin(scripted_origin, gate, before_head=True)
    v = verge([zone("z1", [origin.url], cache=True)], workers=2)
    results, sent = [], []
    lock = threading.Lock()

    def visitor():
        with Client(v.port) as c:
            c.send(build_request("GET", "/slow"))
            with lock:
                sent.append(1)
            r = c.read_response()
            with lock:
                results.append(r)
    threads = [threading.Thread(target=visitor) for _ in range(20)]
    for t in threads:
        t.start()
    wait_until(lambda: len(sent) == 20, what="all requests sent")
    origin.wait_requests(1)
    wait_until(lambda: v.metrics().value("verge_connections_active") >= 20,
               what="every visitor connected")
    gate.set()
    for t in threads:
        t.join(timeout=20)
    assert len(results) == 20
    assert all(r.status == 200 and r.body == BIG for r in results)
    assert len(origin.requests) == 1
    words = sorted(r.headers.get("x-cache") for r in results)
    assert words == ["HIT"] * 19 + ["MISS"]
    hits = [r.headers.get("cache-status") for r in results if r.headers.get("x-cache") == "HIT"]
    assert all(h.startswith("testedge; hit; ttl=") for h in hits)
    assert any(h.endswith("; collapsed") for h in hits)  # answered from the fill in flight
    m = v.metrics()
    assert m.value("verge_cache_requests_total", zone="z1", result="HIT") == 19
    assert m.value("verge_cache_requests_total", zone="z1", result="MISS") == 1
    assert m.sum("verge_origin_requests_total", zone="z1") == 1


def test_second_visitor_receives_a_large_object_before_its_fill_ends(verge, scripted_origin):
    gate = threading.Event()
    origin = gated_origin(scripted_origin, gate)
    v = verge([zone("z1", [origin.url], cache=True)], workers=2)
    first, _, f1 = start_request(v, "/large")
    assert read_until(first, HALF)
    second, line, f2 = start_request(v, "/large")
    assert line.startswith("HTTP/1.1 200")
    assert f2.get("x-cache") == "HIT" and "collapsed" in f2.get("cache-status")
    assert f2.get("content-length") == str(len(BIG))
    assert read_until(second, HALF)  # while the origin still holds the second half
    assert bytes(second.buf[:HALF]) == BIG[:HALF]
    assert not gate.is_set() and len(origin.requests) == 1
    gate.set()
    for c, f in ((first, f1), (second, f2)):
        resp = rest_of_body(c, f)
        assert resp.complete and resp.body == BIG
        c.close()
    assert v.get("/large").headers.get("x-cache") == "HIT"
    assert len(origin.requests) == 1


def test_a_range_is_answered_from_the_fill_before_it_ends(verge, scripted_origin):
    gate = threading.Event()
    origin = gated_origin(scripted_origin, gate, headers={"Cache-Control": "max-age=60"})
    v = verge([zone("z1", [origin.url], cache=True)])
    first, _, f1 = start_request(v, "/r")
    assert read_until(first, HALF)
    resp = v.get("/r", headers=[("Range", "bytes=100-199")])
    assert resp.status == 206 and resp.body == BIG[100:200]
    assert resp.headers.get("content-range") == f"bytes 100-199/{len(BIG)}"
    assert not gate.is_set()
    assert "range" not in origin.requests[0].headers  # the whole object was asked for
    gate.set()
    assert rest_of_body(first, f1).body == BIG
    first.close()


def test_a_fill_whose_visitor_left_goes_on_and_is_stored(verge, scripted_origin):
    gate = threading.Event()
    origin = gated_origin(scripted_origin, gate)
    v = verge([zone("z1", [origin.url], cache=True)], workers=2)
    leaver, _, _ = start_request(v, "/left")
    leaver.reset_close()  # gone after the head
    reader, _, fields = start_request(v, "/left")
    gate.set()
    resp = rest_of_body(reader, fields)
    assert resp.complete and resp.body == BIG
    reader.close()
    wait_until(lambda: v.metrics().value("verge_cache_objects") == 1, what="object stored")
    again = v.get("/left")
    assert again.headers.get("x-cache") == "HIT" and again.body == BIG
    assert len(origin.requests) == 1


def test_a_fill_whose_visitor_left_before_the_head_goes_on(verge, scripted_origin):
    gate = threading.Event()
    origin = gated_origin(scripted_origin, gate, before_head=True)
    v = verge([zone("z1", [origin.url], cache=True)])
    c = Client(v.port)
    c.send(build_request("GET", "/early"))
    origin.wait_requests(1)
    c.reset_close()
    gate.set()
    wait_until(lambda: v.metrics().value("verge_cache_objects") == 1, what="object stored")
    assert v.get("/early").headers.get("x-cache") == "HIT"
    assert len(origin.requests) == 1


def test_readers_of_a_cut_fill_see_their_connection_cut(verge, scripted_origin):
    gate = threading.Event()
    origin = gated_origin(scripted_origin, gate, cut=True)
    v = verge([zone("z1", [origin.url], cache=True)], workers=2)
    first, _, f1 = start_request(v, "/cut")
    assert read_until(first, HALF)
    second, _, f2 = start_request(v, "/cut")
    rid = f2.get("x-request-id")
    assert read_until(second, HALF)
    gate.set()
    for c, f in ((first, f1), (second, f2)):
        resp = rest_of_body(c, f)
        assert not resp.complete and len(resp.body) < len(BIG)
        c.close()
    assert "error=http_response_incomplete" in v.access_line_for(rid)
    assert v.metrics().value("verge_cache_objects") == 0


def test_waiters_for_a_head_get_the_origin_error_the_origin_asked_once(verge, scripted_origin):
    gate = threading.Event()
    origin = gated_origin(scripted_origin, gate, before_head=True, cut=True)
    v = verge([zone("z1", [origin.url], cache=True, retries=0)], workers=2)
    results = []

    def visitor():
        results.append(v.get("/gone"))
    threads = [threading.Thread(target=visitor) for _ in range(6)]
    for t in threads:
        t.start()
    origin.wait_requests(1)
    wait_until(lambda: v.metrics().value("verge_connections_active") >= 6,
               what="every visitor connected")
    gate.set()
    for t in threads:
        t.join(timeout=20)
    assert [r.status for r in results] == [502] * 6
    assert all(r.headers.get("proxy-status").startswith("testedge; error=connection_terminated")
               for r in results)
    assert len(origin.requests) == 1
    assert origin.connections == 1


def test_a_fill_past_max_object_cuts_its_readers_not_its_visitor(verge, scripted_origin):
    gate = threading.Event()
    body = bytes(range(256)) * 1200  # 307,200 bytes, sent chunked: the length is unknown
    origin = gated_origin(scripted_origin, gate, body=body, first=50_000, chunked=True)
    v = verge([zone("z1", [origin.url], cache=True)], cache={"max_object": "100KiB"},
              workers=2)
    first, _, f1 = start_request(v, "/huge")
    assert f1.get("transfer-encoding") == "chunked"
    second, _, f2 = start_request(v, "/huge")
    assert f2.get("x-cache") == "HIT"
    gate.set()
    whole = rest_of_body(first, f1)
    assert whole.complete and whole.body == body  # the rest came straight from the origin
    cut = rest_of_body(second, f2)
    assert not cut.complete
    first.close()
    second.close()
    again = v.get("/huge")
    assert again.headers.get("x-cache") == "MISS" and again.body == body
    assert len(origin.requests) == 2


def test_one_slow_fetch_holds_others_only_for_the_lock_timeout(verge, scripted_origin):
    gate = threading.Event()
    origin = gated_origin(scripted_origin, gate, before_head=True)
    v = verge([zone("z1", [origin.url], cache=True)], cache={"lock_timeout": "300ms"})
    results = []
    threads = [threading.Thread(target=lambda: results.append(v.get("/held")))
               for _ in range(2)]
    threads[0].start()
    origin.wait_requests(1)
    threads[1].start()
    origin.wait_requests(2)  # the second gave up waiting and asked on its own
    v.wait_error_log(r"waited 300 ms \(cache\.lock_timeout\)")
    gate.set()
    for t in threads:
        t.join(timeout=20)
    assert [r.status for r in results] == [200, 200]
    assert all(r.body == BIG for r in results)


def test_a_stalled_reader_does_not_slow_the_fetching_visitor(verge, scripted_origin):
    gate = threading.Event()
    big = bytes(range(256)) * 16384  # 4 MiB: far more than a stalled socket takes
    origin = gated_origin(scripted_origin, gate, body=big, first=1000)
    v = verge([zone("z1", [origin.url], cache=True)], workers=2)
    first, _, f1 = start_request(v, "/wide")
    stalled = Client(v.port, rcvbuf=4096)  # reads nothing until the end
    stalled.send(build_request("GET", "/wide"))
    wait_until(lambda: v.metrics().value("verge_connections_active") >= 2,
               what="the stalled visitor connected")
    gate.set()
    resp = rest_of_body(first, f1)
    assert resp.complete and resp.body == big  # while the other has read almost nothing
    first.close()
    late = stalled.read_response()
    assert late.status == 200 and late.body == big
    stalled.close()
    assert len(origin.requests) == 1


def test_a_reader_waiting_for_a_slow_fill_is_not_taken_for_a_stalled_visitor(verge,
                                                                            scripted_origin):
    gate = threading.Event()
    big = bytes(range(256)) * 49152  # 12 MiB arrive first: more than any socket holds
    origin = gated_origin(scripted_origin, gate, body=big + b"tail", first=len(big))
    v = verge([zone("z1", [origin.url], cache=True)], client={"send_timeout": "1s"})
    first, _, f1 = start_request(v, "/pause")
    reader, _, f2 = start_request(v, "/pause", rcvbuf=4096)
    time.sleep(0.5)  # blocked on its socket for a while: the send timeout is armed
    assert read_until(reader, len(big))  # it catches up; now only the fill is behind
    assert read_until(first, len(big))
    time.sleep(2.5)  # longer than client.send_timeout, waiting for the origin
    gate.set()
    for c, f in ((first, f1), (reader, f2)):
        resp = rest_of_body(c, f)
        assert resp.complete and resp.body == big + b"tail"
        c.close()
