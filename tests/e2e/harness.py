"""Verge end-to-end harness: the verge process, scripted and nginx origins, a raw HTTP client.

Standard library only. Everything listens on loopback, every wait is bounded, and every
process is stopped by its own PID.
"""

import contextlib
import ctypes
import fcntl
import http.server as http_server
import json
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VERGE_BIN = Path(os.environ["VERGE_BIN"]) if os.environ.get("VERGE_BIN") else ROOT / "build" / "verge"
NGINX_BIN = Path("/usr/sbin/nginx")
EDGE_NAME = "testedge"

# VERGE_PREFIX runs verge under another program (make e2e-valgrind: valgrind), "{dir}" in
# it replaced by the process's own directory; VERGE_TIMEOUT_SCALE stretches every wait for
# such a slow run.
VERGE_PREFIX = os.environ.get("VERGE_PREFIX", "")
TIMEOUT_SCALE = float(os.environ.get("VERGE_TIMEOUT_SCALE", "1"))

READY_TIMEOUT = 10.0 * TIMEOUT_SCALE
IO_TIMEOUT = 10.0 * TIMEOUT_SCALE
LOG_WAIT = 5.0 * TIMEOUT_SCALE


# --------------------------------------------------------------------------- processes

_ports_given = set()


def free_port(host="127.0.0.1"):
    """A port nobody listens on right now (bind port 0, read it, close) and not handed out
    before in this run: two calls in a row can otherwise get the same port back from the
    kernel (a verge's visitor and admin ports then clash)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(1000):
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port
    raise RuntimeError("no free port that was not handed out before")


_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """preexec_fn: the child gets SIGKILL if the test runner dies, so nothing outlives it."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def spawn(argv, cwd, stdout_path, stderr_path):
    out = open(stdout_path, "ab")
    err = open(stderr_path, "ab")
    try:
        return subprocess.Popen([str(a) for a in argv], cwd=str(cwd), stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err, preexec_fn=_die_with_parent)
    finally:
        out.close()
        err.close()


def stop_process(proc, sig=signal.SIGTERM, timeout=10.0):
    """Signal our own child by PID; SIGKILL it if it is still there after timeout."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        os.kill(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=10)


def can_connect(port, host="127.0.0.1", timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(predicate, timeout=LOG_WAIT, interval=0.05, what="condition"):
    """Poll predicate until it returns a true value (returned) or timeout (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def read_text(path):
    try:
        return Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return ""


def rss_kib(pid):
    """Resident set size of a process in KiB, from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def proc_io(pid, counter):
    """One counter of /proc/PID/io: "rchar" (bytes read, sendfile's source bytes included:
    a body sent with sendfile counts there, one copied with writev does not) or "syscw"
    (write system calls, writev and sendfile included)."""
    with open(f"/proc/{pid}/io") as f:
        return int(next(line for line in f if line.startswith(counter + ":")).split()[1])


# --------------------------------------------------------------------------- YAML

_PLAIN = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_./:@-]*")


def _scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    s = str(v)
    if _PLAIN.fullmatch(s) and not s.endswith(":"):
        return s
    return json.dumps(s)  # a JSON string is a valid YAML double-quoted scalar


def to_yaml(obj, indent=0):
    """Block-style YAML for dicts, lists and scalars (enough for Verge's configuration)."""
    pad = " " * indent
    lines = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, dict) and v:
                lines.append(f"{pad}{k}:")
                lines.append(to_yaml(v, indent + 2))
            elif isinstance(v, list) and v:
                lines.append(f"{pad}{k}:")
                lines.append(to_yaml(v, indent + 2))
            elif isinstance(v, (dict, list)):
                lines.append(f"{pad}{k}: {'{}' if isinstance(v, dict) else '[]'}")
            else:
                lines.append(f"{pad}{k}: {_scalar(v)}")
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, (dict, list)) and item:
                sub = to_yaml(item, indent + 2)
                lines.append(pad + "- " + sub[indent + 2:])
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    else:
        lines.append(pad + _scalar(obj))
    return "\n".join(lines)


def deep_merge(base, over):
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def zone(name, origins, hosts=("a.test",), **extra):
    """One zone entry; origins are URLs (or anything with a .url attribute)."""
    urls = [o if isinstance(o, str) else o.url for o in origins]
    z = {"name": name, "hosts": list(hosts), "origins": urls}
    z.update(extra)
    return z


# --------------------------------------------------------------------------- metrics

