"""costs.py - make profile: where Verge's time goes on the 1 KiB cache-hit path (or another
path with PROFILE_PATH, the error path with PROFILE_HOST=dead.test).

Runs Verge (1 worker) twice under valgrind --tool=callgrind in front of the bench origin:
once with only the warm-up (a miss that fills the cache, then one hit), once with the
warm-up and PROFILE_REQUESTS more hits over PROFILE_CONNS keep-alive connections. The
difference of the two is the cost of those hits alone, so start-up and shutdown cancel
out: instructions per request, the top functions by instructions (self and inclusive),
and calls per request to the allocator, locks and system-call wrappers. Then the same
load against a native Verge with strace -c attached to all its threads after the
warm-up: system calls per request. Prints a report; keeps the callgrind files in
bench/results/profile/ for callgrind_annotate or kcachegrind (see bench/README.md)."""
import os
import re
import selectors
import signal
import socket
import sys
import time

import rig
import servers

REQUESTS = int(os.environ.get("PROFILE_REQUESTS", 20000))
CONNS = int(os.environ.get("PROFILE_CONNS", 8))
PATH = os.environ.get("PROFILE_PATH", "/1k.bin")  # or /100k.bin, /1m.bin, /nostore.bin
HOST = os.environ.get("PROFILE_HOST")  # dead.test: the error path (its only origin is down)
# PROFILE_BROWSER=1: each request carries the fields a browser sends (rig.BROWSER_HEADERS)
EXTRA = "".join("%s: %s\r\n" % kv for kv in rig.BROWSER_HEADERS) \
    if os.environ.get("PROFILE_BROWSER", "") not in ("", "0") else ""
# Further zones, each with an exact host and a wildcard that no request of the profile
# names: the cost of finding a request's zone in a configuration of many sites.
ZONES = int(os.environ.get("PROFILE_ZONES", 0))
# PROFILE_MISS=1: each request for PATH?miss=N, a URL not asked before: the miss path
# (fetch, store, answer), as in the bench's miss-1k
MISS = os.environ.get("PROFILE_MISS", "") not in ("", "0")
# PROFILE_OBJECTS=N: N objects PATH?obj=I stored at start (in both runs, so they cancel out),
# then each request for the next of them, stepping by rig.OBJECT_STRIDE: the hits of the
# bench's hit-1k-many, over a working set instead of one object
OBJECTS = int(os.environ.get("PROFILE_OBJECTS", 0))
# PROFILE_CACHE_SIM=1: callgrind simulates the caches, its last level the size of this VM's
# L2 (2 MiB, 16-way, 64-byte lines): misses per request, as steady as instruction counts
CACHE_SIM = ["--cache-sim=yes", "--LL=2097152,16,64"] \
    if os.environ.get("PROFILE_CACHE_SIM", "") not in ("", "0") else []
STATUS = b"HTTP/1.1 503" if HOST == "dead.test" else b"HTTP/1.1 200"
TOP = int(os.environ.get("PROFILE_TOP", 15))
VERGE = os.environ.get("VERGE_BIN", os.path.join(rig.ROOT, "build", "verge"))
OUT = os.path.join(rig.BENCH, "results", "profile")
CALLERS = ("malloc", "realloc", "free", "pthread_mutex_lock", "epoll_ctl", "vsnprintf", "snprintf")
WATCH = ("malloc", "calloc", "realloc", "free", "strdup", "strndup", "pthread_mutex_lock",
         "read", "write", "writev", "recv", "send", "sendmsg", "epoll_wait", "epoll_ctl",
         "timerfd_settime", "clock_gettime", "accept4", "snprintf", "vsnprintf", "memcpy")


