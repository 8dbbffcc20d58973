"""Signals: SIGHUP reloads without dropping anything, a bad file keeps the old configuration,
SIGTERM/SIGINT drain and exit 0, SIGUSR1 reopens the logs."""

import os
import re
import signal
import threading
import time

from harness import (Client, Response, build_request, can_connect, to_yaml, wait_until,
                     zone)


class LoadLoop(threading.Thread):
    """Requests in a loop (new and keep-alive connections), bounded in count and time.

    The count bound is max_requests until mark() is called, then `after` more requests
    than were made by then: the requests a test waits for after an event (a reload, which
    under ASan on a loaded machine took as long as 1,450 requests) are always allowed."""

    def __init__(self, port, host="a.test", max_requests=20000, max_seconds=20.0):
        super().__init__(daemon=True)
        self.port = port
        self.host = host
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.stop_event = threading.Event()
        self.ok = 0
        self.made = 0
        self.failures = []

    def mark(self, after=200):
        """The successful requests so far; from now on at most `after` more are made."""
        self.max_requests = self.made + after
        return self.ok

    def run(self):
        deadline = time.monotonic() + self.max_seconds
        c = None
        while self.made < self.max_requests and time.monotonic() < deadline \
                and not self.stop_event.is_set():
            try:
                if c is None or self.made % 8 == 0:  # a new connection every 8 requests
                    if c is not None:
                        c.close()
                    c = Client(self.port, timeout=10)
                resp = c.request("GET", f"/load/{self.made}", host=self.host)
                if resp.status == 200 and resp.body == b"ok":
                    self.ok += 1
                else:
                    self.failures.append(f"#{self.made}: {resp!r}")
                if resp.eof:
                    c.close()
                    c = None
            except Exception as e:  # a dropped connection is exactly what we look for
                self.failures.append(f"#{self.made}: {e!r}")
                if c is not None:
                    c.close()
                c = None
            self.made += 1
        if c is not None:
            c.close()

    def wait_ok(self, n, timeout=10.0):
        wait_until(lambda: self.ok >= n or not self.is_alive(), timeout,
                   what=f"{n} successful load requests")
        assert self.ok >= n, f"load loop ended early: {self.failures[:5]}"

    def finish(self):
        self.stop_event.set()
        self.join(timeout=30)
        assert not self.is_alive(), "load loop did not stop"


def test_sighup_reload_under_load_fails_no_request_and_applies_change(verge, scripted_origin):
    origin = scripted_origin()
    v = verge([zone("z1", [origin], hosts=["a.test"])])
    assert v.get("/", host="new.test").status == 421

    persistent = Client(v.port)
    assert persistent.request("GET", "/before").status == 200

    load = LoadLoop(v.port)
    load.start()
    try:
        load.wait_ok(50)
        v.reload(v.build_config([zone("z1", [origin], hosts=["a.test", "new.test"])]))
        mark = load.mark(after=200)
        load.wait_ok(mark + 100)
    finally:
        load.finish()
    assert not load.failures, f"{len(load.failures)} failed requests: {load.failures[:5]}"

    # The keep-alive connection opened before the reload still works.
    resp = persistent.request("GET", "/after")
    assert resp.status == 200, resp
    persistent.close()
    # New requests see the new configuration (workers may pick it up a moment later).
    wait_until(lambda: v.get("/", host="new.test").status == 200, timeout=3,
               what="new.test served after reload")
    assert v.alive()


def test_sighup_does_not_cut_in_flight_response(verge, scripted_origin):
    reloaded = threading.Event()

    def handler(conn):
        if conn.read_request() is None:
            return
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n" + b"a" * 10)
        for _ in range(100):  # until the test has reloaded verge (bounded: 10 s)
            if reloaded.is_set() or conn.sleep(0.1):
                break
        conn.sleep(0.2)
        conn.send(b"b" * 10)
        serve_rest(conn)

    origin = scripted_origin(handler)
    v = verge([zone("z1", [origin])])
    with Client(v.port) as c:
        c.send(build_request("GET", "/slow"))
        head = c.read_head()
        assert head.startswith(b"HTTP/1.1 200"), head
        v.reload(v.build_config([zone("z1", [origin], hosts=["a.test", "other.test"])]))
        reloaded.set()
        resp = Response()
        c.read_body(resp, 20)
        assert resp.complete and resp.body == b"a" * 10 + b"b" * 10, resp


