"""Visitor-side limits: each has a key, a status, a log line and a counter
(verge_client_limit_total{limit}); and misbehaving visitors by the hundred (slowloris,
slow readers) or ten thousand idle connections do not stop others from being served.
Every load here is bounded in count and time; no test asserts a latency."""

import re
import resource
import select
import socket
import threading
import time

import pytest

from harness import Client, IO_TIMEOUT, build_request, wait_until, zone


def limit(v, name):
    return v.metrics().value("verge_client_limit_total", limit=name)


def sources(n):
    """n local addresses other than 127.0.0.1 (all of 127/8 is loopback): n visitors."""
    return [f"127.0.{1 + i // 250}.{1 + i % 250}" for i in range(n)]


def open_idle(port, n, addrs):
    """n connections that say nothing, spread over addrs."""
    socks = []
    for i in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_IP, 24, 1)  # IP_BIND_ADDRESS_NO_PORT: pick the port at connect
        s.bind((addrs[i % len(addrs)], 0))
        s.settimeout(IO_TIMEOUT)
        s.connect(("127.0.0.1", port))
        socks.append(s)
    return socks


def close_all(socks):
    for s in socks:
        s.close()


@pytest.fixture
def many_files():
    """This process may hold as many descriptors as its hard limit allows (verge, started
    from it, inherits that, and raises its own soft limit anyway)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def visitors_are_served(v, n, target="/normal", body=b"ok"):
    """n ordinary requests from 127.0.0.1, each on its own connection: all must succeed."""
    for i in range(n):
        resp = v.get(f"{target}/{i}" if target == "/normal" else target)
        assert resp.status == 200 and resp.body == body, resp
    return n


def served_until(v, done, timeout, target="/normal", body=b"ok"):
    """Ordinary requests, one after another, until done() (bounded by timeout): every one
    must succeed. Returns how many were made."""
    deadline, n = time.monotonic() + timeout, 0
    while not done():
        assert time.monotonic() < deadline, f"not done after {timeout}s ({n} served)"
        visitors_are_served(v, 10, target, body)
        n += 10
    return n


# ------------------------------------------------------------------ each limit

def test_request_line_limit_follows_its_key(verge, scripted_origin):
    origin = scripted_origin()
    v = verge([zone("z1", [origin])], client={"max_request_line": "512"})
    assert v.get("/" + "a" * 400).status == 200
    with Client(v.port) as c:
        resp = c.request("GET", "/" + "a" * 600)
        assert resp.status == 414, resp
        assert c.peer_closed()
    assert limit(v, "request_line") == 1
    v.wait_error_log(r"request line longer than client\.max_request_line \(512 bytes\); "
                     r"answering 414")
    assert len(origin.requests) == 1


def test_header_field_count_limit_follows_its_key(verge, scripted_origin):
    origin = scripted_origin()
    v = verge([zone("z1", [origin])], client={"max_header_fields": 10})
    assert v.get("/", headers=[(f"X-{i}", "v") for i in range(9)]).status == 200  # + Host
    resp = v.get("/", headers=[(f"X-{i}", "v") for i in range(10)])
    assert resp.status == 431, resp
    assert limit(v, "header_fields") == 1
    v.wait_error_log(r"more than client\.max_header_fields \(10\) header fields; answering 431")


def test_header_size_limit_is_counted_and_logged(verge, scripted_origin):
    v = verge([zone("z1", [scripted_origin()])], client={"max_header_size": "2KiB"})
    assert v.get("/", headers=[("X-Big", "x" * 3000)]).status == 431
    assert limit(v, "header_size") == 1
    v.wait_error_log(r"header section larger than client\.max_header_size \(2048 bytes\)")


def test_body_size_limit_is_per_zone(verge, scripted_origin):
    origin = scripted_origin()
    v = verge([zone("small", [origin], max_request_body="1KiB"),
               zone("big", [origin], hosts=["b.test"])])
    body = b"x" * 2000
    assert v.request("POST", "/", host="b.test", body=body).status == 200
    assert v.request("POST", "/", host="a.test", body=body).status == 413
    with Client(v.port) as c:  # chunked: refused when the total grows past the limit
        c.send(build_request("POST", "/", headers=[("Transfer-Encoding", "chunked")])
               + b"300\r\n" + b"a" * 768 + b"\r\n300\r\n" + b"b" * 768 + b"\r\n0\r\n\r\n")
        assert c.read_response().status == 413
    assert limit(v, "body_size") == 2
    v.wait_error_log(r"max_request_body of zone \"small\" \(1024 bytes\); answering 413")
    assert [len(r.body) for r in origin.requests] == [2000]


def test_header_timeout_counts_logs_and_answers_408(verge, scripted_origin):
    v = verge([zone("z1", [scripted_origin()])], client={"header_timeout": "1s"})
    with Client(v.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: a.te")
        assert c.read_response().status == 408
        assert c.peer_closed()
    assert limit(v, "header_timeout") == 1
    v.wait_error_log(r"request header not received within 1000 ms \(client\.header_timeout\)")


def test_request_body_that_stalls_gets_408(verge, scripted_origin):
    origin = scripted_origin()
    v = verge([zone("z1", [origin])], client={"body_timeout": "1s"})
    with Client(v.port) as c:
        c.send(build_request("POST", "/upload", headers=[("Content-Length", "10")]) + b"abc")
        resp = c.read_response()
        assert resp.status == 408, resp
        assert c.peer_closed()
    assert limit(v, "body_timeout") == 1
    v.wait_error_log(r"request body stalled for 1000 ms \(client\.body_timeout\); answering 408")
    wait_until(lambda: origin.requests, what="the origin saw the request cut short")
    assert [(r.body, r.complete) for r in origin.requests] == [(b"abc", False)]


def test_idle_keepalive_connection_is_closed(verge, scripted_origin):
    v = verge([zone("z1", [scripted_origin()])], client={"keepalive_timeout": "1s"})
    with Client(v.port) as c:
        assert c.request("GET", "/").status == 200
        assert c.peer_closed(timeout=5)
    assert limit(v, "keepalive_timeout") == 1


def test_visitor_that_stops_reading_is_closed_after_send_timeout(verge, nginx_origin):
    v = verge([zone("z1", [nginx_origin])], client={"send_timeout": "1s"})
    with Client(v.port, rcvbuf=4096) as c:
        c.send(build_request("GET", "/big.bin"))
        wait_until(lambda: limit(v, "send_timeout") == 1, timeout=15, what="send timeout")
    v.wait_error_log(r"visitor read nothing of the response for 1000 ms "
                     r"\(client\.send_timeout\); closing")
    assert v.get("/small.txt").status == 200


def test_connections_per_client_address_over_the_limit_get_503(verge, scripted_origin):
    v = verge([zone("z1", [scripted_origin()])],
              client={"max_connections_per_client": 5})
    held = open_idle(v.port, 5, ["127.0.0.1"])
    wait_until(lambda: v.metrics().value("verge_connections_active") == 5, what="5 connections")
    with Client(v.port) as c:  # the sixth from the same address: answered at once
        resp = c.read_response()
        assert resp.status == 503, resp
        assert "from your address" in resp.body.decode()
        assert resp.headers.get("retry-after") == "2", resp.headers  # when to try again
        assert c.peer_closed()
    with Client(v.port, source="127.0.0.2") as other:  # another visitor is not affected
        assert other.request("GET", "/").status == 200
    held.pop().close()
    wait_until(lambda: v.metrics().value("verge_connections_active") == 4, what="a slot freed")
    with Client(v.port) as c:
        assert c.request("GET", "/").status == 200
    close_all(held)
    assert limit(v, "connections_per_client") == 1
    v.wait_error_log(r"5 connections are open from this address "
                     r"\(client\.max_connections_per_client\); answering 503")


def test_connections_in_total_over_the_limit_get_503(verge, scripted_origin):
    v = verge([zone("z1", [scripted_origin()])],
              client={"max_connections": 3, "max_connections_per_client": 0})
    held = open_idle(v.port, 3, sources(3))
    wait_until(lambda: v.metrics().value("verge_connections_active") == 3, what="3 connections")
    with Client(v.port, source="127.0.9.9") as c:
        resp = c.read_response()
        assert resp.status == 503 and "too many connections open" in resp.body.decode(), resp
        assert resp.headers.get("retry-after") == "2", resp.headers
    close_all(held)
    wait_until(lambda: v.metrics().value("verge_connections_active") == 0, what="closed")
    assert v.get("/").status == 200
    assert limit(v, "connections_total") == 1
    v.wait_error_log(r"3 connections are open in total \(client\.max_connections\)")


def test_verge_raises_its_open_files_soft_limit_to_the_hard_limit(verge, scripted_origin):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
    try:
        v = verge([zone("z1", [scripted_origin()])])
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    limits = open(f"/proc/{v.pid}/limits").read()
    m = re.search(r"Max open files\s+(\d+)\s+(\d+)", limits)
    assert m and m.group(1) == m.group(2) == str(hard), limits
    v.wait_error_log(rf"open files limit {hard}: at most {hard * 3 // 4} visitor connections")


# ------------------------------------------------------------------ misbehaving crowds

def test_hundreds_of_slowloris_clients_do_not_stop_other_visitors(verge, scripted_origin,
                                                                  many_files):
    """300 visitors dribble a request head one byte every 0.2 s; others are served all the
    while; each slow one is cut off by client.header_timeout with a 408."""
    n = 300
    v = verge([zone("z1", [scripted_origin()])], client={"header_timeout": "2s"})
    slow = open_idle(v.port, n, sources(10))
    for s in slow:
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: a.test\r\nX-Drip: ")
    stop = threading.Event()

    def drip():
        deadline = time.monotonic() + 6  # bounded: well past the header timeout
        while not stop.is_set() and time.monotonic() < deadline:
            for s in slow:
                try:
                    s.send(b"x")
                except OSError:
                    pass
            stop.wait(0.2)
    t = threading.Thread(target=drip, daemon=True)
    t.start()
    try:  # served all the while the slow ones hold their connections
        served = served_until(v, lambda: limit(v, "header_timeout") >= n, timeout=20)
    finally:
        stop.set()
        t.join(timeout=5)
    assert served >= 10
    assert limit(v, "header_timeout") == n
    got_408 = 0
    for s in slow:
        try:
            got_408 += s.recv(64).startswith(b"HTTP/1.1 408 ")
        except OSError:
            pass
    close_all(slow)
    assert got_408 >= n * 0.9, f"only {got_408} of {n} slow visitors were told 408"
    assert visitors_are_served(v, 10) == 10


def test_hundreds_of_slow_readers_do_not_stop_other_visitors(verge, nginx_origin, many_files):
    """200 visitors ask for 1 GiB and never read; others are served all the while; each
    slow reader is closed by client.send_timeout, and its origin connection with it."""
    n = 200
    v = verge([zone("z1", [nginx_origin])], client={"send_timeout": "2s"})
    readers = []
    for i, src in enumerate(sources(n)):
        c = Client(v.port, rcvbuf=4096, source=src)
        c.send(build_request("GET", "/big.bin"))
        readers.append(c)
    try:  # served all the while the slow readers hold their connections
        served = served_until(v, lambda: limit(v, "send_timeout") >= n, timeout=30,
                              target="/small.txt", body=nginx_origin.files["small.txt"])
        assert served >= 10
    finally:
        close_all(r.sock for r in readers)
    assert limit(v, "send_timeout") == n
    wait_until(lambda: v.metrics().value("verge_connections_active") == 0, timeout=10,
               what="all visitor connections closed")
    assert v.get("/small.txt").status == 200


def test_ten_thousand_idle_connections_are_held_while_others_are_served(verge, scripted_origin,
                                                                       many_files):
    n = 10000
    if many_files < n + 1000:
        pytest.skip(f"the open-files hard limit here is {many_files}; this test needs "
                    f"{n + 1000} (raise it: ulimit -Hn)")
    v = verge([zone("z1", [scripted_origin()])], client={"header_timeout": "120s"})
    idle = open_idle(v.port, n, sources(20))  # 500 per address: within the per-address cap
    try:
        wait_until(lambda: v.metrics().value("verge_connections_active") >= n, timeout=30,
                   what=f"{n} idle connections accepted")
        assert visitors_are_served(v, 200) == 200
        poller = select.poll()
        for s in idle:
            poller.register(s, select.POLLIN | select.POLLERR | select.POLLHUP)
        closed = poller.poll(0)
        assert closed == [], f"{len(closed)} idle connections were closed or answered"
        m = v.metrics()
        assert m.value("verge_connections_active") >= n
        assert m.value("verge_client_limit_total", limit="connections_total") == 0
        assert m.value("verge_client_limit_total", limit="connections_per_client") == 0
    finally:
        close_all(idle)
    wait_until(lambda: v.metrics().value("verge_connections_active") == 0, timeout=30,
               what="the idle connections closed")