_METRIC_LINE = re.compile(
    r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


class Metrics(dict):
    """Prometheus text parsed into {(name, ((label, value), ...)): float}."""

    def __init__(self, text):
        super().__init__()
        self.text = text
        self.bad_lines = []
        for line in text.splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            m = _METRIC_LINE.match(line)
            if not m:
                self.bad_lines.append(line)
                continue
            name, labels_text, value = m.groups()
            labels = {}
            if labels_text:
                pos = 0
                while pos < len(labels_text):
                    lm = _LABEL.match(labels_text, pos)
                    if not lm:
                        self.bad_lines.append(line)
                        break
                    labels[lm.group(1)] = lm.group(2)
                    pos = lm.end()
            try:
                self[(name, tuple(sorted(labels.items())))] = float(value)
            except ValueError:
                self.bad_lines.append(line)

    def value(self, name, **labels):
        """The series with exactly these labels, or 0 if absent."""
        return self.get((name, tuple(sorted(labels.items()))), 0.0)

    def sum(self, name, **labels):
        """Sum of all series of name whose labels include these."""
        total = 0.0
        for (n, lab), v in self.items():
            if n == name and all(dict(lab).get(k) == val for k, val in labels.items()):
                total += v
        return total

    def names(self):
        return {n for (n, _) in self}


# --------------------------------------------------------------------------- HTTP messages

class Headers:
    """Ordered, case-insensitive multi-map of header fields."""

    def __init__(self, items=()):
        self.items = [(k, v) for k, v in items]

    def get(self, name, default=None):
        name = name.lower()
        for k, v in self.items:
            if k.lower() == name:
                return v
        return default

    def get_all(self, name):
        name = name.lower()
        return [v for k, v in self.items if k.lower() == name]

    def joined(self, name):
        return ", ".join(self.get_all(name))

    def __contains__(self, name):
        return self.get(name) is not None

    def names(self):
        return [k.lower() for k, _ in self.items]

    def __repr__(self):
        return f"Headers({self.items!r})"


class ConnectionClosed(Exception):
    pass


def parse_head(raw):
    """Split a message head (without the final CRLFCRLF) into start line and Headers."""
    text = raw.decode("latin-1")
    lines = text.split("\r\n")
    items = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        items.append((name, value.strip(" \t")))
    return lines[0], Headers(items)


def _is_chunked(headers):
    te = headers.joined("transfer-encoding").lower()
    return bool(te) and te.split(",")[-1].strip() == "chunked"


class Message:
    """A request or response as read from the wire."""

    def __init__(self):
        self.start_line = ""
        self.headers = Headers()
        self.body = bytearray()
        self.body_len = 0
        self.chunked = False
        self.complete = False   # the framing said the body ended (not a connection drop)
        self.eof = False        # the peer closed (or reset) the connection while/after reading
        self.raw = b""          # head bytes, CRLFCRLF included
        self.interim = []       # 1xx responses read before this one


class Response(Message):
    @property
    def version(self):
        return self.start_line.split(" ", 1)[0]

    @property
    def status(self):
        return int(self.start_line.split(" ", 2)[1])

    @property
    def reason(self):
        parts = self.start_line.split(" ", 2)
        return parts[2] if len(parts) > 2 else ""

    def __repr__(self):
        return (f"<Response {self.start_line!r} headers={self.headers.items!r} "
                f"body={self.body[:200]!r} complete={self.complete} eof={self.eof}>")


class Request(Message):
    @property
    def method(self):
        return self.start_line.split(" ")[0]

    @property
    def target(self):
        return self.start_line.split(" ")[1]

    @property
    def version(self):
        return self.start_line.split(" ")[2]

    def __repr__(self):
        return (f"<Request {self.start_line!r} headers={self.headers.items!r} "
                f"body={self.body[:200]!r}>")


class Stream:
    """A socket with a read buffer and HTTP/1.1 message framing, for both ends."""

    def __init__(self, sock, timeout=IO_TIMEOUT):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.buf = bytearray()
        self.received = bytearray()  # everything ever read (kept only when record=True)
        self.record = False
        self.eof = False
        self.reset = False

    def _fill(self, size=262144):
        """Read more into buf; False on EOF or reset."""
        if self.eof:
            return False
        try:
            data = self.sock.recv(size)
        except (ConnectionResetError, BrokenPipeError):
            self.eof = self.reset = True
            return False
        if not data:
            self.eof = True
            return False
        if self.record:
            self.received += data
        self.buf += data
        return True

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def read_head(self, limit=1 << 20):
        """Bytes up to and including CRLFCRLF; None on EOF before a full head."""
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                head = bytes(self.buf[:i + 4])
                del self.buf[:i + 4]
                return head
            if len(self.buf) > limit:
                raise AssertionError(f"head larger than {limit} bytes")
            if not self._fill():
                return None

    def _read_line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            if not self._fill():
                return None

    def _read_exact(self, n, msg, sink, deadline):
        while n > 0:
            if not self.buf:
                if deadline and time.monotonic() > deadline:
                    raise AssertionError("body read deadline exceeded")
                if not self._fill(min(max(n, 4096), 1 << 20)):
                    return False
            take = min(n, len(self.buf))
            piece = bytes(self.buf[:take])
            del self.buf[:take]
            msg.body_len += take
            if sink is not None:
                sink(piece)
            else:
                msg.body += piece
            n -= take
        return True

    def read_body(self, msg, kind, sink=None, deadline=None):
        """kind: 'none', 'chunked', an int Content-Length, or 'eof'."""
        if kind == "none":
            msg.complete = True
            return msg
        if kind == "chunked":
            msg.chunked = True
            while True:
                line = self._read_line()
                if line is None:
                    return msg
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise AssertionError(f"bad chunk size line {line!r}")
                if size == 0:
                    trailers = []
                    while True:
                        t = self._read_line()
                        if t is None:
                            return msg
                        if t == b"":
                            break
                        trailers.append(t)
                    msg.trailers = trailers
                    msg.complete = True
                    return msg
                if not self._read_exact(size, msg, sink, deadline):
                    return msg
                end = self._read_line()
                if end is None:
                    return msg  # the peer closed right after a chunk: incomplete
                if end != b"":
                    raise AssertionError("chunk not followed by CRLF")
        if kind == "eof":
            while True:
                if self.buf:
                    piece = bytes(self.buf)
                    self.buf.clear()
                    msg.body_len += len(piece)
                    if sink is not None:
                        sink(piece)
                    else:
                        msg.body += piece
                if deadline and time.monotonic() > deadline:
                    raise AssertionError("body read deadline exceeded")
                if not self._fill():
                    msg.complete = True
                    msg.eof = True
                    return msg
        msg.complete = self._read_exact(int(kind), msg, sink, deadline)
        return msg

    def read_response(self, method="GET", sink=None, deadline=None, keep_interim=False):
        """The next final response (1xx are collected in .interim). Raises ConnectionClosed
        when the peer closes before a full head."""
        interim = []
        while True:
            head = self.read_head()
            if head is None:
                raise ConnectionClosed(f"closed before a response head; got {bytes(self.buf)!r}")
            resp = Response()
            resp.raw = head
            resp.start_line, resp.headers = parse_head(head[:-4])
            if 100 <= resp.status < 200 and resp.status != 101:
                interim.append(resp)
                if keep_interim:
                    resp.complete = True
                    return resp
                continue
            break
        resp.interim = interim
        if method == "HEAD" or resp.status in (204, 304) or resp.status < 200:
            kind = "none"
        elif _is_chunked(resp.headers):
            kind = "chunked"
        elif resp.headers.get("content-length") is not None:
            kind = int(resp.headers.get("content-length"))
        else:
            kind = "eof"
        self.read_body(resp, kind, sink=sink, deadline=deadline)
        resp.body = bytes(resp.body)
        resp.eof = self.eof
        return resp

    def read_request(self):
        """The next request, or None on a clean EOF before any byte of it."""
        head = self.read_head()
        if head is None:
            return None
        req = Request()
        req.raw = head
        req.start_line, req.headers = parse_head(head[:-4])
        if _is_chunked(req.headers):
            kind = "chunked"
        elif req.headers.get("content-length") is not None:
            kind = int(req.headers.get("content-length"))
        else:
            kind = "none"
        self.read_body(req, kind)
        req.body = bytes(req.body)
        return req

    def peer_closed(self, timeout=2.0):
        """True if the peer closes (EOF/reset) within timeout without sending more."""
        if self.eof:
            return True
        self.sock.settimeout(timeout)
        try:
            return not self._fill()
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(IO_TIMEOUT)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def reset_close(self):
        """Close with RST instead of FIN (SO_LINGER with a zero timeout)."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()


def build_request(method="GET", target="/", host="a.test", headers=(), body=None,
                  version="HTTP/1.1"):
    """Request bytes. host=None sends no Host header. A bytes body gets a Content-Length
    unless headers already give Content-Length or Transfer-Encoding."""
    lines = [f"{method} {target} {version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    names = set()
    items = headers.items() if isinstance(headers, dict) else headers
    for k, v in items:
        names.add(k.lower())
        lines.append(f"{k}: {v}")
    if body is not None and not names & {"content-length", "transfer-encoding"}:
        lines.append(f"Content-Length: {len(body)}")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if body is not None:
        data += body
    return data


_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") (/[\x21-\x7e]*|\*) HTTP/1\.1")
_FIELD_LINE = re.compile(rb"(" + _TOKEN + rb"):[ \t]*([\x21-\x7e\x80-\xff](?:[\x20-\x7e\t\x80-\xff]*"
                         rb"[\x21-\x7e\x80-\xff])?)?[ \t]*")
# What the edge must never pass to an origin: hop-by-hop fields, fields it consumes, and
# unkeyed fields (docs/proxying.md, docs/hardening.md).
NEVER_FORWARDED = {"connection", "keep-alive", "upgrade", "te", "trailer", "expect",
                   "proxy-connection", "proxy-authorization", "x-forwarded-host",
                   "x-original-url", "x-rewrite-url", "x-http-method-override",
                   "x-http-method", "x-method-override", "x-forwarded-server",
                   "x-forwarded-scheme", "x-host", "x-original-host"}


_REPLACED = NEVER_FORWARDED | {"host", "content-length", "transfer-encoding",
                               "x-forwarded-for", "x-forwarded-proto", "x-request-id"}


def _strict_chunked(raw, pos):
    """A chunked body with no extensions and no trailers, as the edge writes it: (body, end)."""
    body = b""
    while True:
        eol = raw.find(b"\r\n", pos)
        assert eol > pos, f"chunk size line missing at {raw[pos:pos + 40]!r}"
        size_text = raw[pos:eol]
        assert re.fullmatch(rb"[0-9a-f]+", size_text), f"chunk size line {size_text!r}"
        size = int(size_text, 16)
        pos = eol + 2
        if size == 0:
            assert raw[pos:pos + 2] == b"\r\n", f"trailers or junk after the last chunk: " \
                                                 f"{raw[pos:pos + 40]!r}"
            return body, pos + 2
        assert len(raw) >= pos + size + 2, "chunk cut short"
        body += raw[pos:pos + size]
        assert raw[pos + size:pos + size + 2] == b"\r\n", "chunk data not followed by CRLF"
        pos += size + 2


class StrictRequest:
    def __init__(self, line, fields, body, head):
        self.line, self.fields, self.body, self.head = line, fields, body, head

    def values(self, name):
        return [v for n, v in self.fields if n == name.lower()]

    def names(self):
        return [n for n, _ in self.fields]

    def __repr__(self):
        return f"<StrictRequest {self.head!r} body={self.body[:100]!r}>"


def strict_requests(raw):
    """Split the bytes an origin received into requests, asserting that each one can be read
    one way only: CRLF lines, an origin-form target, HTTP/1.1, token names directly followed
    by ':', clean values, one Host, at most one of Content-Length or Transfer-Encoding:
    chunked, no field the edge must drop, a body exactly as framed. Returns StrictRequest
    objects: .line, .fields [(lower-case name, value bytes)], .body, .head (raw)."""
    out, pos = [], 0
    while pos < len(raw):
        start, end = pos, raw.find(b"\r\n\r\n", pos)
        assert end >= 0, f"incomplete request head at the origin: {raw[pos:pos + 200]!r}"
        lines = raw[pos:end].split(b"\r\n")
        for line in lines:
            assert b"\r" not in line and b"\n" not in line, f"bare CR or LF in {line!r}"
        assert _REQUEST_LINE.fullmatch(lines[0]), f"request line {lines[0]!r}"
        fields = []
        for line in lines[1:]:
            m = _FIELD_LINE.fullmatch(line)
            assert m, f"field line {line!r}"
            fields.append((m.group(1).decode().lower(), (m.group(2) or b"")))
        names = [n for n, _ in fields]
        assert names.count("host") == 1, f"Host fields: {fields!r}"
        for n in names:
            assert n not in NEVER_FORWARDED and not n.startswith("proxy-"), f"{n} forwarded"
            assert "_" not in n or n.replace("_", "-") not in _REPLACED, f"{n} aliases {n!r}"
        cl, te = names.count("content-length"), names.count("transfer-encoding")
        assert cl <= 1 and te <= 1 and not (cl and te), f"framing fields: {fields!r}"
        pos = end + 4
        values = dict(fields)
        if te:
            assert values["transfer-encoding"] == b"chunked", values["transfer-encoding"]
            body, pos = _strict_chunked(raw, pos)
        elif cl:
            assert re.fullmatch(rb"[0-9]+", values["content-length"])
            n = int(values["content-length"])
            assert len(raw) >= pos + n, "body cut short"
            body, pos = raw[pos:pos + n], pos + n
        else:
            body = b""
        out.append(StrictRequest(lines[0], fields, body, raw[start:end]))
    return out


def chunked(body, size=1000):
    """body encoded in chunks of size bytes, with the last chunk."""
    out = b""
    for i in range(0, len(body), size):
        piece = body[i:i + size]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    return out + b"0\r\n\r\n"


class Client(Stream):
    """A visitor: one TCP connection to verge."""

    def __init__(self, port, host="127.0.0.1", timeout=IO_TIMEOUT, rcvbuf=None, source=None):
        """source: a local address to connect from (any of 127/8 works on loopback), so a
        test can be several visitors as far as per-address limits go."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(timeout)
        try:
            if source:
                sock.bind((source, 0))
            sock.connect((host, port))
        except OSError:
            sock.close()
            raise
        super().__init__(sock, timeout)

    def request(self, method="GET", target="/", host="a.test", headers=(), body=None,
                version="HTTP/1.1", sink=None, deadline=None):
        self.send(build_request(method, target, host, headers, body, version))
        return self.read_response(method, sink=sink, deadline=deadline)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def http(port, method="GET", target="/", host="a.test", headers=(), body=None,
         version="HTTP/1.1", timeout=IO_TIMEOUT):
    """One request on a fresh connection."""
    with Client(port, timeout=timeout) as c:
        return c.request(method, target, host, headers, body, version)


# --------------------------------------------------------------------------- scripted origin

class OriginConn(Stream):
    """One connection accepted by a ScriptedOrigin, handed to the test's handler."""

    def __init__(self, sock, origin, index):
        super().__init__(sock, origin.timeout)
        self.origin = origin
        self.index = index
        self.record = True
        self.requests = []

    def read_request(self):
        req = super().read_request()
        if req is not None:
            self.requests.append(req)
            with self.origin.lock:
                self.origin.requests.append(req)
            self.origin.request_event.set()
        return req

    def respond(self, status=200, body=b"ok", headers=(), reason=None, content_length=True):
        reason = reason or {200: "OK", 204: "No Content", 304: "Not Modified"}.get(status, "X")
        lines = [f"HTTP/1.1 {status} {reason}"]
        items = headers.items() if isinstance(headers, dict) else headers
        for k, v in items:
            lines.append(f"{k}: {v}")
        if content_length and status not in (204, 304):
            lines.append(f"Content-Length: {len(body)}")
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def sleep(self, seconds):
        """Sleep, returning early (True) if the origin is being stopped."""
        return self.origin.stopping.wait(seconds)


def serve_ok(conn):
    """Default handler: keep-alive, answer every request 200 "ok"."""
    while True:
        req = conn.read_request()
        if req is None:
            return
        conn.respond(200, b"ok", headers=[("Content-Type", "text/plain")])


class ScriptedOrigin:
    """A tiny threaded TCP server; handler(conn: OriginConn) scripts each connection."""

    def __init__(self, handler=None, timeout=IO_TIMEOUT, host="127.0.0.1"):
        self.handler = handler or serve_ok
        self.timeout = timeout
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.request_event = threading.Event()
        self.requests = []
        self.conns = []
        self.errors = []
        self.accepted = 0
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(128)
        self.sock.settimeout(0.2)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.threads = []
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    @property
    def hostport(self):
        return f"{self.host}:{self.port}"

    @property
    def connections(self):
        with self.lock:
            return self.accepted

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                s, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                conn = OriginConn(s, self, self.accepted)
                self.conns.append(conn)
            t = threading.Thread(target=self._run, args=(conn,), daemon=True)
            t.start()
            self.threads.append(t)

    def _run(self, conn):
        try:
            self.handler(conn)
        except (OSError, ConnectionClosed) as e:
            if not self.stopping.is_set():
                with self.lock:
                    self.errors.append(repr(e))
        except Exception as e:  # a bug in the test's handler
            with self.lock:
                self.errors.append(repr(e))
        finally:
            conn.close()

    def wait_requests(self, n, timeout=LOG_WAIT):
        return wait_until(lambda: len(self.requests) >= n, timeout,
                          what=f"{n} request(s) at the scripted origin")

    def stop(self):
        self.stopping.set()
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        self.thread.join(timeout=2)
        for t in self.threads:
            t.join(timeout=2)


# --------------------------------------------------------------------------- nginx origin

BIG_SIZE = 1 << 30
BIG_HEAD = b"BEGIN-OF-BIGFILE"
BIG_TAIL = b"END-OF-BIG-FILE\n"


class NginxOrigin:
    """Debian's nginx with a generated configuration, all state under its own directory."""

    def __init__(self, base_dir):
        self.dir = Path(base_dir)
        self.www = self.dir / "www"
        for d in ("www", "tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi",
                  "logs"):
            (self.dir / d).mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host = "127.0.0.1"
        self.files = {}
        self._write_files()
        self.conf = self.dir / "nginx.conf"
        self.conf.write_text(self._conf())
        self.access_path = self.dir / "logs" / "access.log"
        self.error_path = self.dir / "logs" / "error.log"
        self.proc = spawn([NGINX_BIN, "-p", self.dir, "-c", self.conf, "-e", self.error_path],
                          self.dir, self.dir / "stdout", self.dir / "stderr")
        deadline = time.monotonic() + READY_TIMEOUT
        while not can_connect(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                stop_process(self.proc)
                raise RuntimeError("nginx origin did not start:\n"
                                   + read_text(self.dir / "stderr") + read_text(self.error_path))
            time.sleep(0.02)

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    @property
    def hostport(self):
        return f"{self.host}:{self.port}"

    def _write_files(self):
        def put(name, data):
            (self.www / name).write_bytes(data)
            self.files[name] = data
        put("index.html", b"<html><body>hello from nginx</body></html>\n")
        put("small.txt", b"small file\n")
        for i in range(10):
            put(f"p{i}.txt", f"pipelined body number {i}\n".encode())
        put("64k.bin", bytes(range(256)) * 256)
        # A sparse 1 GiB file with markers at both ends (the middle is zeros).
        with open(self.www / "big.bin", "wb") as f:
            f.truncate(BIG_SIZE)
            f.write(BIG_HEAD)
            f.seek(BIG_SIZE - len(BIG_TAIL))
            f.write(BIG_TAIL)

    def _conf(self):
        d = self.dir
        user = "user root;\n" if os.geteuid() == 0 else ""
        echo = ("method=$request_method uri=$request_uri host=$http_host "
                "xff=$http_x_forwarded_for proto=$http_x_forwarded_proto via=$http_via "
                "rid=$http_x_request_id conn=$connection\\n")
        return f"""{user}daemon off;
master_process off;
worker_processes 1;
pid {d}/logs/nginx.pid;
error_log {d}/logs/error.log info;
events {{ worker_connections 1024; }}
http {{
    log_format conn '$connection $connection_requests "$request" $status $body_bytes_sent "$http_x_request_id"';
    access_log {d}/logs/access.log conn;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    types {{ text/html html; text/plain txt; application/octet-stream bin; }}
    default_type application/octet-stream;
    sendfile on;
    keepalive_requests 100000;
    keepalive_timeout 300s;
    server {{
        listen 127.0.0.1:{self.port};
        server_name _;
        root {self.www};
        location / {{ }}
        location /echo {{
            default_type text/plain;
            add_header X-Origin nginx;
            add_header X-Seen-Host $http_host;
            return 200 "{echo}";
        }}
    }}
}}
"""

    def access_lines(self):
        return [l for l in read_text(self.access_path).splitlines() if l.strip()]

    def connection_ids(self):
        """Distinct nginx $connection numbers in its access log: origin connections used."""
        return {l.split(" ", 1)[0] for l in self.access_lines()}

    def stop(self):
        stop_process(self.proc, signal.SIGTERM, 5)


# --------------------------------------------------------------------------- verge

_RELOADED = re.compile(r"^(?!.*(?:not reloaded|fail|error|invalid)).*\breloaded\b.*$",
                       re.I | re.M)


class Verge:
    """One verge process under test."""

    _count = 0

    def __init__(self, tmp_path):
        Verge._count += 1
        self.dir = Path(tmp_path) / f"verge{Verge._count}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.admin_port = free_port()
        self.config_path = self.dir / "verge.yaml"
        self.access_path = self.dir / "access.log"
        self.error_path = self.dir / "error.log"
        self.stdout_path = self.dir / "stdout"
        self.stderr_path = self.dir / "stderr"
        self.proc = None
        self.argv = None
        self.admin_enabled = True

    # configuration -----------------------------------------------------------------
    def build_config(self, zones, **top):
        cfg = {
            "listen": [f"127.0.0.1:{self.port}"],
            "workers": 2,
            "edge_name": EDGE_NAME,
            "logs": {"access": str(self.access_path), "access_format": "combined",
                     "error": str(self.error_path), "level": "info"},
            "admin": {"listen": f"127.0.0.1:{self.admin_port}"},
            "zones": zones,
        }
        if os.environ.get("VERGE_TEST_IO_URING") == "0":  # make e2e-epoll
            cfg["io_uring"] = False
        return deep_merge(cfg, top)

    def write_config(self, config):
        text = config if isinstance(config, str) else to_yaml(config) + "\n"
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.config_path)
        if not isinstance(config, str):
            self.admin_enabled = config.get("admin") not in ("off", False)
        return text

    # process -----------------------------------------------------------------------
    def start(self, argv=None):
        self.argv = argv or [VERGE_BIN, "serve", "-c", self.config_path]
        prefix = [a.replace("{dir}", str(self.dir)) for a in shlex.split(VERGE_PREFIX)]
        self.proc = spawn(prefix + list(self.argv), self.dir, self.stdout_path, self.stderr_path)
        self.wait_ready()
        return self

    def wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT
        ports = [self.port] + ([self.admin_port] if self.admin_enabled else [])
        pending = list(ports)
        while pending:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"verge exited with {self.proc.returncode} before it was ready\n"
                    + self.diagnostics())
            if time.monotonic() > deadline:
                raise AssertionError(f"verge not accepting on {pending} after "
                                     f"{READY_TIMEOUT}s\n" + self.diagnostics())
            pending = [p for p in pending if not can_connect(p)]
            if pending:
                time.sleep(0.02)
        if self.admin_enabled:
            # The readiness probe may sit in the accept queue until a worker takes it: wait
            # until it is counted and closed, so tests can take counter baselines.
            def probe_counted():
                m = self.metrics()
                return (m.value("verge_connections_total") >= 1
                        and m.value("verge_connections_active") == 0)
            wait_until(probe_counted, timeout=READY_TIMEOUT, what="readiness probe counted")

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        os.kill(self.proc.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Signal and wait; returns the exit code. AssertionError if it had to be killed."""
        timeout *= TIMEOUT_SCALE
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            return self.proc.returncode
        os.kill(self.proc.pid, sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            raise AssertionError(f"verge did not exit within {timeout}s of signal {sig}")

    def kill_quietly(self):
        if self.proc is not None and self.proc.poll() is None:
            stop_process(self.proc, signal.SIGTERM, 5)

    def rss_kib(self):
        return rss_kib(self.proc.pid)

    # logs --------------------------------------------------------------------------
    def access_log(self):
        return read_text(self.access_path)

    def access_lines(self):
        return [l for l in self.access_log().splitlines() if l.strip()]

    def wait_access(self, predicate=None, count=None, timeout=LOG_WAIT):
        """Wait for an access line matching predicate (returned), or for count lines."""
        if count is not None:
            return wait_until(lambda: len(self.access_lines()) >= count and self.access_lines(),
                              timeout, what=f"{count} access log line(s)")
        def find():
            for line in self.access_lines():
                if predicate(line):
                    return line
            return None
        return wait_until(find, timeout, what="a matching access log line")

    def access_line_for(self, request_id, timeout=LOG_WAIT):
        return self.wait_access(lambda l: request_id in l, timeout=timeout)

    def error_log(self):
        return read_text(self.error_path)

    def wait_error_log(self, pattern, timeout=LOG_WAIT, start=0):
        rx = re.compile(pattern)
        return wait_until(lambda: rx.search(self.error_log()[start:]), timeout,
                          what=f"error log matching {pattern!r}")

    def diagnostics(self, tail=4000):
        parts = []
        for label, path in (("stderr", self.stderr_path), ("stdout", self.stdout_path),
                            ("error.log", self.error_path)):
            text = read_text(path)
            if text:
                parts.append(f"--- verge {label} (last {tail} chars) ---\n{text[-tail:]}")
        return "\n".join(parts)

    # admin -------------------------------------------------------------------------
    def admin(self, target):
        return http(self.admin_port, "GET", target, host=f"127.0.0.1:{self.admin_port}",
                    headers=[("Connection", "close")])

    def metrics(self):
        resp = self.admin("/metrics")
        assert resp.status == 200, resp
        return Metrics(resp.body.decode())

    # reload ------------------------------------------------------------------------
    def reload(self, config, expect_ok=True, timeout=10.0):
        """Write the new configuration, SIGHUP, and wait for the error log to say so."""
        timeout *= TIMEOUT_SCALE
        before = self.error_log()
        n_before = len(_RELOADED.findall(before))
        self.write_config(config)
        self.send_signal(signal.SIGHUP)
        if expect_ok:
            wait_until(lambda: len(_RELOADED.findall(self.error_log())) > n_before, timeout,
                       what="'reloaded' in the error log")
        else:
            rx = re.compile(re.escape(str(self.config_path)) + r":\d+:\d+")
            wait_until(lambda: rx.search(self.error_log()[len(before):]), timeout,
                       what="FILE:LINE:COL in the error log")

    # requests ----------------------------------------------------------------------
    def client(self, **kw):
        return Client(self.port, **kw)

    def get(self, target="/", host="a.test", **kw):
        return http(self.port, "GET", target, host, **kw)

    def request(self, method="GET", target="/", host="a.test", **kw):
        return http(self.port, method, target, host, **kw)


def run_verge(args, timeout=20.0, cwd=None):
    """Run verge to completion (-t, version); returns CompletedProcess."""
    return subprocess.run([str(VERGE_BIN)] + [str(a) for a in args], cwd=cwd,
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                          preexec_fn=_die_with_parent)


def nginx_available():
    return NGINX_BIN.exists() and shutil.which(str(NGINX_BIN)) is not None


# --------------------------------------------------------------------------- tiny origin

class TinyOrigin:
    """An HTTP origin on a chosen port that can start late: answers 200 "up". With tls (an
    ssl.SSLContext) it speaks HTTPS; port 0 picks a free one (self.port)."""

    def __init__(self, port, host="127.0.0.1", body=b"up\n", status=200, headers=(),
                 tls=None):
        self.paths = []
        self.status = status
        origin = self

        class Handler(http_server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: none pooled

            def do_GET(handler):
                origin.paths.append(handler.path)
                handler.send_response(origin.status)
                handler.send_header("Content-Length", str(len(body)))
                for name, value in headers:
                    handler.send_header(name, value)
                handler.end_headers()
                handler.wfile.write(body)

            def log_message(self, *args):
                pass

        class Server(http_server.ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True

            def get_request(self):
                sock, peer = self.socket.accept()
                if tls is None:
                    return sock, peer
                sock.settimeout(IO_TIMEOUT)  # the handshake happens in the handler's thread
                return tls.wrap_socket(sock, server_side=True,
                                       do_handshake_on_connect=False), peer

            def handle_error(self, request, client_address):
                pass  # a client that gives up (during a handshake) is part of the tests

        self.server = Server((host, port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- namespaces

NETNS_LOCK = "/tmp/verge-netns.lock"


class NetnsUnavailable(Exception):
    """This machine cannot create network namespaces at all (no root, no CAP_SYS_ADMIN)."""


def netns_tools_missing():
    """The reason namespace tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, veth pairs, nftables)"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"needs {tool} (./dev setup installs iproute2 and nftables)"
    return None


