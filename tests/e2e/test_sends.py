"""Writes to origins go out at the end of each turn of a worker's loop, all of the turn's
together: in one io_uring submission (io_uring: true, the default) or one send() each
(io_uring: false, or a kernel that refuses io_uring). Either way each origin gets every
request whole and in order, a body too big for one send included."""

import hashlib
import socket
import threading
import time

import pytest

from harness import Stream, wait_until, zone

BODY = bytes(hashlib.shake_256(b"verge sends").digest(16 * 1024 * 1024))  # > what the sockets hold


@pytest.mark.parametrize("io_uring", [True, False])
def test_requests_reach_the_origin_whole_with_and_without_io_uring(verge, scripted_origin,
                                                                    io_uring):
    got = []
    lock = threading.Lock()

    def handler(conn):
        conn.sleep(0.5)  # before reading: the big body's sends find the socket full
        while (req := conn.read_request()) is not None:
            with lock:
                got.append((req.start_line, req.body))
            conn.respond(200, hashlib.sha256(req.body).hexdigest().encode())

    v = verge([zone("z1", [scripted_origin(handler).url])], workers=1, io_uring=io_uring)
    results = {}

    def visitor(i):
        body = BODY if i == 0 else f"small body {i}".encode()
        with v.client() as c:
            for k in range(3):  # kept-alive: the next request reuses the origin connection
                resp = c.request("POST", f"/up/{i}/{k}", body=body)
                results[(i, k)] = (resp.status, resp.body, hashlib.sha256(body).hexdigest())

    threads = [threading.Thread(target=visitor, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 24, results.keys()
    for key, (status, answer, want) in results.items():
        assert status == 200 and answer.decode() == want, key
    assert sorted(line for line, _ in got) == sorted(
        f"POST /up/{i}/{k} HTTP/1.1" for i in range(8) for k in range(3))
    if io_uring:
        wait_until(lambda: "sends: each loop turn's sends in one io_uring submission"
                   in v.error_log(), what="the io_uring line in the error log")
    else:
        assert "io_uring" not in v.error_log()


IO_URING_SYSCTL = "/proc/sys/kernel/io_uring_disabled"


@pytest.fixture
def io_uring_refused():
    """The kernel refuses io_uring to every process for the test's length (as a container's
    seccomp profile does to the processes in it): kernel.io_uring_disabled = 2, restored
    after."""
    try:
        with open(IO_URING_SYSCTL) as f:
            before = f.read().strip()
        with open(IO_URING_SYSCTL, "w") as f:
            f.write("2")
    except OSError as e:
        pytest.skip(f"cannot set {IO_URING_SYSCTL} here ({e})")
    try:
        yield
    finally:
        with open(IO_URING_SYSCTL, "w") as f:
            f.write(before)


def test_a_kernel_that_refuses_io_uring_gets_one_send_each_and_a_warning(verge, scripted_origin,
                                                                         io_uring_refused):
    def handler(conn):
        while (req := conn.read_request()) is not None:
            conn.respond(200, hashlib.sha256(req.body).hexdigest().encode())

    v = verge([zone("z1", [scripted_origin(handler).url])], workers=1, io_uring=True)
    for body in (b"", b"x" * 100000):
        resp = v.request("POST", "/up", body=body)
        assert resp.status == 200 and resp.body.decode() == hashlib.sha256(body).hexdigest()
    log = v.error_log()
    assert "io_uring refused by this kernel (Operation not permitted); one send() each" in log
    assert 'set "io_uring: false" to silence this' in log


def test_a_body_held_back_while_the_head_waits_for_the_connect_moves_on(verge):
    """The visitor's body is held back once the request head not yet written plus the body
    reach the high mark, and let go when they drain. A head that is large and still unwritten
    (the origin's connect waits for a SYN to be sent again: its listen queue is full) puts
    the body under the mark on its own when reading stops; it must be let go all the same,
    not left until the origin's timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    filler = socket.create_connection(listener.getsockname())  # the queue's only place
    port = listener.getsockname()[1]
    head_fields = [(f"X-Pad-{i}", "p" * 400) for i in range(40)]  # 16 KiB of head
    body = bytes(hashlib.shake_256(b"held back").digest(600 * 1024))
    got = {}

    def origin():
        time.sleep(0.3)  # Verge's SYN was dropped; the next one comes after a second
        s, _ = listener.accept()
        s.close()  # the filler
        s, _ = listener.accept()
        conn = Stream(s)
        req = conn.read_request()
        got["body"] = req.body
        answer = hashlib.sha256(req.body).hexdigest().encode()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer))
        conn.close()

    t = threading.Thread(target=origin, daemon=True)
    t.start()
    v = verge([zone("z1", [f"http://127.0.0.1:{port}"])], workers=1)
    resp = v.request("POST", "/up", headers=head_fields, body=body)  # stalled: times out
    t.join(timeout=10)
    filler.close()
    listener.close()
    assert resp.status == 200
    assert resp.body.decode() == hashlib.sha256(body).hexdigest()
    assert got["body"] == body
