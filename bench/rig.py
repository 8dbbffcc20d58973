"""rig.py - what make bench and make profile share: free loopback ports, the
configuration templates in bench/conf, the origin, processes started and stopped by PID,
and CPU time and RSS of a server with all its processes and threads, from /proc."""
import hashlib
import http.client
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
CLK_TCK = os.sysconf("SC_CLK_TCK")
SIZES = {"1k.bin": 1024, "100k.bin": 100 * 1024, "1m.bin": 1024 * 1024, "nostore.bin": 1024}
# What a browser sends with a GET of a page besides Host (Chrome 120 on Linux, ~560 bytes):
# the fields every server reads, where wrk alone sends none. No Cookie (Varnish's built-in
# VCL passes requests with one to the origin) and no Cache-Control (max-age=0 asks a cache
# to revalidate): each server is to answer it from its cache as it does wrk's request.
BROWSER_HEADERS = [
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                   "Chrome/120.0.0.0 Safari/537.36"),
    ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
               "*/*;q=0.8"),
    ("Accept-Language", "en-US,en;q=0.9"),
    ("Accept-Encoding", "gzip, deflate, br"),
    ("Referer", "https://www.example.com/"),
    ("Sec-Ch-Ua", '"Chromium";v="120", "Not?A_Brand";v="8"'),
    ("Sec-Ch-Ua-Mobile", "?0"),
    ("Sec-Ch-Ua-Platform", '"Linux"'),
    ("Sec-Fetch-Dest", "document"),
    ("Sec-Fetch-Mode", "navigate"),
    ("Sec-Fetch-Site", "same-origin"),
    ("Upgrade-Insecure-Requests", "1"),
]


def free_ports(n):
    """n distinct loopback ports that were free a moment ago (bound, then released)."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def render(template, out_path, **values):
    """Copy bench/conf/<template> to out_path with every @KEY@ replaced by values[key]."""
    with open(os.path.join(BENCH, "conf", template)) as f:
        text = f.read()
    for key, value in values.items():
        text = text.replace("@%s@" % key.upper(), str(value))
    leftover = re.findall(r"@[A-Z_]+@", text)
    if leftover:
        raise RuntimeError("%s: placeholders left unfilled: %s" % (template, leftover))
    with open(out_path, "w") as f:
        f.write(text)
    return out_path


def raise_fd_limit():
    """Children inherit this: 10,000 idle connections need more than the usual 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Procs:
    """Every process this run starts, so that each is stopped by its PID, with the ones it
    forked, however the run ends (normal end, exception, Ctrl-C, SIGTERM)."""

    def __init__(self):
        self.live = []

    def start(self, name, cmd, cpus=None, log=None, **kw):
        if cpus is not None:
            cmd = ["taskset", "-c", cpus] + cmd  # taskset execs cmd: same PID
        out = open(log, "ab") if log else subprocess.DEVNULL
        p = subprocess.Popen(cmd, stdout=kw.pop("stdout", out), stderr=out,
                             stdin=subprocess.DEVNULL, start_new_session=True, **kw)
        if log:
            out.close()
        p.bench_name = name
        self.live.append(p)
        return p

    def run(self, name, cmd, cpus=None, timeout=60.0):
        """Run cmd to its end (killed by PID past timeout); its standard output."""
        p = self.start(name, cmd, cpus=cpus, stdout=subprocess.PIPE)
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop(p)
            raise RuntimeError("%s did not finish within %.0fs" % (name, timeout))
        self.live.remove(p)
        return out.decode(errors="replace")

    def stop(self, p, timeout=5.0):
        if p not in self.live:
            return
        family = proc_tree(p.pid)
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for pid in family[1:]:  # forked workers that outlived their parent
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.live.remove(p)

    def stop_all(self):
        for p in reversed(list(self.live)):
            self.stop(p)