def sh(*args, ns=None, check=True):
    """Run a command, inside namespace ns if given; bounded in time."""
    cmd = (["ip", "netns", "exec", ns] if ns else []) + [str(a) for a in args]
    return subprocess.run(cmd, check=check, capture_output=True, timeout=10)


_netns_lock_depth = 0  # fixtures of one test run nest (a module's chain, a test's host)


@contextlib.contextmanager
def netns_lock():
    """Exclusive, machine-wide: namespace fixtures of one test run at a time, whoever runs
    it (other worktrees' test runs included), so routes and addresses never collide.
    Re-entrant within this process: its own fixtures use disjoint addresses."""
    global _netns_lock_depth
    if _netns_lock_depth > 0:
        _netns_lock_depth += 1
        try:
            yield
        finally:
            _netns_lock_depth -= 1
        return
    with open(NETNS_LOCK, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        _netns_lock_depth = 1
        try:
            yield
        finally:
            _netns_lock_depth = 0
            fcntl.flock(f, fcntl.LOCK_UN)


class Netns:
    """One namespace with a unique name; deleting it removes its veth ends and routes."""

    def __init__(self, prefix):
        self.name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        made = subprocess.run(["ip", "netns", "add", self.name], capture_output=True,
                              timeout=10)
        if made.returncode != 0:
            raise NetnsUnavailable("cannot create a network namespace here: "
                                   + made.stderr.decode().strip())
        self.sh("ip", "link", "set", "lo", "up")
        for key in ("net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0",
                    "net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.default.disable_ipv6=0"):
            self.sh("sysctl", "-qw", key, check=False)

    def sh(self, *args, check=True):
        return sh(*args, ns=self.name, check=check)

    def popen(self, argv, **kw):
        """A process inside the namespace (stop it with stop_process, by its PID)."""
        return subprocess.Popen(["ip", "netns", "exec", self.name] + [str(a) for a in argv],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent, **kw)

    def delete(self):
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=10)


