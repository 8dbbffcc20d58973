"""idle.py - many idle keep-alive visitor connections: each one connects, sends one GET,
reads the whole response, then stays open and silent. Bounded in time; a server that
cannot take them all (or closes them) shows up in the counts, never as a hang."""
import errno
import selectors
import socket
import time

# The Host wrk sends too, so that the request is a hit on the object primed before.
REQUEST = "GET /1k.bin HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: verge-bench-idle\r\n\r\n"
WINDOW = 64  # connections connecting or waiting for their response at once


class _Conn:
    __slots__ = ("sock", "buf", "need", "request")

    def __init__(self, sock, request):
        self.sock, self.buf, self.need, self.request = sock, b"", None, request


def _response_done(c):
    """True once the response (with its Content-Length body) has fully arrived."""
    if c.need is None:
        end = c.buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        length = 0
        for line in c.buf[:end].split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        c.need = end + 4 + length
    return len(c.buf) >= c.need


def open_idle(port, count, deadline, stall=3.0):
    """Open count connections to 127.0.0.1:port, each after one answered request.
    Returns (idle sockets, failures) when all are done, at the monotonic deadline, or when
    no connection has advanced for `stall` seconds (a server at its connection limit
    leaves the rest unanswered in its listen queue)."""
    sel = selectors.EpollSelector()
    idle, failed, started, busy = [], 0, 0, 0
    request = (REQUEST % port).encode()
    moved = time.monotonic()
    try:
        while (started < count or busy) and time.monotonic() < min(deadline, moved + stall):
            while started < count and busy < WINDOW:
                s = socket.socket()
                s.setblocking(False)
                rc = s.connect_ex(("127.0.0.1", port))
                started += 1
                if rc not in (0, errno.EINPROGRESS):
                    s.close()
                    failed += 1
                    continue
                sel.register(s, selectors.EVENT_WRITE, _Conn(s, request))
                busy += 1
            for key, events in sel.select(0.1):
                moved = time.monotonic()
                c = key.data
                ok = _step(sel, c, events)
                if ok is None:
                    continue
                sel.unregister(c.sock)
                busy -= 1
                if ok:
                    idle.append(c.sock)
                else:
                    c.sock.close()
                    failed += 1
    finally:
        for key in list(sel.get_map().values()):  # still busy at the deadline
            key.fileobj.close()
            failed += 1
        sel.close()
    return idle, failed + (count - started)


def _step(sel, c, events):
    """Advance one connection: None while in progress, True when idle, False on failure."""
    try:
        if events & selectors.EVENT_WRITE:
            if c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                return False
            c.sock.send(c.request)  # small: one send takes it whole
            sel.modify(c.sock, selectors.EVENT_READ, c)
            return None
        data = c.sock.recv(65536)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return False
    if not data:
        return False
    c.buf += data
    if not _response_done(c):
        return None
    # Held only after a 2xx: a server refusing the connection (a 503 at a connection
    # limit, then a close) must not count as holding it.
    return c.buf[9:10] == b"2"


def still_open(socks):
    """How many of these idle sockets the server has not closed (no EOF, no data)."""
    sel = selectors.EpollSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    closed = len(sel.select(0))
    sel.close()
    return len(socks) - closed


def close_all(socks):
    for s in socks:
        s.close()