def serve_rest(conn):
    while conn.read_request() is not None:
        conn.respond(200, b"ok")


def test_bad_config_on_sighup_is_reported_and_old_config_keeps_serving(verge, scripted_origin):
    origin = scripted_origin()
    v = verge([zone("z1", [origin], hosts=["a.test"])])
    bad = v.build_config([zone("z1", [origin], hosts=["a.test", "new.test"],
                               timeouts={"connect": "banana"})])
    text = to_yaml(bad) + "\n"
    line_no = next(i for i, l in enumerate(text.splitlines(), 1) if "banana" in l)
    v.reload(text, expect_ok=False)
    log = v.error_log()
    m = re.search(re.escape(str(v.config_path)) + r":(\d+):(\d+)", log)
    assert m and int(m.group(1)) == line_no, (line_no, log[-2000:])
    assert v.alive()
    resp = v.get("/", host="a.test")
    assert resp.status == 200, resp
    assert v.get("/", host="new.test").status == 421  # the bad file was not applied
    # A good file afterwards is applied.
    v.reload(v.build_config([zone("z1", [origin], hosts=["a.test", "new.test"])]))
    wait_until(lambda: v.get("/", host="new.test").status == 200, timeout=3,
               what="new.test served after the good reload")


def test_sigterm_drains_in_flight_response_and_exits_0(verge, scripted_origin):
    def handler(conn):
        if conn.read_request() is None:
            return
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n" + b"a" * 10)
        conn.sleep(1.5)
        conn.send(b"b" * 10)
        serve_rest(conn)

    v = verge([zone("z1", [scripted_origin(handler)])])
    with Client(v.port, timeout=15) as c:
        c.send(build_request("GET", "/slow"))
        head = c.read_head()
        assert head.startswith(b"HTTP/1.1 200"), head
        v.send_signal(signal.SIGTERM)
        # It stops accepting while the in-flight response is still running.
        wait_until(lambda: not can_connect(v.port, timeout=0.2), timeout=1.2,
                   what="the listener to stop accepting after SIGTERM")
        assert v.alive(), "verge exited before the in-flight response was finished"
        resp = Response()
        c.read_body(resp, 20)
        assert resp.complete and resp.body == b"a" * 10 + b"b" * 10, resp
    rc = v.proc.wait(timeout=15)
    assert rc == 0, f"exit code {rc}"


def test_sigterm_closes_idle_keepalive_connections_and_exits_0(verge, scripted_origin):
    v = verge([zone("z1", [scripted_origin()])])
    with Client(v.port) as c:
        assert c.request("GET", "/").status == 200
        v.send_signal(signal.SIGTERM)
        assert c.peer_closed(timeout=8), "idle keep-alive connection left open during drain"
    rc = v.proc.wait(timeout=8)
    assert rc == 0, f"exit code {rc}"


def test_sigint_exits_0(verge, scripted_origin):
    v = verge([zone("z1", [scripted_origin()])])
    assert v.get("/").status == 200
    assert v.stop(signal.SIGINT, timeout=10) == 0


def test_sigusr1_reopens_access_log(verge, scripted_origin):
    v = verge([zone("z1", [scripted_origin()])])
    first = v.get("/before-rotation").headers.get("x-request-id")
    v.access_line_for(first)
    rotated = v.access_path.with_name("access.log.1")
    os.rename(v.access_path, rotated)
    v.send_signal(signal.SIGUSR1)
    try:  # the reopen may create the file at once; if not, the next write will
        wait_until(lambda: v.access_path.exists(), timeout=2, what="a new access.log")
    except AssertionError:
        time.sleep(0.5)
    second = v.get("/after-rotation").headers.get("x-request-id")
    line = v.access_line_for(second)
    assert "/after-rotation" in line
    old = rotated.read_text()
    assert first in old and second not in old
    assert first not in v.access_log()
    assert v.alive()