def load(port, n, conns):
    """n GET PATH over conns keep-alive connections, one request per write, each
    connection sending its next request when the last response has fully arrived."""
    host = HOST or "127.0.0.1:%d" % port

    def request(i):
        if MISS:
            path = "%s?miss=%d" % (PATH, i)
        elif OBJECTS:
            path = rig.object_path(PATH, i * rig.OBJECT_STRIDE % OBJECTS)
        else:
            path = PATH
        return ("GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (path, host, EXTRA)).encode()
    sel, sent, done = selectors.DefaultSelector(), 0, 0
    for _ in range(min(conns, n)):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(request(sent))
        sent += 1
        sel.register(s, selectors.EVENT_READ, [b""])
    deadline = time.monotonic() + 600
    while done < n and time.monotonic() < deadline:
        for key, _ in sel.select(1.0):
            buf = key.data[0] + key.fileobj.recv(65536)
            while True:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", buf[:end])
                total = end + 4 + (int(m.group(1)) if m else 0)
                if len(buf) < total:
                    break
                if not buf.startswith(STATUS):
                    raise RuntimeError("profile: not a %s: %r" % (STATUS[9:].decode(), buf[:80]))
                buf, done = buf[total:], done + 1
                if sent < n:
                    key.fileobj.sendall(request(sent))
                    sent += 1
            key.data[0] = buf
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    if done < n:
        raise RuntimeError("profile: only %d of %d responses within the time limit" % (done, n))
    return done


class Callgrind:
    """Self and inclusive Ir per function, and call counts per callee, from one
    callgrind output file (its name compression and call lines)."""

    def __init__(self, path):
        self.self_ir, self.incl_calls, self.calls, self.total = {}, {}, {}, 0
        self.edges = {}  # (caller name, callee name) -> calls
        self.events = {}  # the whole run's count of each event (Ir, and cache misses)
        names, files, fn, fl, after_call, callee = {}, {}, None, "?", False, None
        with open(path) as f:
            for line in f:
                c = line[0]
                if c.isdigit() or c in "+-*":
                    cost = int(line.split()[1]) if len(line.split()) > 1 else 0
                    if after_call:
                        self.incl_calls[fn] = self.incl_calls.get(fn, 0) + cost
                        after_call = False
                    else:
                        self.self_ir[fn] = self.self_ir.get(fn, 0) + cost
                        self.total += cost
                elif line.startswith("fl="):
                    fl = _name(files, line[3:])
                elif line.startswith(("fi=", "fe=")):  # inlined code: the function stays
                    _name(files, line[3:])
                elif line.startswith(("cfi=", "cfl=")):
                    _name(files, line[4:])
                elif line.startswith("fn="):
                    fn = (_name(names, line[3:]), fl)
                elif line.startswith("cfn="):
                    callee = _name(names, line[4:])
                elif line.startswith("events:"):
                    event_names = line.split()[1:]
                elif line.startswith("totals:"):
                    self.events = dict(zip(event_names, map(int, line.split()[1:])))
                elif line.startswith("calls="):
                    n = int(line[6:].split()[0])
                    self.calls[callee] = self.calls.get(callee, 0) + n
                    edge = (fn[0], callee)
                    self.edges[edge] = self.edges.get(edge, 0) + n
                    after_call = True

    def inclusive(self, fn):
        return self.self_ir.get(fn, 0) + self.incl_calls.get(fn, 0)


def _name(table, text):
    """Resolve callgrind's "(id) name" / "(id)" compression."""
    text = text.strip()
    m = re.match(r"\((\d+)\)(?: (.*))?$", text)
    if not m:
        return text
    if m.group(2) is not None:
        table[m.group(1)] = m.group(2).split("@")[0]  # pthread_mutex_lock@@GLIBC_2.2.5
    return table.get(m.group(1), text)


def start_verge(procs, work, origin_port, wrapper, tag, io_uring=True):
    port, admin, dead = rig.free_ports(3)
    conf = rig.render("verge.yaml", work.path("verge-%s.yaml" % tag), dir=work.dir,
                          port=port, admin_port=admin, origin_port=origin_port,
                          dead_port=dead, workers=1, name="verge-" + tag,
                          sendfile_max=servers.SENDFILE_MAX)  # as make bench runs it
    with open(conf, "a") as f:
        for i in range(ZONES):
            f.write('  - { name: z%d, hosts: [ "h%d.example", "*.w%d.example" ], '
                    'origins: [ "http://127.0.0.1:%d" ] }\n' % (i, i, i, origin_port))
        if not io_uring:
            f.write("io_uring: false\n")
    p = procs.start("verge-" + tag, wrapper + [VERGE, "serve", "-c", conf],
                    log=work.path("verge-%s.out" % tag))
    rig.wait_port(port, p, timeout=60, what="verge (%s)" % tag)
    for _ in range(2):  # a miss that fills the cache, then a hit (or: the origin marked down)
        rig.http_get(port, PATH, host=HOST, timeout=30)
    if OBJECTS and rig.get_objects(port, PATH, range(OBJECTS), timeout=30):
        raise RuntimeError("profile: storing the %d objects %s: not all answered 200 with "
                           "the body" % (OBJECTS, rig.object_path(PATH, 0).replace("=0", "=N")))
    status, headers, _ = rig.http_get(port, PATH, host=HOST, timeout=30)
    want = "MISS" if PATH == "/nostore.bin" else "HIT"  # /nostore.bin: the pass-through
    if HOST is None and headers.get("x-cache") != want:
        raise RuntimeError("profile: %s is not a cache %s on Verge" % (PATH, want))
    if HOST == "dead.test" and status != 503:
        raise RuntimeError("profile: dead.test answered %d, not 503" % status)
    return p, port


def callgrind_run(procs, work, origin_port, tag, n):
    os.makedirs(OUT, exist_ok=True)
    out = os.path.join(OUT, "callgrind.%s.out" % tag)
    wrapper = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + CACHE_SIM
    # Valgrind holds its one lock through a thread's io_uring_enter (the other threads stop)
    # and cannot see what a ring writes: under callgrind, Verge reads and writes with epoll.
    p, port = start_verge(procs, work, origin_port, wrapper, tag, io_uring=False)
    if n:
        t = time.monotonic()
        load(port, n, CONNS)
        print("profile: %d requests under callgrind in %.1fs" % (n, time.monotonic() - t),
              file=sys.stderr)
    procs.stop(p, timeout=60)
    return Callgrind(out)


def strace_run(procs, work, origin_port, n):
    """System calls of all Verge's threads during n hits (strace -c, attached after warm-up)."""
    p, port = start_verge(procs, work, origin_port, [], "strace")
    tids = os.listdir("/proc/%d/task" % p.pid)
    out = work.path("strace.txt")
    cmd = ["strace", "-f", "-c", "-o", out] + [a for t in tids for a in ("-p", t)]
    st = procs.start("strace", cmd, log=work.path("strace.err"))
    time.sleep(1.0)  # attached
    load(port, n, CONNS)
    st.send_signal(signal.SIGINT)
    st.wait(30)
    procs.live.remove(st)
    procs.stop(p)
    calls = {}
    with open(out) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                calls[parts[-1]] = int(parts[3])
    return calls


def report(base, run, n, syscalls):
    ir = (run.total - base.total) / n
    what = "the error path (every origin down)" if HOST == "dead.test" else "GET " + PATH
    what += "?miss=N, each request a miss (PROFILE_MISS)" if MISS else ""
    what += "?obj=N, hits over %d stored objects (PROFILE_OBJECTS)" % OBJECTS if OBJECTS else ""
    print("\n# make profile: Verge, %s, 1 worker\n" % what)
    print("%d requests over %d keep-alive connections (one request per write), callgrind with "
          "the warm-up run subtracted, Verge with `io_uring: false` (callgrind cannot run its "
          "ring: it waits in epoll, with a read and a writev a request).%s%s\n" % (
              n, CONNS, " %d further zones (PROFILE_ZONES)." % ZONES if ZONES else "",
              " Each request with a browser's %d fields (PROFILE_BROWSER)." % len(rig.BROWSER_HEADERS)
              if EXTRA else ""))
    print("Instructions per request: %.0f Ir\n" % ir)
    if CACHE_SIM:
        miss = {e: (run.events.get(e, 0) - base.events.get(e, 0)) / n
                for e in ("D1mr", "D1mw", "DLmr", "DLmw")}
        print("Data cache misses per request (PROFILE_CACHE_SIM, simulated; last level: 2 MiB): "
              "L1 %.1f reads and %.1f writes, last level %.1f reads and %.1f writes\n" %
              (miss["D1mr"], miss["D1mw"], miss["DLmr"], miss["DLmw"]))
    print("Top %d functions by self instructions per request:\n" % TOP)
    print("| Ir/req self | % | Ir/req inclusive | function | file |\n|---:|---:|---:|---|---|")
    fns = set(run.self_ir) | set(base.self_ir)
    diff = {f: run.self_ir.get(f, 0) - base.self_ir.get(f, 0) for f in fns}
    for f in sorted(fns, key=lambda f: -diff[f])[:TOP]:
        incl = (run.inclusive(f) - base.inclusive(f)) / n
        print("| %.0f | %.1f | %.0f | %s | %s |" % (diff[f] / n, 100 * diff[f] / (ir * n),
                                                  incl, f[0], os.path.basename(f[1])))
    print("\nVerge's own functions (src/) by inclusive instructions per request:\n")
    print("| Ir/req inclusive | Ir/req self | function | file |\n|---:|---:|---|---|")
    incl = {f: (run.inclusive(f) - base.inclusive(f)) / n for f in fns if "/src/" in f[1]}
    for f in sorted(incl, key=lambda f: -incl[f])[:TOP]:
        print("| %.0f | %.0f | %s | %s |" % (incl[f], diff[f] / n, f[0], os.path.basename(f[1])))
    print("\nCalls per request (callgrind, any caller):\n")
    print("| function | calls/req |\n|---|---:|")
    for name in WATCH:
        c = run.calls.get(name, 0) - base.calls.get(name, 0)
        if c / n >= 0.005:
            print("| %s | %.2f |" % (name, c / n))
    print("\nWho calls them (calls per request by direct caller):\n")
    print("| function | callers |\n|---|---|")
    shown = 0
    for name in CALLERS:
        by = {}
        for (caller, callee), c in run.edges.items():
            if callee == name:
                by[caller] = by.get(caller, 0) + c - base.edges.get((caller, callee), 0)
        top = sorted(((c / n, who) for who, c in by.items() if c / n >= 0.01), reverse=True)
        if top:
            print("| %s | %s |" % (name, ", ".join("%s %.2f" % (w, c) for c, w in top[:6])))
            shown += 1
    if not shown:  # the table is not broken: this path calls none of them
        print("| %s | none called at 0.01 per request or more |" % ", ".join(CALLERS))
    print("\nSystem calls per request (strace -c on a native Verge, all threads, %d requests):\n" % n)
    print("| syscall | calls/req |\n|---|---:|")
    for name, c in sorted(syscalls.items(), key=lambda kv: -kv[1]):
        if c / n >= 0.005:
            print("| %s | %.2f |" % (name, c / n))
    print("| total | %.2f |" % (sum(syscalls.values()) / n))
    print("\nCallgrind files: %s (callgrind_annotate %s)" % (
        os.path.relpath(OUT, rig.ROOT), os.path.relpath(os.path.join(OUT, "callgrind.load.out"), rig.ROOT)))


def main():
    signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    procs, work = rig.Procs(), rig.Workdir()
    try:
        origin_port = rig.free_ports(1)[0]
        rig.Origin(procs, work, origin_port, 1, None)
        base = callgrind_run(procs, work, origin_port, "warmup", 0)
        run = callgrind_run(procs, work, origin_port, "load", REQUESTS)
        syscalls = strace_run(procs, work, origin_port, REQUESTS)
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        procs.stop_all()
        work.remove()
    report(base, run, REQUESTS, syscalls)


if __name__ == "__main__":
    main()