def veth(a, a_if, b, b_if):
    """A veth pair from namespace a (None: this one) to namespace b, both ends up."""
    sh("ip", "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b.name,
       ns=a.name if a else None)
    sh("ip", "link", "set", a_if, "up", ns=a.name if a else None)
    b.sh("ip", "link", "set", b_if, "up")


def addr(ns, ifname, cidr):
    family = ["-6"] if ":" in cidr else []
    extra = ["nodad"] if ":" in cidr else []
    sh("ip", *family, "addr", "add", cidr, "dev", ifname, *extra, ns=ns.name if ns else None)


class FirewalledHost:
    """A namespace at NS_IP behind one veth pair, with an nftables input chain:
    81 dropped, 82 rejected with ICMP host-unreachable, 83 with a TCP reset, 84 with ICMP
    admin-prohibited, 85 with ICMP port-unreachable (iptables REJECT's default)."""

    HOST_IP, NS_IP = "198.18.77.1", "198.18.77.2"  # RFC 2544 benchmarking space, /30
    RULES = [("81", ["drop"]), ("82", ["reject", "with", "icmp", "type", "host-unreachable"]),
             ("83", ["reject", "with", "tcp", "reset"]),
             ("84", ["reject", "with", "icmp", "type", "admin-prohibited"]),
             ("85", ["reject", "with", "icmp", "type", "port-unreachable"])]

    def __init__(self):
        self.ns = Netns("verge-fw")
        self.veth = "vfw" + uuid.uuid4().hex[:8]
        veth(None, self.veth, self.ns, "eth0")
        addr(None, self.veth, f"{self.HOST_IP}/30")
        addr(self.ns, "eth0", f"{self.NS_IP}/30")
        self.ns.sh("nft", "add", "table", "inet", "fw")
        self.ns.sh("nft", "add", "chain", "inet", "fw", "input",
                   "{ type filter hook input priority 0; policy accept; }")
        for port, verdict in self.RULES:
            self.ns.sh("nft", "add", "rule", "inet", "fw", "input", "tcp", "dport", port,
                       *verdict)

    def close(self):
        self.ns.delete()


