"""The test DNS server itself answers as a resolver expects (so DNS tests of Verge test
Verge, not the test server)."""

import socket

from dnsserver import query


def test_a_and_aaaa_answers_carry_their_ttl(dns_server):
    dns_server.set_a("o.test", ["127.0.0.1", "127.0.0.2"], ttl=42)
    dns_server.set_aaaa("o.test", ["::1"], ttl=42)
    rcode, recs, _ = query(dns_server.port, "O.Test.", 1)
    assert rcode == 0
    assert [(t, ttl, socket.inet_ntoa(r)) for t, ttl, r in recs] == \
        [(1, 42, "127.0.0.1"), (1, 42, "127.0.0.2")]
    rcode, recs, _ = query(dns_server.port, "o.test", 28)
    assert rcode == 0 and socket.inet_ntop(socket.AF_INET6, recs[0][2]) == "::1"


def test_negative_answers_carry_an_soa(dns_server):
    dns_server.set_rcode("gone.test", "NXDOMAIN", soa_minimum=7)
    assert query(dns_server.port, "gone.test") == (3, [], 1)
    assert query(dns_server.port, "unknown.test")[0] == 3
    dns_server.set_nodata("empty.test")
    assert query(dns_server.port, "empty.test") == (0, [], 1)


def test_servfail_refused_drop_and_tcp(dns_server):
    dns_server.set_rcode("sf.test", "SERVFAIL")
    dns_server.set_rcode("rf.test", "REFUSED")
    dns_server.set_drop("drop.test")
    dns_server.set_a("tcp.test", ["10.0.0.1"])
    assert query(dns_server.port, "sf.test")[0] == 2
    assert query(dns_server.port, "rf.test")[0] == 5
    assert query(dns_server.port, "drop.test", timeout=0.3) is None
    assert query(dns_server.port, "tcp.test", transport="tcp")[1][0][2] == socket.inet_aton("10.0.0.1")
    dns_server.drop_all = True
    assert query(dns_server.port, "tcp.test", timeout=0.3) is None


def test_queries_are_counted(dns_server):
    dns_server.set_a("count.test", ["10.0.0.1"])
    for _ in range(3):
        query(dns_server.port, "count.test")
    assert dns_server.queries("count.test", "A") == 3
    assert dns_server.queries("count.test", "AAAA") == 0
