"""Bodies stream with back-pressure: a 1 GiB response and a slow visitor keep verge's memory
bounded (RSS from /proc/PID/status)."""

import time

from harness import (BIG_HEAD, BIG_SIZE, BIG_TAIL, Client, build_request, wait_until,
                     zone)

MIB = 1024 * 1024
RSS_GROWTH_LIMIT_KIB = 64 * 1024


def warm_up(v, nginx_origin):
    """Touch every code path once so that lazily allocated buffers count in the baseline."""
    for _ in range(4):
        resp = v.get("/64k.bin")
        assert resp.status == 200 and resp.body == nginx_origin.files["64k.bin"]


class BigBodyCheck:
    """Sink for the 1 GiB body: counts bytes, checks the markers and that the rest is zero,
    and samples verge's RSS every 32 MiB."""

    def __init__(self, v):
        self.v = v
        self.n = 0
        self.head = b""
        self.tail = b""
        self.nonzero = 0
        self.next_sample = 0
        self.rss_max = 0

    def __call__(self, piece):
        if len(self.head) < len(BIG_HEAD):
            self.head += piece[:len(BIG_HEAD) - len(self.head)]
        self.tail = (self.tail + piece)[-len(BIG_TAIL):]
        self.nonzero += len(piece) - piece.count(0)
        self.n += len(piece)
        if self.n >= self.next_sample:
            self.rss_max = max(self.rss_max, self.v.rss_kib())
            self.next_sample += 32 * MIB


def test_1gib_response_streams_through_with_bounded_memory(verge, nginx_origin):
    v = verge([zone("z1", [nginx_origin])])
    warm_up(v, nginx_origin)
    rss_before = v.rss_kib()
    check = BigBodyCheck(v)
    with Client(v.port, timeout=30) as c:
        resp = c.request("GET", "/big.bin", sink=check, deadline=time.monotonic() + 150)
    assert resp.status == 200, resp
    assert resp.headers.get("content-length") == str(BIG_SIZE)
    assert resp.complete
    assert check.n == BIG_SIZE
    assert check.head == BIG_HEAD and check.tail == BIG_TAIL
    expected_nonzero = len(BIG_HEAD) - BIG_HEAD.count(0) + len(BIG_TAIL) - BIG_TAIL.count(0)
    assert check.nonzero == expected_nonzero
    growth = check.rss_max - rss_before
    assert growth < RSS_GROWTH_LIMIT_KIB, \
        f"verge RSS grew by {growth} KiB ({rss_before} -> {check.rss_max}) while streaming 1 GiB"
    # And it still serves afterwards.
    assert v.get("/small.txt").body == nginx_origin.files["small.txt"]


def test_slow_visitor_does_not_make_verge_buffer_the_origin_body(verge, nginx_origin):
    """A visitor with a tiny receive buffer reads 5 MB of the 1 GiB file slowly; without
    back-pressure verge would pull the origin's body at full speed into memory."""
    v = verge([zone("z1", [nginx_origin])])
    warm_up(v, nginx_origin)
    rss_before = v.rss_kib()
    rss_max = rss_before
    want = 5 * MIB
    got = 0
    deadline = time.monotonic() + 20
    with Client(v.port, rcvbuf=4096, timeout=15) as c:
        c.send(build_request("GET", "/big.bin"))
        head = c.read_head()
        assert head and head.startswith(b"HTTP/1.1 200"), head
        got = len(c.buf)
        c.buf.clear()
        next_pause = 256 * 1024
        while got < want and time.monotonic() < deadline:
            data = c.sock.recv(16384)
            assert data, "verge closed the connection early"
            got += len(data)
            if got >= next_pause:
                next_pause += 256 * 1024
                time.sleep(0.1)  # at most ~2.5 MB/s: far slower than nginx -> verge
                rss_max = max(rss_max, v.rss_kib())
        rss_max = max(rss_max, v.rss_kib())
        # Abort mid-body: verge must drop the origin fetch, not keep reading 1 GiB.
    assert got >= want, f"only {got} bytes in 20 s"
    growth = rss_max - rss_before
    assert growth < RSS_GROWTH_LIMIT_KIB, \
        f"verge RSS grew by {growth} KiB ({rss_before} -> {rss_max}) behind a slow visitor"
    # The aborted visitor is cleaned up and verge keeps serving.
    assert v.get("/small.txt").status == 200
    wait_until(lambda: v.metrics().value("verge_connections_active") == 0,
               what="verge_connections_active back to 0")
    assert v.alive()
