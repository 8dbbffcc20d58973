"""Firewalls between the edge and the origin, for real: a network namespace made by the
test, joined to this one by a veth pair, with nftables rules inside it. A dropped SYN is
connection_timeout (504); an ICMP reject is destination_ip_unroutable (502); a TCP reset
is connection_refused (502)."""

import pytest

from harness import FirewalledHost, netns_tools_missing, zone

NS_IP = FirewalledHost.NS_IP

pytestmark = pytest.mark.skipif(netns_tools_missing() is not None,
                                reason=netns_tools_missing() or "")


def check(v, status, error):
    resp = v.get("/x")
    assert resp.status == status, resp
    ps = resp.headers.get("proxy-status")
    assert ps.startswith(f"testedge; error={error}"), ps
    assert f"{NS_IP}:" in ps
    assert v.metrics().value("verge_origin_errors_total", zone="z1", error=error) == 1
    v.wait_error_log(error)
    return resp


def test_dropped_syn_gives_504_connection_timeout(verge, firewalled_host):
    v = verge([zone("z1", [f"http://{NS_IP}:81"], timeouts={"connect": "500ms"})])
    check(v, 504, "connection_timeout")


def test_icmp_reject_gives_502_destination_ip_unroutable(verge, firewalled_host):
    v = verge([zone("z1", [f"http://{NS_IP}:82"])])
    check(v, 502, "destination_ip_unroutable")


def test_tcp_reset_gives_502_connection_refused(verge, firewalled_host):
    v = verge([zone("z1", [f"http://{NS_IP}:83"])])
    check(v, 502, "connection_refused")


def test_verge_check_names_the_firewall(firewalled_host):
    from harness import run_verge
    out = run_verge(["check", f"http://{NS_IP}:81/", "--timeout", "500ms", "--no-trace"])
    text = out.stdout.decode()
    assert out.returncode == 4, text
    assert text.startswith("verdict: firewall blocking"), text
    assert "no answer (a firewall is probably dropping the packets)" in text
    out = run_verge(["check", f"http://{NS_IP}:82/", "--timeout", "500ms", "--no-trace"])
    assert out.returncode == 4
    assert "unreachable (ICMP" in out.stdout.decode()
