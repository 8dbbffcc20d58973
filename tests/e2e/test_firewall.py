"""Firewalls between the edge and the origin, for real: a network namespace made by the
test, joined to this one by a veth pair, with nftables rules inside it. A dropped SYN is
connection_timeout (504); an ICMP reject is destination_ip_unroutable (502); a TCP reset
is connection_refused (502)."""

import os
import shutil
import subprocess
import uuid

import pytest

from harness import wait_until, zone

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("nft") is None or shutil.which("ip") is None,
    reason="needs root, iproute2 and nftables (./dev setup installs them)")

HOST_IP, NS_IP = "198.18.77.1", "198.18.77.2"  # RFC 2544 benchmarking space, /30


def sh(*args, ns=None):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    subprocess.run(cmd, check=True, capture_output=True, timeout=10)


@pytest.fixture
def firewalled_host():
    """A namespace at NS_IP with an nftables input chain; yields its name."""
    ns = "verge-fw-" + uuid.uuid4().hex[:8]
    veth = "vfw" + uuid.uuid4().hex[:8]
    made = subprocess.run(["ip", "netns", "add", ns], capture_output=True, timeout=10)
    if made.returncode != 0:  # a machine that cannot make namespaces at all (no CAP_SYS_ADMIN)
        pytest.skip("cannot create a network namespace here: " + made.stderr.decode().strip())
    try:
        sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "addr", "add", f"{HOST_IP}/30", "dev", veth)
        sh("ip", "link", "set", veth, "up")
        sh("ip", "addr", "add", f"{NS_IP}/30", "dev", "eth0", ns=ns)
        sh("ip", "link", "set", "eth0", "up", ns=ns)
        sh("ip", "link", "set", "lo", "up", ns=ns)
        sh("nft", "add", "table", "inet", "fw", ns=ns)
        sh("nft", "add", "chain", "inet", "fw", "input",
           "{ type filter hook input priority 0; policy accept; }", ns=ns)
        sh("nft", "add", "rule", "inet", "fw", "input", "tcp", "dport", "81", "drop", ns=ns)
        sh("nft", "add", "rule", "inet", "fw", "input", "tcp", "dport", "82", "reject",
           "with", "icmp", "type", "host-unreachable", ns=ns)
        sh("nft", "add", "rule", "inet", "fw", "input", "tcp", "dport", "83", "reject",
           "with", "tcp", "reset", ns=ns)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


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
    out = run_verge(["check", f"http://{NS_IP}:81/", "--timeout", "500ms"])
    text = out.stdout.decode()
    assert out.returncode == 4, text
    assert text.startswith("verdict: firewall blocking"), text
    assert "no answer (a firewall is probably dropping the packets)" in text
    out = run_verge(["check", f"http://{NS_IP}:82/", "--timeout", "500ms"])
    assert out.returncode == 4
    assert "unreachable (ICMP" in out.stdout.decode()
