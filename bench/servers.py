"""servers.py - the servers make bench compares: how each is started (its
configuration is in bench/conf), on which port each scenario's path is served, and the
name of the header that says a response came from its cache."""
import os
import subprocess

import rig

FIXED_BIN = os.path.join(rig.ROOT, "build", "bench", "fixed")
RELAY_BIN = os.path.join(rig.ROOT, "build", "bench", "relay")
VERGE_BIN = os.environ.get("VERGE_BIN", os.path.join(rig.ROOT, "build", "verge"))
# BENCH_VERGE_B=path: a second Verge build (the one before a change, say) run as "verge-b"
# right after "verge" in every round, so that the two are compared within one run, as the
# peers are; the targets are judged on "verge" alone.
VERGE_B_BIN = os.environ.get("BENCH_VERGE_B")
# Bodies of 64 KiB up to this many bytes are sent with sendfile by Verge
# (cache.sendfile_max) and by fixed (FIXED_SENDFILE_MAX), the others copied with writev:
# 0, writev for all, was the faster way on the bench VM (bench/README.md).
SENDFILE_MAX = int(os.environ.get("BENCH_SENDFILE_MAX", 0))


class Server:
    name = "?"
    proxy = True  # fetches from the origin (fixed does not)
    scenarios = None  # the scenarios it runs in: None, every one
    tables = None  # the tables (bench.TABLES) it runs in: None, every one

    def serves(self, scenario):
        return self.scenarios is None or scenario in self.scenarios

    def __init__(self, procs, work, origin_port, dead_port, workers, cpus):
        self.procs, self.work, self.workers, self.cpus = procs, work, workers, cpus
        self.values = dict(dir=work.dir, shm=work.shm, origin_port=origin_port,
                           dead_port=dead_port, workers=workers)
        self.port = rig.free_ports(1)[0]
        self.values["port"] = self.port
        self.proc = None

    def start(self):
        self.proc = self.procs.start(self.name, self.command(), cpus=self.cpus,
                                     log=self.work.path(self.name + ".out"))
        rig.wait_port(self.port, self.proc, what=self.name)

    def stop(self):
        if self.proc is not None:
            self.procs.stop(self.proc)
            self.proc = None

    def port_for(self, path, close=False):
        """The port for path; close: for requests with Connection: close."""
        return self.port

    def version(self):
        return ""


class Fixed(Server):
    name = "fixed"
    proxy = False

    def __init__(self, *a):
        super().__init__(*a)
        self.ports = {"1k.bin": self.port, "100k.bin": 0, "1m.bin": 0}
        self.ports["100k.bin"], self.ports["1m.bin"], self.close_port = rig.free_ports(3)

    def command(self):
        return ["env", "FIXED_SENDFILE_MAX=%d" % SENDFILE_MAX,  # env execs it: the same PID
                "FIXED_WWW=" + self.work.path("www"),  # the origin's files: the same bytes
                FIXED_BIN, str(self.workers), str(self.port), str(self.ports["100k.bin"]),
                str(self.ports["1m.bin"]), str(self.close_port)]

    def port_for(self, path, close=False):
        """fixed answers a Connection: close by its own port for it: it reads no fields."""
        if close:
            return self.close_port
        return self.ports.get(path.lstrip("/"), self.port)

    def version(self):
        return "bench/fixed.c"


class Relay(Server):
    """bench/relay.c: a TCP relay, each visitor's bytes to the origin and back over an
    origin connection of its own, kept for the visitor's; no HTTP. The floor of a
    pass-through, the least CPU a proxy can spend on one: it runs in `pass` alone (it
    caches nothing), in table 1."""
    name = "relay"
    scenarios = ("pass",)
    tables = ("1",)  # where the targets are judged: table 2 judges none, and its 15 s
    # there are not spent (the whole run took 587 of its 600 s with them)

    def command(self):
        return [RELAY_BIN, str(self.workers), str(self.port), str(self.values["origin_port"])]

    def version(self):
        return "bench/relay.c"


class Verge(Server):
    name = "verge"
    binary = VERGE_BIN

    def command(self):
        self.values["admin_port"] = rig.free_ports(1)[0]
        conf = rig.render("verge.yaml", self.work.path(self.name + ".yaml"), name=self.name,
                          sendfile_max=SENDFILE_MAX, **self.values)
        return [self.binary, "serve", "-c", conf]

    def version(self):
        return _first_line([self.binary, "version"])


class VergeB(Verge):
    name = "verge-b"
    binary = VERGE_B_BIN


class Nginx(Server):
    name = "nginx"
    sendfile = os.environ.get("BENCH_NGINX_SENDFILE", "off")

    def command(self):
        conf = rig.render("nginx.conf", self.work.path("nginx.conf"), sendfile=self.sendfile,
                              **self.values)
        os.makedirs(os.path.join(self.work.shm, "nginx-cache"), exist_ok=True)
        return ["/usr/sbin/nginx", "-p", self.work.dir, "-c", conf]

    def version(self):
        return _first_line(["/usr/sbin/nginx", "-v"]).replace("nginx version: ", "")


class Haproxy(Server):
    name = "haproxy"

    def command(self):
        conf = rig.render("haproxy.cfg", self.work.path("haproxy.cfg"), **self.values)
        return ["/usr/sbin/haproxy", "-db", "-f", conf]

    def version(self):
        return " ".join(_first_line(["/usr/sbin/haproxy", "-v"]).split()[:3])


class Varnish(Server):
    name = "varnish"

    def command(self):
        vcl = rig.render("varnish.vcl", self.work.path("varnish.vcl"), **self.values)
        # Threads per pool: Varnish serves a connection with a thread, so a "worker" here is
        # a thread pool, and the pinned run keeps all of its threads on the server's core.
        return ["/usr/sbin/varnishd", "-F", "-j", "none", "-n", self.work.path("varnish"),
                "-a", "127.0.0.1:%d" % self.port, "-T", "none", "-f", vcl,
                "-s", "malloc,256m", "-p", "thread_pools=%d" % self.workers,
                "-p", "timeout_idle=300"]

    def version(self):
        return _first_line(["/usr/sbin/varnishd", "-V"]).split("(")[1].split(" ")[0]


def _first_line(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return ((out.stdout or "") + (out.stderr or "")).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


ALL = [Fixed, Relay, Verge] + ([VergeB] if VERGE_B_BIN else []) + [Nginx, Haproxy, Varnish]
