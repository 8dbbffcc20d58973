"""Fixtures for Verge's end-to-end tests: the verge process, nginx and scripted origins.

The helpers themselves live in harness.py; this file only wires them into pytest so that
each test gets its own processes, ports and directories and nothing outlives it.
"""

import pytest

import harness
from harness import (Client, NginxOrigin, ScriptedOrigin, Verge, build_request, chunked,
                     free_port, http, zone)  # noqa: F401  (re-exported for tests)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request):
    rep = getattr(request.node, "rep_call", None)
    return rep is not None and rep.failed


@pytest.fixture(scope="session")
def verge_bin():
    if not harness.VERGE_BIN.exists():
        pytest.fail(f"{harness.VERGE_BIN} does not exist; run `make -j2` first", pytrace=False)
    return harness.VERGE_BIN


@pytest.fixture
def verge(tmp_path, request, verge_bin):
    """Factory: verge(zones=[...], **top_level_overrides) -> a running Verge.

    config="raw yaml" writes the file verbatim (use verge.prepare() when the text needs the
    ports); args=[...] runs verge with those arguments instead, "{port}" and "{admin_port}"
    in them replaced by the ports chosen for it (zero-config: `serve --origin ...`).
    """
    started = []

    def start(zones=None, *, config=None, args=None, **top):
        v = Verge(tmp_path)
        if args is not None:
            args = [str(a).format(port=v.port, admin_port=v.admin_port) for a in args]
            v.admin_enabled = any(f":{v.admin_port}" in a for a in args)
            started.append(v)
            return v.start([verge_bin] + args)
        v.write_config(config if config is not None else v.build_config(zones or [], **top))
        started.append(v)
        return v.start()

    def prepare():
        """A Verge whose ports and paths are chosen but which is not started."""
        v = Verge(tmp_path)
        started.append(v)
        return v

    start.prepare = prepare
    yield start
    for v in started:
        if _failed(request):
            print(f"\n=== verge in {v.dir} ===\n{v.diagnostics()}")
        v.kill_quietly()


@pytest.fixture
def scripted_origin():
    """Factory: scripted_origin(handler) -> ScriptedOrigin; handler(conn) scripts a
    connection (conn.read_request(), conn.send(), conn.respond(), conn.sleep(), conn.close(),
    conn.reset_close()). Records requests and the number of connections accepted."""
    origins = []

    def make(handler=None, **kw):
        o = ScriptedOrigin(handler, **kw)
        origins.append(o)
        return o

    yield make
    for o in origins:
        o.stop()


@pytest.fixture
def nginx_origin(tmp_path, request):
    """nginx serving static files (small ones and a sparse 1 GiB big.bin) and /echo."""
    if not harness.NGINX_BIN.exists():
        pytest.skip("nginx (/usr/sbin/nginx, Debian package nginx-light) is not installed")
    o = NginxOrigin(tmp_path / "nginx")
    yield o
    if _failed(request):
        print(f"\n=== nginx error log ===\n{harness.read_text(o.error_path)[-3000:]}")
    o.stop()


@pytest.fixture
def dns_server():
    """A programmable DNS server on 127.0.0.1 (dnsserver.py), stopped after the test."""
    from dnsserver import DNSServer
    server = DNSServer().start()
    yield server
    server.stop()


@pytest.fixture
def firewalled_host():
    """A namespace behind a veth pair with nftables rules per port (harness.FirewalledHost);
    the machine-wide namespace lock is held for its life. Skips only where namespaces
    cannot be made at all."""
    reason = harness.netns_tools_missing()
    if reason:
        pytest.skip(reason)
    with harness.netns_lock():
        try:
            host = harness.FirewalledHost()
        except harness.NetnsUnavailable as e:
            pytest.skip(str(e))
        try:
            yield host
        finally:
            host.close()


@pytest.fixture(scope="module")
def router_chain(tmp_path_factory):
    """This namespace -> 3 routers -> a target serving HTTP on port 80 (dropped by the last
    router) and 8080 (let through), both IPv4 and IPv6 (harness.RouterChain). Module-wide,
    under the machine-wide namespace lock."""
    reason = harness.netns_tools_missing()
    if reason:
        pytest.skip(reason)
    with harness.netns_lock():
        try:
            chain = harness.RouterChain(routers=3)
        except harness.NetnsUnavailable as e:
            pytest.skip(str(e))
        procs = []
        try:
            www = tmp_path_factory.mktemp("chain-www")
            (www / "index.html").write_text("behind three routers\n")
            procs = [chain.serve_http(80, www), chain.serve_http(8080, www)]
            chain.drop_tcp(80)
            yield chain
        finally:
            for p in procs:
                harness.stop_process(p)
            chain.close()