def _stat(pid):
    """(ppid, utime+stime ticks, utime ticks) of one process (threads included), or None
    if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return int(rest[1]), int(rest[11]) + int(rest[12]), int(rest[11])


def proc_tree(root):
    """root and every live descendant."""
    parent = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                parent[int(name)] = st[0]
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, pp in parent.items() if pp in frontier]
        tree += frontier
    return tree


def cpu_seconds(root, user=False):
    """utime+stime of root and its descendants, every thread, in seconds; with user,
    (that, utime alone)."""
    ticks = user_ticks = 0
    for pid in proc_tree(root):
        st = _stat(pid)
        ticks += st[1] if st else 0
        user_ticks += st[2] if st else 0
    return (ticks / CLK_TCK, user_ticks / CLK_TCK) if user else ticks / CLK_TCK


def rss_bytes(root):
    """VmRSS of root and its descendants, added up (shared pages count once per process)."""
    total = 0
    for pid in proc_tree(root):
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except FileNotFoundError:
            pass
    return total


def machine_cpu():
    """(CPU seconds the whole machine was busy, CPU seconds this run and every process it
    started and reaped used), since boot: their difference over an interval is what other
    work on a shared machine took from the run."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    # user, nice, system and steal (the hypervisor's other guests); irq and softirq time
    # is left out, as the loopback traffic of the run itself is counted there
    busy = (ticks[0] + ticks[1] + ticks[2] + ticks[7]) / CLK_TCK
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return busy, me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def wait_port(port, proc, timeout=20.0, what="server"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with status %s before listening on port %d"
                               % (what, proc.returncode, port))
        try:
            s = socket.create_connection(("127.0.0.1", port), 0.2)
            selfconn = s.getsockname() == s.getpeername()  # TCP simultaneous open
            s.close()
            if not selfconn:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("%s did not listen on port %d within %.0fs" % (what, port, timeout))


# The objects of a working-set scenario (bench's hit-1k-many, PROFILE_OBJECTS): path?obj=N,
# asked in steps of OBJECT_STRIDE (a prime, so prime to any count it does not divide), the
# stride wrk.lua uses too.
OBJECT_STRIDE = 7919


def object_path(path, n):
    return "%s?obj=%d" % (path, n)


def body(name):
    """The bytes of the origin's file name (a key of SIZES): SIZES[name] bytes of SHAKE-256
    output seeded with the name, the same in every run, with no period a server that sent
    the wrong part of an object, or another object of the same size, could hide in (a repeated alphabet let any shift by
    26 bytes pass). Every server is checked against these bytes (bench.py body_checks)."""
    return hashlib.shake_256(b"verge bench " + name.encode()).digest(SIZES[name])


def get_objects(port, path, ns, timeout=10.0):
    """GET object_path(path, n) for each n in ns, on one kept-alive connection (a miss stores
    it, a later one is a hit). How many answers were not a 200 with path's body."""
    want = body(path.lstrip("/"))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    bad = 0
    try:
        for n in ns:
            conn.request("GET", object_path(path, n))
            resp = conn.getresponse()
            bad += resp.status != 200 or resp.read() != want
    finally:
        conn.close()
    return bad


def http_get(port, path, host=None, timeout=5.0):
    """(status, headers as a lower-case dict, body) of one GET on a new connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host} if host else {})
        resp = conn.getresponse()
        got = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, got
    finally:
        conn.close()


class Workdir:
    """A private directory for configurations, logs and the origin's files, and one on
    tmpfs for nginx's cache; both removed at the end."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="verge-bench-")
        os.chmod(self.dir, 0o755)  # nginx workers run as nobody and read www/
        self.shm = tempfile.mkdtemp(prefix="verge-bench-", dir="/dev/shm")
        os.chmod(self.shm, 0o777)
        www = os.path.join(self.dir, "www")
        os.mkdir(www)
        os.chmod(www, 0o755)
        for name in SIZES:
            with open(os.path.join(www, name), "wb") as f:
                f.write(body(name))

    def path(self, name):
        return os.path.join(self.dir, name)

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.rmtree(self.shm, ignore_errors=True)


class Origin:
    """nginx serving the files; requests() counts its access-log lines,
    connections_since() the connections of those after a point."""

    def __init__(self, procs, work, port, workers, cpus):
        conf = render("origin.nginx.conf", work.path("origin.conf"), dir=work.dir,
                      origin_port=port, workers=workers)
        self.log = work.path("origin.access.log")
        self._counted_to, self._lines = 0, 0
        self.port = port
        self.proc = procs.start("origin", ["/usr/sbin/nginx", "-p", work.dir, "-c", conf],
                                cpus=cpus, log=work.path("origin.out"))
        wait_port(port, self.proc, what="origin nginx")

    def requests(self):
        """Whole lines in the access log, counted on from where the last call stopped (by
        the end of a run the log holds over a million lines, read twice a run before)."""
        try:
            with open(self.log, "rb") as f:
                f.seek(self._counted_to)
                data = f.read()
        except FileNotFoundError:
            return 0
        end = data.rfind(b"\n") + 1  # a line nginx is still writing counts next time
        self._lines += data.count(b"\n", 0, end)
        self._counted_to += end
        return self._lines

    def log_size(self):
        try:
            return os.path.getsize(self.log)
        except FileNotFoundError:
            return 0

    def connections_since(self, offset):
        """How many connections the requests logged after byte offset came on (the log's
        second field, nginx's $connection serial)."""
        try:
            with open(self.log, "rb") as f:
                f.seek(offset)
                return len({line.split(b" ", 2)[1] for line in f if line.count(b" ") >= 2})
        except FileNotFoundError:
            return 0
