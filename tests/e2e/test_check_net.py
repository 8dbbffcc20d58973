"""verge check against real networks the tests build: a chain of namespaces with three
routers (traceroute hops, a DROP rule on the last router named as the firewall, IPv4 and
IPv6), and a firewalled host whose ports drop, reject with ICMP (host unreachable,
administratively prohibited, port unreachable) or reset."""

import json

from harness import FirewalledHost, run_verge

NS_IP = FirewalledHost.NS_IP


def check_json(*args, timeout=60):
    out = run_verge(["check", *args, "--json"], timeout=timeout)
    return out.returncode, json.loads(out.stdout)


def test_traceroute_shows_the_routers_and_the_drop_on_the_last_one(router_chain):
    c = router_chain
    code, doc = check_json(f"http://{c.target_v4}/", "--timeout", "1s", "--count", "2")
    assert code == 4 and doc["verdict"] == "firewall blocking", doc
    [o] = doc["origins"]
    [t] = o["trace"]
    udp, tcp = t["udp"], t["tcp"]
    # UDP gets through: three routers, then the target
    assert udp["reached"] and udp["reached_hop"] == 4
    assert [h["address"] for h in udp["hops"]] == c.router_v4 + [c.target_v4]
    assert [h["icmp"]["kind"] for h in udp["hops"]] == ["time_exceeded"] * 3 + ["port_unreachable"]
    # TCP to port 80 stops after the last router
    assert not tcp["reached"] and tcp["last_hop"] == 3
    assert [h["address"] for h in tcp["hops"][:3]] == c.router_v4
    assert tcp["hops"][3]["address"] is None
    fw = doc["firewall"]
    assert fw["kind"] == "drop"
    assert fw["where"].startswith(f"{c.router_v4[2]} (hop 3, the last to answer")
    assert fw["allow"].startswith(f"allow the edge's address {c.links[0][0]} to port 80 on "
                                  f"{c.target_v4} in the firewall at {c.router_v4[2]} (hop 3)")
    assert doc["next"] == fw["allow"]
    assert [a["result"] for a in o["tcp"][0]["attempts"]] == ["no_answer"] * 2
    assert o["ping"][0]["result"] == "ok"  # the host is up: it is the port that is blocked
    text = run_verge(["check", f"http://{c.target_v4}/", "--timeout", "1s", "--count", "1"],
                     timeout=60).stdout.decode()
    assert f"firewall: a DROP rule" in text and f"at {c.router_v4[2]} (hop 3" in text
    for hop, ip in enumerate(c.router_v4, 1):
        assert f"{hop:2d}  {ip}" in text


def test_traceroute_over_ipv6(router_chain):
    c = router_chain
    code, doc = check_json(f"http://[{c.target_v6}]/", "--timeout", "1s", "--count", "1",
                           "--no-ping")
    assert code == 4, doc
    [t] = doc["origins"][0]["trace"]
    assert [h["address"] for h in t["udp"]["hops"]] == c.router_v6 + [c.target_v6]
    assert t["udp"]["hops"][3]["icmp"]["type"] == 1 and t["udp"]["hops"][3]["icmp"]["code"] == 4
    assert t["tcp"]["last_hop"] == 3 and not t["tcp"]["reached"]
    assert doc["firewall"]["where"].startswith(f"{c.router_v6[2]} (hop 3")


def test_open_port_through_the_routers_is_ok_and_reached_by_tcp(router_chain):
    c = router_chain
    code, doc = check_json(f"http://{c.target_v4}:8080/", "--timeout", "2s", "--count", "1")
    assert code == 0, doc
    [o] = doc["origins"]
    tcp = o["trace"][0]["tcp"]
    assert tcp["reached"] and tcp["reached_hop"] == 4
    assert tcp["hops"][3]["what"] == "SYN-ACK (port open)"
    assert o["http"]["status"] == 200


def test_silent_drop(firewalled_host):
    code, doc = check_json(f"http://{NS_IP}:81/", "--timeout", "500ms", "--count", "1")
    assert code == 4 and doc["firewall"]["kind"] == "drop", doc
    assert doc["origins"][0]["tcp"][0]["attempts"][0]["error"] == "connection_timeout"
    # the host is one hop away: the trace stops before it
    assert doc["origins"][0]["trace"][0]["tcp"]["last_hop"] == 0
    assert doc["firewall"]["allow"].startswith(f"allow the edge's address {FirewalledHost.HOST_IP} "
                                               f"to port 81 on {NS_IP}")


def icmp_reject(port):
    code, doc = check_json(f"http://{NS_IP}:{port}/", "--timeout", "1s", "--count", "1")
    assert code == 4, doc
    [attempt] = doc["origins"][0]["tcp"][0]["attempts"]
    assert attempt["result"] == "unreachable"
    assert attempt["icmp"]["from"] == NS_IP and attempt["icmp"]["type"] == 3
    return doc, attempt


def test_icmp_admin_prohibited(firewalled_host):
    doc, attempt = icmp_reject(84)
    assert attempt["icmp"]["code"] == 13 and attempt["icmp"]["kind"] == "admin_prohibited"
    assert doc["firewall"]["kind"] == "reject_admin_prohibited"
    assert "administratively prohibited" in doc["firewall"]["likely"]
    assert doc["firewall"]["where"] == f"{NS_IP} (hop 1), the origin host itself"
    assert doc["next"].startswith(f"allow the edge's address {FirewalledHost.HOST_IP} to port 84")


def test_icmp_port_unreachable_is_a_reject_rule_not_a_closed_port(firewalled_host):
    doc, attempt = icmp_reject(85)
    assert attempt["icmp"]["code"] == 3 and attempt["error"] == "connection_refused"
    assert doc["firewall"]["kind"] == "reject_port_unreachable"
    assert "iptables -j REJECT" in doc["firewall"]["likely"]


def test_icmp_host_unreachable(firewalled_host):
    doc, attempt = icmp_reject(82)
    assert attempt["icmp"]["code"] == 1 and attempt["error"] == "destination_ip_unroutable"
    assert doc["firewall"]["kind"] == "reject_host_unreachable"


def test_tcp_reset_is_origin_down(firewalled_host):
    code, doc = check_json(f"http://{NS_IP}:83/", "--timeout", "1s", "--count", "1")
    assert code == 3 and doc["firewall"] is None, doc