class RouterChain:
    """This namespace -> router 1 -> ... -> router N -> target, joined by veth pairs, with
    forwarding on and routes both ways, IPv4 /30s in 198.18.90.0/24 and IPv6 /64s in
    2001:2:90::/48
    (benchmarking space, clear of FirewalledHost). A traceroute sees the N routers, then the
    target. drop_tcp() puts a DROP rule on the last router's forward chain."""

    V4, V6 = "198.18.90", "2001:2:90"

    def __init__(self, routers=3):
        self.spaces = []
        self.links = []  # (near address, far address) per link, v4 and v6
        try:
            self._build(routers)
        except Exception:
            self.close()
            raise

    def _ips(self, link):
        import ipaddress
        v6 = [str(ipaddress.IPv6Address(f"{self.V6}:{link}::{n}")) for n in (1, 2)]
        return f"{self.V4}.{4 * link + 1}", f"{self.V4}.{4 * link + 2}", v6[0], v6[1]

    def _build(self, routers):
        for i in range(routers):
            self.spaces.append(Netns(f"verge-r{i + 1}"))
        self.target_ns = Netns("verge-tgt")
        self.spaces.append(self.target_ns)
        near = None
        for link, far in enumerate(self.spaces):
            a_if, b_if = f"vch{uuid.uuid4().hex[:8]}", f"up{link}"
            if near is not None:
                a_if = f"dn{link}"
            veth(near, a_if, far, b_if)
            n4, f4, n6, f6 = self._ips(link)
            addr(near, a_if, f"{n4}/30")
            addr(far, b_if, f"{f4}/30")
            addr(near, a_if, f"{n6}/64")
            addr(far, b_if, f"{f6}/64")
            far.sh("ip", "route", "add", "default", "via", n4)
            far.sh("ip", "-6", "route", "add", "default", "via", n6)
            if near is None:
                self.host_if = a_if
            else:
                near.sh("sysctl", "-qw", "net.ipv4.ip_forward=1")
                near.sh("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
            self.links.append((n4, f4, n6, f6))
            near = far
        # this namespace and each router send the links further down the chain onwards
        # (only those: a summary route would swallow the way back)
        for i, ns in enumerate([None] + self.spaces[:-1]):
            _, next4, _, next6 = self.links[i]
            for far_link in range(i + 1, len(self.links)):
                sh("ip", "route", "add", f"{self.V4}.{4 * far_link}/30", "via", next4,
                   ns=ns.name if ns else None)
                sh("ip", "-6", "route", "add", f"{self.V6}:{far_link}::/64", "via", next6,
                   ns=ns.name if ns else None)
        self.target_v4, self.target_v6 = self.links[-1][1], self.links[-1][3]
        self.router_v4 = [self.links[i][1] for i in range(routers)]
        self.router_v6 = [self.links[i][3] for i in range(routers)]

    @property
    def last_router(self):
        return self.spaces[-2]

    def drop_tcp(self, port):
        """The last router silently drops TCP to port on its way to the target."""
        r = self.last_router
        r.sh("nft", "add", "table", "inet", "fw")
        r.sh("nft", "add", "chain", "inet", "fw", "forward",
             "{ type filter hook forward priority 0; policy accept; }")
        r.sh("nft", "add", "rule", "inet", "fw", "forward", "tcp", "dport", str(port), "drop")

    def serve_http(self, port, directory):
        """python3 http.server for directory in the target namespace (both families)."""
        proc = self.target_ns.popen(["/usr/bin/python3", "-m", "http.server", port, "--bind",
                                     "::", "--directory", directory])
        deadline = time.monotonic() + READY_TIMEOUT
        while self.target_ns.sh("python3", "-c", f"import socket; socket.create_connection("
                                f"('127.0.0.1', {port}), 0.5)", check=False).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_process(proc)
                raise RuntimeError("the HTTP server in the target namespace did not start")
            time.sleep(0.05)
        return proc

    def close(self):
        for ns in self.spaces:  # their veth pairs go with them, and the routes through them
            ns.delete()


# --------------------------------------------------------------------------- TLS

class CertAuthority:
    """A certificate authority made with the openssl command line, issuing leaf
    certificates with chosen names and validity (backdated ones for expiry tests)."""

    def __init__(self, directory):
        self.dir = Path(directory)
        (self.dir / "db").mkdir(parents=True, exist_ok=True)
        (self.dir / "db" / "index").write_text("")
        (self.dir / "db" / "serial").write_text("01\n")
        self.cert, self.key = self.dir / "ca.pem", self.dir / "ca.key"
        self._openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key,
                      "-out", self.cert, "-days", "30", "-subj", "/CN=Verge Test CA")
        self.count = 0

    def _openssl(self, *args):
        subprocess.run(["openssl", *[str(a) for a in args]], check=True, capture_output=True,
                       timeout=30, cwd=self.dir)

    def issue(self, cn, sans="DNS:localhost,IP:127.0.0.1", start=None, end=None):
        """(cert, key) for cn; start/end as YYYYMMDDHHMMSSZ (default: now, 30 days)."""
        self.count += 1
        base = self.dir / f"leaf{self.count}"
        cnf = base.with_suffix(".cnf")
        cnf.write_text("[ca]\ndefault_ca = test\n[test]\ndatabase = db/index\n"
                       "new_certs_dir = db\nserial = db/serial\ndefault_md = sha256\n"
                       "policy = any\nunique_subject = no\ndefault_days = 30\n"
                       f"[any]\ncommonName = supplied\n[ext]\nsubjectAltName = {sans}\n")
        self._openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{base}.key",
                      "-out", f"{base}.csr", "-subj", f"/CN={cn}")
        dates = (["-startdate", start] if start else []) + (["-enddate", end] if end else [])
        self._openssl("ca", "-batch", "-config", cnf, "-cert", self.cert, "-keyfile", self.key,
                      "-in", f"{base}.csr", "-out", f"{base}.pem", "-extensions", "ext", *dates)
        return Path(f"{base}.pem"), Path(f"{base}.key")


def self_signed_cert(directory, cn="localhost"):
    """A self-signed (cert, key) for cn, valid for 30 days."""
    d = Path(directory)
    cert, key = d / f"self-{cn}.pem", d / f"self-{cn}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "30", "-subj", f"/CN={cn}",
                    "-addext", f"subjectAltName=DNS:{cn}"],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def tls_origin(cert, key, body=b"secure\n"):
    """An HTTPS TinyOrigin on 127.0.0.1 with this certificate: 200, Cache-Control: max-age=60."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    return TinyOrigin(0, body=body, headers=[("Cache-Control", "max-age=60")], tls=ctx)
