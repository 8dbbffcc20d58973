"""A programmable DNS server for end-to-end tests (standard library only): UDP and TCP on
127.0.0.1, answers set at run time per name (A/AAAA with TTLs, CNAME chains followed
within the server, NXDOMAIN/SERVFAIL/REFUSED, NODATA with an SOA for negative caching,
silence, delays), and a count of the queries."""

import socket
import struct
import threading
import time

QTYPES = {1: "A", 28: "AAAA", 6: "SOA", 5: "CNAME"}
RCODES = {"NOERROR": 0, "SERVFAIL": 2, "NXDOMAIN": 3, "REFUSED": 5}


def _norm(name):
    return name.lower().rstrip(".")


def _encode_name(name):
    out = b""
    for label in _norm(name).split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def _parse_question(data):
    """(id, flags, qname, qtype, question bytes) or None when malformed."""
    if len(data) < 12:
        return None
    qid, flags, qd = struct.unpack("!HHH", data[:6])
    if qd < 1 or flags & 0x8000:
        return None
    labels, pos = [], 12
    while True:
        if pos >= len(data):
            return None
        n = data[pos]
        if n == 0:
            pos += 1
            break
        if n & 0xC0 or pos + 1 + n > len(data):
            return None
        labels.append(data[pos + 1:pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    if pos + 4 > len(data):
        return None
    qtype, _qclass = struct.unpack("!HH", data[pos:pos + 4])
    return qid, flags, ".".join(labels).lower(), qtype, data[12:pos + 4]


class DNSServer:
    """dns = DNSServer(); dns.start(); dns.set_a("origin.test", ["127.0.0.1"], ttl=5)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.records = {}  # name -> dict(kind=..., ...)
        self.drop_all = False
        self.query_log = []  # (time, name, qtype, transport)
        self.stopping = threading.Event()
        self.udp, self.tcp = self._bind_pair()
        self.port = self.udp.getsockname()[1]
        self.threads = []

    @staticmethod
    def _bind_pair():
        """A UDP and a TCP socket on the same free port (retried: the TCP port may be taken)."""
        for _ in range(50):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind(("127.0.0.1", udp.getsockname()[1]))
                tcp.listen(16)
                return udp, tcp
            except OSError:
                udp.close()
                tcp.close()
        raise OSError("no free port for both UDP and TCP")

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    # programming ---------------------------------------------------------------------
    def _set(self, name, **rec):
        with self.lock:
            self.records[_norm(name)] = rec

    def _set_addrs(self, name, kind, ips, ttl):
        with self.lock:
            rec = self.records.get(_norm(name))
            if not rec or rec.get("kind") != "addr":
                rec = {"kind": "addr", "A": [], "AAAA": [], "ttl": ttl}
            rec[kind], rec["ttl"] = list(ips), ttl
            self.records[_norm(name)] = rec

    def set_a(self, name, ips, ttl=30):
        self._set_addrs(name, "A", ips, ttl)

    def set_aaaa(self, name, ips, ttl=30):
        self._set_addrs(name, "AAAA", ips, ttl)

    def set_rcode(self, name, rcode, soa_minimum=30):
        assert rcode in RCODES, rcode
        self._set(name, kind="rcode", rcode=rcode, soa_minimum=soa_minimum)

    def set_nodata(self, name, soa_minimum=30):
        self._set(name, kind="addr", A=[], AAAA=[], ttl=0, soa_minimum=soa_minimum)

    def set_cname(self, name, target, ttl=30):
        """name is an alias of target; queries for name get the chain and target's answer."""
        self._set(name, kind="cname", target=_norm(target), ttl=ttl)

    def set_drop(self, name):
        self._set(name, kind="drop")

    def set_delay(self, name, seconds):
        with self.lock:
            self.records.setdefault(_norm(name), {"kind": "addr", "A": [], "AAAA": [],
                                                  "ttl": 30})["delay"] = seconds

    def clear(self, name):
        with self.lock:
            self.records.pop(_norm(name), None)

    def queries(self, name, qtype="A"):
        with self.lock:
            return sum(1 for _, n, t, _ in self.query_log if n == _norm(name) and t == qtype)

    # answering -----------------------------------------------------------------------
    def _soa(self, name, minimum):
        rdata = (_encode_name("ns." + name) + _encode_name("admin." + name)
                 + struct.pack("!IIIII", 1, 3600, 600, 86400, minimum))
        return _encode_name(name) + struct.pack("!HHIH", 6, 1, minimum, len(rdata)) + rdata

    def answer(self, data, transport):
        """The response bytes for a query, or None to stay silent."""
        q = _parse_question(data)
        if q is None:
            return None
        qid, flags, name, qtype, question = q
        with self.lock:
            self.query_log.append((time.monotonic(), name, QTYPES.get(qtype, str(qtype)),
                                   transport))
            rec = dict(self.records.get(name, {"kind": "rcode", "rcode": "NXDOMAIN",
                                               "soa_minimum": 30}))
            drop = self.drop_all
        if drop or rec["kind"] == "drop":
            return None
        if rec.get("delay"):
            time.sleep(rec["delay"])
        rcode, answers, authority = 0, [], []
        owner = b"\xc0\x0c"
        for _ in range(8):  # follow a CNAME chain within this server
            if rec["kind"] != "cname":
                break
            rdata = _encode_name(rec["target"])
            answers.append(owner + struct.pack("!HHIH", 5, 1, rec["ttl"], len(rdata)) + rdata)
            owner = _encode_name(rec["target"])
            name = rec["target"]
            with self.lock:
                rec = dict(self.records.get(name, {"kind": "rcode", "rcode": "NXDOMAIN",
                                                   "soa_minimum": 30}))
        if rec["kind"] == "rcode":
            rcode = RCODES[rec["rcode"]]
            if rec["rcode"] == "NXDOMAIN":
                authority.append(self._soa(name, rec["soa_minimum"]))
        else:
            kind = QTYPES.get(qtype)
            found = False
            for ip in rec.get(kind, []) if kind in ("A", "AAAA") else []:
                family = socket.AF_INET if kind == "A" else socket.AF_INET6
                rdata = socket.inet_pton(family, ip)
                answers.append(owner + struct.pack("!HHIH", qtype, 1, rec["ttl"],
                                                   len(rdata)) + rdata)
                found = True
            if not found:
                authority.append(self._soa(name, rec.get("soa_minimum", 30)))
        rflags = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | rcode
        head = struct.pack("!HHHHHH", qid, rflags, 1, len(answers), len(authority), 0)
        out = head + question + b"".join(answers) + b"".join(authority)
        if transport == "udp" and len(out) > 512:
            out = struct.pack("!HHHHHH", qid, rflags | 0x0200, 1, 0, 0, 0) + question
        return out

    # serving -------------------------------------------------------------------------
    def _serve_udp(self):
        self.udp.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                data, peer = self.udp.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._reply_udp, args=(data, peer), daemon=True).start()

    def _reply_udp(self, data, peer):
        try:
            out = self.answer(data, "udp")
            if out is not None:
                self.udp.sendto(out, peer)
        except Exception:  # a test server never dies of a bad packet
            pass

    def _serve_tcp(self):
        self.tcp.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                conn, _ = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._reply_tcp, args=(conn,), daemon=True).start()

    def _reply_tcp(self, conn):
        with conn:
            try:
                conn.settimeout(5)
                while True:
                    size = conn.recv(2)
                    if len(size) < 2:
                        return
                    want, data = struct.unpack("!H", size)[0], b""
                    while len(data) < want:
                        piece = conn.recv(want - len(data))
                        if not piece:
                            return
                        data += piece
                    out = self.answer(data, "tcp")
                    if out is None:
                        return
                    conn.sendall(struct.pack("!H", len(out)) + out)
            except Exception:
                return

    def start(self):
        for target in (self._serve_udp, self._serve_tcp):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=2)
        self.udp.close()
        self.tcp.close()


def query(port, name, qtype=1, timeout=1.0, transport="udp"):
    """A minimal client for the server's own tests: (rcode, [(type, ttl, rdata)], authority
    count) or None on timeout."""
    qid = 0x1234
    msg = (struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + _encode_name(name)
           + struct.pack("!HH", qtype, 1))
    if transport == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(timeout)
        try:
            s.sendto(msg, ("127.0.0.1", port))
            data = s.recv(4096)
        except socket.timeout:
            return None
        finally:
            s.close()
    else:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(struct.pack("!H", len(msg)) + msg)
            size = struct.unpack("!H", s.recv(2))[0]
            data = b""
            while len(data) < size:
                data += s.recv(size - len(data))
    _, flags, _, an, ns, _ = struct.unpack("!HHHHHH", data[:12])
    pos = 12 + len(_encode_name(name)) + 4
    records = []
    for _ in range(an):
        rtype, _, ttl, rdlen = struct.unpack("!HHIH", data[pos + 2:pos + 12])
        records.append((rtype, ttl, data[pos + 12:pos + 12 + rdlen]))
        pos += 12 + rdlen
    return flags & 0xF, records, ns
