"""DNS, from a programmable DNS server the test runs on loopback: every answer a resolver
can give, TTL caching (positive and negative), an origin that moves, serving the last good
answer while the resolver is down, and a name that points back at the edge."""

import time

import pytest

from harness import TinyOrigin, free_port, zone

NAME = "origin.test"


def edge(verge, dns_server, origin_port, serve_stale="1h", **zone_extra):
    v = verge.prepare()
    cfg = v.build_config([zone("z1", [f"http://{NAME}:{origin_port}"], **zone_extra)],
                         resolver={"servers": [dns_server.address], "min_ttl": "1s",
                                   "timeout": "300ms", "attempts": 1,
                                   "serve_stale": serve_stale})
    v.write_config(cfg)
    return v.start()


def check_failure(v, status, error, fragment):
    resp = v.get("/x")
    assert resp.status == status, resp
    ps = resp.headers.get("proxy-status")
    assert ps.startswith(f"testedge; error={error}"), ps
    assert fragment in ps, ps
    assert v.metrics().value("verge_origin_errors_total", zone="z1", error=error) == 1
    v.wait_error_log(error)


@pytest.mark.parametrize("rcode", ["NXDOMAIN", "SERVFAIL", "REFUSED"])
def test_resolver_rcode_gives_502_dns_error_with_the_rcode(verge, dns_server, rcode):
    dns_server.set_rcode(NAME, rcode, soa_minimum=30)
    v = edge(verge, dns_server, free_port())
    check_failure(v, 502, "dns_error", f"rcode={rcode}")


def test_name_without_addresses_gives_502_dns_error(verge, dns_server):
    dns_server.set_nodata(NAME)
    v = edge(verge, dns_server, free_port())
    check_failure(v, 502, "dns_error", "no A or AAAA record")


def test_resolver_that_never_answers_gives_504_dns_timeout(verge, dns_server):
    dns_server.set_drop(NAME)
    v = edge(verge, dns_server, free_port())
    check_failure(v, 504, "dns_timeout", "timed out")


def test_answers_are_cached_for_their_ttl(verge, dns_server):
    port = free_port()
    origin = TinyOrigin(port)
    try:
        dns_server.set_a(NAME, ["127.0.0.1"], ttl=60)
        v = edge(verge, dns_server, port)
        for _ in range(5):
            assert v.get("/x").status == 200
        assert dns_server.queries(NAME, "A") == 1
    finally:
        origin.stop()


def test_negative_answers_are_cached_for_the_soa_minimum(verge, dns_server):
    dns_server.set_rcode(NAME, "NXDOMAIN", soa_minimum=60)
    # Passive health off: a third failure would mark the origin down and start the automatic
    # diagnosis, whose own DNS test (a query of its own) may land before the count is read.
    v = edge(verge, dns_server, free_port(), health={"failures": 0})
    for _ in range(3):
        assert v.get("/x").status == 502
    assert dns_server.queries(NAME, "A") == 1


def test_origin_that_moves_is_followed_when_its_ttl_runs_out(verge, dns_server):
    port = free_port()
    old, new = TinyOrigin(port, host="127.0.0.1", body=b"old\n"), None
    try:
        new = TinyOrigin(port, host="127.0.0.2", body=b"new\n")
        dns_server.set_a(NAME, ["127.0.0.1"], ttl=1)
        v = edge(verge, dns_server, port)
        assert v.get("/x").body == b"old\n"
        dns_server.set_a(NAME, ["127.0.0.2"], ttl=1)
        time.sleep(1.3)
        assert v.get("/x").body == b"new\n"
    finally:
        old.stop()
        if new:
            new.stop()


def test_last_good_answer_is_served_while_the_resolver_is_down(verge, dns_server):
    port = free_port()
    origin = TinyOrigin(port)
    try:
        dns_server.set_a(NAME, ["127.0.0.1"], ttl=1)
        v = edge(verge, dns_server, port)
        assert v.get("/x").status == 200
        dns_server.drop_all = True
        time.sleep(1.3)
        for _ in range(3):
            assert v.get("/x").status == 200
        v.wait_error_log(r"using its last good answer")
    finally:
        origin.stop()


def test_without_serve_stale_a_resolver_outage_fails_requests(verge, dns_server):
    port = free_port()
    origin = TinyOrigin(port)
    try:
        dns_server.set_a(NAME, ["127.0.0.1"], ttl=1)
        v = edge(verge, dns_server, port, serve_stale="0s")
        assert v.get("/x").status == 200
        dns_server.drop_all = True
        time.sleep(1.3)
        assert v.get("/x").status == 504
    finally:
        origin.stop()


def test_name_resolving_to_the_edge_itself_gives_proxy_loop_detected(verge, dns_server):
    dns_server.set_a(NAME, ["127.0.0.1"], ttl=60)
    v = verge.prepare()
    cfg = v.build_config([zone("z1", [f"http://{NAME}:{v.port}"])],
                         resolver={"servers": [dns_server.address]})
    v.write_config(cfg)
    v.start()
    resp = v.get("/x")
    assert resp.status == 502
    assert resp.headers.get("proxy-status").startswith("testedge; error=proxy_loop_detected")


def test_happy_path_through_a_real_dnsmasq(verge, tmp_path):
    """Debian's dnsmasq as the resolver: the everyday case, with a server we did not write."""
    import shutil
    import subprocess
    dnsmasq = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    if not shutil.which(dnsmasq):
        pytest.skip("dnsmasq is not installed (./dev setup installs dnsmasq-base)")
    dns_port, port = free_port(), free_port()
    proc = subprocess.Popen([dnsmasq, "--keep-in-foreground", "--no-resolv", "--no-hosts",
                             "--bind-interfaces", "--listen-address=127.0.0.1",
                             f"--port={dns_port}", "--pid-file", "--user=root",
                             "--log-facility=-", "--host-record=happy.test,127.0.0.1,60",
                             "--conf-file=/dev/null"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    origin = TinyOrigin(port, body=b"via dnsmasq\n")
    try:
        from dnsserver import query
        from harness import wait_until
        wait_until(lambda: query(dns_port, "happy.test", timeout=0.2), what="dnsmasq answering")
        v = verge.prepare()
        v.write_config(v.build_config(
            [zone("z1", [f"http://happy.test:{port}"])],
            resolver={"servers": [f"127.0.0.1:{dns_port}"], "timeout": "500ms"}))
        v.start()
        resp = v.get("/x")
        assert resp.status == 200 and resp.body == b"via dnsmasq\n", resp
    finally:
        origin.stop()
        proc.terminate()
        proc.wait(timeout=5)
