"""verge check: the verdict (first line and exit status) names the culprit, from the edge's
own position and with its own resolver, connect path and parser."""

from harness import free_port, run_verge, zone


def check(*args, timeout=30):
    out = run_verge(["check", *args], timeout=timeout)
    text = out.stdout.decode()
    return out.returncode, text.splitlines()[0] if text else "", text


def silent(conn):
    """An origin that takes the request and never answers."""
    conn.read_request()
    conn.sleep(30)


def answering(status, body, headers=()):
    """A scripted origin's handler: one request, one response."""
    def handler(conn):
        if conn.read_request() is not None:
            conn.respond(status, body, headers=list(headers))
    return handler


def zone_file(tmp_path, origins, top="", zone_extra=""):
    """A configuration with one zone "www" in front of these origin URLs."""
    cfg = tmp_path / "v.yaml"
    urls = ", ".join(f'"{u}"' for u in origins)
    cfg.write_text(f"{top}zones:\n  - name: www\n    hosts: [a.test]\n{zone_extra}"
                   f"    origins: [{urls}]\n")
    return cfg


def test_healthy_origin_is_ok(nginx_origin):
    code, verdict, text = check(f"{nginx_origin.url}/small.txt")
    assert code == 0, text
    assert verdict.startswith("verdict: OK")
    assert "GET /small.txt: 200 OK" in text
    assert "open" in text


def test_closed_port_is_origin_down(verge):
    port = free_port()
    code, verdict, text = check(f"http://127.0.0.1:{port}/")
    assert code == 3, text
    assert verdict == f"verdict: origin down: every address of 127.0.0.1 refuses connections on port {port}"
    assert "next: start the origin server" in text


def test_nxdomain_through_the_given_resolver_is_dns(dns_server):
    dns_server.set_rcode("gone.test", "NXDOMAIN")
    code, verdict, text = check("http://gone.test/", "--resolver", dns_server.address)
    assert code == 2, text
    assert verdict.startswith("verdict: DNS does not resolve: gone.test: rcode=NXDOMAIN")
    assert "rcode=NXDOMAIN" in text


def test_name_with_two_addresses_lists_both(dns_server, nginx_origin):
    port = nginx_origin.url.rsplit(":", 1)[1]
    dns_server.set_a("two.test", ["127.0.0.1", "127.0.0.3"], ttl=30)
    code, _, text = check(f"http://two.test:{port}/small.txt", "--resolver", dns_server.address)
    assert "127.0.0.1:" + port in text and "127.0.0.3:" + port in text
    assert code == 0, text  # nginx listens on 127.0.0.1 only, but one open address serves


def test_garbage_answer_is_invalid_response(scripted_origin):
    def garbage(conn):
        if conn.read_request() is not None:
            conn.send(b"HELLO THERE\r\n\r\n")
            conn.close()
    origin = scripted_origin(garbage)
    code, verdict, text = check(origin.url + "/")
    assert code == 5, text
    assert verdict.startswith("verdict: invalid response") and "http_protocol_error" in verdict


def test_origin_without_header_in_time_is_too_slow(scripted_origin):
    origin = scripted_origin(silent)
    code, verdict, text = check(origin.url + "/", "--timeout", "500ms")
    assert code == 6, text
    assert verdict.startswith("verdict: origin too slow")


def test_zone_from_a_configuration_file(tmp_path, nginx_origin):
    cfg = zone_file(tmp_path, [nginx_origin.url, f"http://127.0.0.1:{free_port()}"])
    code, verdict, text = check("--zone", "www", "-c", str(cfg))
    assert code == 3, text  # the second origin is down
    assert text.count("origin http://127.0.0.1:") == 2
    assert "GET /: " in text


def test_unknown_zone_is_a_usage_error(tmp_path):
    cfg = tmp_path / "v.yaml"
    cfg.write_text("zones: [ { name: www, hosts: [a.test], origins: [\"http://127.0.0.1:1\"] } ]\n")
    out = run_verge(["check", "--zone", "nope", "-c", str(cfg)])
    assert out.returncode == 1
    assert b"has no zone named \"nope\"" in out.stderr


def check_json(*args):
    import json
    out = run_verge(["check", *args, "--json"], timeout=30)
    return out.returncode, json.loads(out.stdout)


def test_json_report_of_a_healthy_origin(nginx_origin):
    code, doc = check_json(f"{nginx_origin.url}/small.txt")
    assert code == 0 and doc["exit"] == 0 and doc["verdict"] == "OK"
    [o] = doc["origins"]
    assert o["dns"]["status"] == "literal"
    assert [t["result"] for t in o["tcp"]] == ["open"]
    assert o["http"]["path"] == "/small.txt" and o["http"]["status"] == 200


def test_json_report_of_a_name_that_does_not_resolve(dns_server):
    dns_server.set_rcode("gone.test", "NXDOMAIN")
    code, doc = check_json("http://gone.test/", "--resolver", dns_server.address)
    assert code == 2 and doc["verdict"] == "DNS does not resolve"
    [o] = doc["origins"]
    assert o["dns"]["status"] == "NXDOMAIN" and o["dns"]["addresses"] == []
    assert o["tcp"] == [] and o["http"] is None


def test_json_report_of_a_zone_with_a_dead_and_a_slow_origin(tmp_path, scripted_origin):
    slow = scripted_origin(silent)
    cfg = zone_file(tmp_path, [slow.url, f"http://127.0.0.1:{free_port()}"])
    code, doc = check_json("--zone", "www", "-c", str(cfg), "--timeout", "500ms")
    assert code == 6  # the first failure found decides: the slow one
    slow_o, dead_o = doc["origins"]
    assert slow_o["http"]["error"] == "http_response_timeout"
    assert dead_o["tcp"][0]["result"] == "refused" and dead_o["http"] is None


# ----------------------------------------------------------------------------- DNS

QUICK = ["--no-trace", "--count", "1", "--timeout", "1s"]


def test_servfail_is_dns_with_the_rcode_of_each_resolver(dns_server):
    dns_server.set_rcode("broken.test", "SERVFAIL")
    code, doc = check_json("http://broken.test/", "--resolver", dns_server.address, *QUICK)
    assert code == 2 and doc["verdict"] == "DNS does not resolve"
    assert "rcode=SERVFAIL" in doc["evidence"] and doc["next"].startswith("SERVFAIL:")
    dns = doc["origins"][0]["dns"]
    assert dns["status"] == "SERVFAIL" and "servfail" in dns["flags"]
    [r] = dns["resolvers"]
    assert r["server"] == dns_server.address and r["rcode"] == "SERVFAIL" and r["ms"] >= 0


def test_nxdomain_says_how_long_the_negative_answer_is_cached(dns_server):
    dns_server.set_rcode("gone.test", "NXDOMAIN", soa_minimum=45)
    code, doc = check_json("http://gone.test/", "--resolver", dns_server.address, *QUICK)
    assert code == 2 and "nxdomain" in doc["origins"][0]["dns"]["flags"]
    [r] = doc["origins"][0]["dns"]["resolvers"]
    assert r["rcode"] == "NXDOMAIN" and r["negative_ttl"] == 45 and r["addresses"] == []
    assert doc["next"].startswith("the name does not exist")


def test_name_without_address_records_is_flagged(dns_server):
    dns_server.set_nodata("empty.test")
    code, doc = check_json("http://empty.test/", "--resolver", dns_server.address, *QUICK)
    assert code == 2
    dns = doc["origins"][0]["dns"]
    assert dns["status"] == "NODATA" and "no_address" in dns["flags"]
    assert dns["resolvers"][0]["rcode"] == "NOERROR"


def test_cname_chain_with_ttls(dns_server, nginx_origin):
    port = nginx_origin.port
    dns_server.set_cname("www.test", "cdn.test", ttl=300)
    dns_server.set_cname("cdn.test", "origin.test", ttl=120)
    dns_server.set_a("origin.test", ["127.0.0.1"], ttl=60)
    code, doc = check_json(f"http://www.test:{port}/small.txt", "--resolver", dns_server.address,
                           *QUICK)
    assert code == 0, doc
    [r] = doc["origins"][0]["dns"]["resolvers"]
    assert [(c["name"], c["target"], c["ttl"]) for c in r["cname"]] == [
        ("www.test", "cdn.test", 300), ("cdn.test", "origin.test", 120)]
    assert r["addresses"] == [{"address": "127.0.0.1", "family": 4, "ttl": 60}]
    assert "loopback" in doc["origins"][0]["dns"]["flags"]
    out = run_verge(["check", f"http://www.test:{port}/small.txt", "--resolver",
                     dns_server.address, *QUICK])
    text = out.stdout.decode()
    assert "CNAME www.test -> cdn.test (ttl 300 s)" in text
    assert "A 127.0.0.1 (ttl 60 s)" in text
    assert "warning: www.test points at loopback" in text


def test_two_resolvers_that_disagree(dns_server, nginx_origin):
    from dnsserver import DNSServer
    other = DNSServer().start()
    try:
        dns_server.set_a("moved.test", ["127.0.0.1"], ttl=25)
        other.set_a("moved.test", ["127.0.0.3"], ttl=300)
        code, doc = check_json(f"http://moved.test:{nginx_origin.port}/small.txt",
                               "--resolver", dns_server.address, "--resolver", other.address,
                               *QUICK)
        assert code == 0, doc  # the edge asks the first resolver, whose answer works
        dns = doc["origins"][0]["dns"]
        assert "disagree" in dns["flags"]
        assert dns["disagreement"]["settles_in_s"] == 300
        assert f"{dns_server.address} says 127.0.0.1 (ttl 25 s)" in dns["disagreement"]["detail"]
        assert f"{other.address} says 127.0.0.3 (ttl 300 s)" in dns["disagreement"]["detail"]
        assert [r["server"] for r in dns["resolvers"]] == [dns_server.address, other.address]
        out = run_verge(["check", f"http://moved.test:{nginx_origin.port}/small.txt",
                         "--resolver", dns_server.address, "--resolver", other.address, *QUICK])
        assert "resolvers disagree" in out.stdout.decode()
        assert "expires within 300 s" in out.stdout.decode()
    finally:
        other.stop()


def test_answer_in_private_space_is_flagged(dns_server):
    dns_server.set_a("internal.test", ["10.255.255.254"], ttl=30)
    code, doc = check_json("http://internal.test/", "--resolver", dns_server.address,
                           "--no-ping", "--no-trace", "--count", "1", "--timeout", "300ms")
    assert "private" in doc["origins"][0]["dns"]["flags"]
    out = run_verge(["check", "http://internal.test/", "--resolver", dns_server.address,
                     "--no-ping", "--no-trace", "--count", "1", "--timeout", "300ms"])
    assert "points into private address space" in out.stdout.decode()


def test_answer_pointing_at_the_edge_itself_is_refused(tmp_path, dns_server):
    port = free_port()
    dns_server.set_a("self.test", ["127.0.0.1"], ttl=30)
    cfg = tmp_path / "v.yaml"
    cfg.write_text(f"listen: [\"127.0.0.1:{port}\"]\nadmin: off\n"
                   f"resolver: {{ servers: [\"{dns_server.address}\"] }}\n"
                   f"zones: [ {{ name: www, hosts: [a.test], origins: [\"http://self.test:{port}\"] }} ]\n")
    code, doc = check_json("--zone", "www", "-c", str(cfg), *QUICK)
    assert code == 7 and doc["verdict"] == "origin address refused by the edge", doc
    o = doc["origins"][0]
    assert "edge_itself" in o["dns"]["flags"]
    assert o["tcp"][0]["result"] == "refused_by_policy"
    assert "this edge's own listener" in doc["evidence"]


# ----------------------------------------------------------------------------- reachability

def test_tcp_probes_give_each_outcome_and_min_avg_max(nginx_origin):
    code, doc = check_json(f"{nginx_origin.url}/small.txt", "--count", "4", "--interval", "50ms",
                           "--no-trace")
    assert code == 0
    [t] = doc["origins"][0]["tcp"]
    assert t["sent"] == 4 and t["answered"] == 4 and t["result"] == "open"
    assert [a["result"] for a in t["attempts"]] == ["open"] * 4
    assert t["min_ms"] <= t["avg_ms"] <= t["max_ms"]
    assert t["local"] == "127.0.0.1"


def test_closed_port_attempts_are_refused_with_the_edges_classification():
    port = free_port()
    code, doc = check_json(f"http://127.0.0.1:{port}/", "--count", "2", "--no-trace")
    assert code == 3
    [t] = doc["origins"][0]["tcp"]
    assert [a["error"] for a in t["attempts"]] == ["connection_refused"] * 2
    assert all(a["icmp"] is None for a in t["attempts"])


def test_icmp_ping_runs_or_says_why_it_cannot(nginx_origin):
    import os
    code, doc = check_json(f"{nginx_origin.url}/small.txt", "--count", "2", "--no-trace")
    [p] = doc["origins"][0]["ping"]
    if os.geteuid() == 0:
        assert p["result"] == "ok" and p["received"] == 2 and p["min_ms"] is not None
        assert p["detail"] in ("raw ICMP socket", "unprivileged ICMP socket")
    else:
        assert p["result"] in ("ok", "skipped")
        if p["result"] == "skipped":
            assert "ping_group_range" in p["detail"]


def test_traceroute_to_loopback_reaches_it_at_the_first_hop(nginx_origin):
    code, doc = check_json(f"{nginx_origin.url}/small.txt", "--count", "1")
    assert code == 0
    [t] = doc["origins"][0]["trace"]
    assert t["udp"]["reached"] and t["udp"]["reached_hop"] == 1
    assert t["udp"]["hops"][0]["icmp"]["kind"] == "port_unreachable"
    assert t["tcp"]["reached"] and t["tcp"]["hops"][0]["what"] == "SYN-ACK (port open)"


# ----------------------------------------------------------------------------- HTTP

def test_http_phases_and_what_the_cache_would_do(tmp_path, scripted_origin):
    o = scripted_origin(answering(200, b"hello", [("Cache-Control", "max-age=120"),
                                                 ("Server", "test-origin")]))
    cfg = zone_file(tmp_path, [o.url], top="admin: off\n", zone_extra="    cache: true\n")
    code, doc = check_json("--zone", "www", "-c", str(cfg), *QUICK)
    assert code == 0, doc
    http = doc["origins"][0]["http"]
    assert http["accepted"] and http["complete"] and http["body_bytes"] == 5
    ph = http["phases"]
    assert ph["connect"] <= ph["first_byte"] <= ph["header"] <= ph["total"]
    assert http["fields"]["Cache-Control"] == "max-age=120"
    assert http["cache"] == {"zone_caches": True, "storable": True, "why": "max-age=120",
                             "lifetime_s": 120, "age_s": 0, "fresh_for_s": 120,
                             "stale_if_error_s": 0, "stale_while_revalidate_s": 0}
    out = run_verge(["check", "--zone", "www", "-c", str(cfg), *QUICK])
    assert "cache: the edge stores it, fresh for 120 s (max-age=120; age 0 s)" in out.stdout.decode()
    # the request the edge would send: its Via, and the origin's own Host
    req = o.requests[-1]
    assert req.headers.get("via").startswith("1.1 ") and req.headers.get("host") == o.hostport


def test_uncacheable_response_says_why(scripted_origin):
    o = scripted_origin(answering(200, b"mine", [("Cache-Control", "private, max-age=60")]))
    code, doc = check_json(o.url + "/", *QUICK)
    assert code == 0
    cache = doc["origins"][0]["http"]["cache"]
    assert not cache["storable"] and cache["why"] == "the response is Cache-Control: private"


def test_invalid_response_names_the_rfc9209_error(scripted_origin):
    def garbage(conn):
        if conn.read_request() is not None:
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello")
            conn.close()
    o = scripted_origin(garbage)
    code, doc = check_json(o.url + "/", *QUICK)
    assert code == 5 and doc["verdict"] == "invalid response"
    http = doc["origins"][0]["http"]
    assert http["error"] == "http_protocol_error" and not http["accepted"]


def test_header_section_past_the_edges_limit(scripted_origin):
    def huge(conn):
        if conn.read_request() is not None:
            conn.send(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n")
            conn.sleep(1)
    o = scripted_origin(huge)
    code, doc = check_json(o.url + "/", *QUICK)
    assert code == 5
    assert doc["origins"][0]["http"]["error"] == "http_response_header_section_size"


def test_waf_block_page_is_a_firewall_refusing_the_edge(scripted_origin):
    o = scripted_origin(answering(403, b"<title>Attention Required! | Cloudflare</title>",
                                  [("Server", "cloudflare"), ("CF-RAY", "8a1b2c3d4e5f-AMS")]))
    code, doc = check_json(o.url + "/", *QUICK)
    assert code == 4 and doc["verdict"] == "firewall blocking", doc
    assert doc["firewall"]["kind"] == "waf"
    assert doc["firewall"]["likely"].startswith("Cloudflare answers 403 to the edge")
    assert doc["next"].startswith("allow the edge's address 127.0.0.1 in Cloudflare's rules")
    assert doc["origins"][0]["http"]["waf"] == "Cloudflare"


def test_rate_limit_of_the_edges_address(scripted_origin):
    o = scripted_origin(answering(429, b"slow down", [("Retry-After", "30")]))
    code, doc = check_json(o.url + "/", *QUICK)
    assert code == 4 and doc["firewall"]["kind"] == "rate_limit"
    assert doc["next"] == "exempt the edge's address 127.0.0.1 from the origin's rate limit"


def test_plain_403_without_a_waf_signature_is_the_origins_answer(scripted_origin):
    o = scripted_origin(answering(403, b"no directory listing"))
    code, doc = check_json(o.url + "/", *QUICK)
    assert code == 0 and doc["firewall"] is None
    assert doc["origins"][0]["http"]["status"] == 403


# ----------------------------------------------------------------------------- Ctrl-C

def interrupted(args, waiting_origin):
    """Run verge check, Ctrl-C it once waiting_origin has the request: (exit, out, err)."""
    import signal
    import subprocess
    from harness import VERGE_BIN
    proc = subprocess.Popen([str(VERGE_BIN), "check", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        waiting_origin.wait_requests(1, timeout=10)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


def test_ctrl_c_reports_what_was_found_and_judges_it(tmp_path, scripted_origin):
    import json
    slow = scripted_origin(silent)
    dead = free_port()
    cfg = zone_file(tmp_path, [f"http://127.0.0.1:{dead}", slow.url], top="admin: off\n")
    code, out, err = interrupted(["--zone", "www", "-c", str(cfg), "--json", "--progress",
                                  "--timeout", "30s", "--no-trace", "--count", "1"], slow)
    doc = json.loads(out)
    assert code == 3 and doc["verdict"] == "origin down", doc  # the first origin's
    assert doc["interrupted"] is True
    dead_o, slow_o = doc["origins"]
    assert dead_o["tcp"][0]["result"] == "refused"
    assert slow_o["http"]["finished"] is False
    assert "before a response header" in slow_o["http"]["detail"]
    assert b"interrupted during the http step" in err


def test_ctrl_c_before_any_failure_is_exit_130(scripted_origin):
    slow = scripted_origin(silent)
    code, out, _ = interrupted([slow.url + "/", "--timeout", "30s", "--no-trace", "--count",
                                "1"], slow)
    text = out.decode()
    assert code == 130, text
    assert text.startswith("verdict: interrupted: stopped (Ctrl-C) before any failure was found")
    assert "open" in text  # what was found is still reported


# ----------------------------------------------------------------------------- admin /check

ADMIN_TOKEN = "check-token-for-tests-0123456789abcdef"


def admin_get(v, target, token=ADMIN_TOKEN):
    from harness import http
    headers = [("Connection", "close")] + ([("Authorization", f"Bearer {token}")] if token else [])
    return http(v.admin_port, "GET", target, host=f"127.0.0.1:{v.admin_port}", headers=headers,
                timeout=60)


def test_admin_check_runs_the_same_check_for_a_zone(verge, tmp_path, nginx_origin):
    import json
    dead = free_port()
    (tmp_path / "admin.token").write_text(ADMIN_TOKEN + "\n")
    v = verge.prepare()
    cfg = v.build_config([zone("up", [nginx_origin.url], hosts=["up.test"]),
                          zone("down", [f"http://127.0.0.1:{dead}"], hosts=["down.test"])])
    cfg["admin"]["token_file"] = str(tmp_path / "admin.token")
    v.write_config(cfg)
    v.start()
    resp = admin_get(v, "/check?zone=down&timeout=1s&trace=0")
    assert resp.status == 200 and resp.headers.get("content-type") == "application/json"
    doc = json.loads(resp.body)
    assert doc["verdict"] == "origin down" and doc["exit"] == 3
    assert doc["origins"][0]["tcp"][0]["result"] == "refused"
    assert doc["origins"][0]["ping"] and doc["origins"][0]["trace"] == []
    resp = admin_get(v, "/check?zone=up&path=/small.txt&timeout=1s")
    doc = json.loads(resp.body)
    assert doc["verdict"] == "OK" and doc["origins"][0]["http"]["path"] == "/small.txt"
    assert doc["origins"][0]["trace"][0]["tcp"]["reached"]
    # the workers kept serving meanwhile, and the admin endpoint still answers
    assert v.get("/small.txt", host="up.test").status == 200
    assert admin_get(v, "/check?zone=nope").status == 404
    assert admin_get(v, "/check").status == 400
    assert admin_get(v, "/check?zone=down", token="wrong").status == 401
    assert admin_get(v, "/check?zone=down", token=None).status == 401


def test_admin_check_is_closed_without_a_token_file(verge):
    v = verge([zone("z1", ["http://127.0.0.1:1"])])
    resp = admin_get(v, "/check?zone=z1")
    assert resp.status == 403 and b"/check is closed: set admin.token_file" in resp.body


def test_admin_check_given_up_by_its_client_is_harmless(verge, tmp_path, scripted_origin):
    from harness import Client, build_request
    slow = scripted_origin(silent)
    (tmp_path / "admin.token").write_text(ADMIN_TOKEN + "\n")
    v = verge.prepare()
    cfg = v.build_config([zone("z1", [slow.url])])
    cfg["admin"]["token_file"] = str(tmp_path / "admin.token")
    v.write_config(cfg)
    v.start()
    c = Client(v.admin_port)
    c.send(build_request("GET", "/check?zone=z1&timeout=3s&trace=0", host="admin",
                         headers=[("Authorization", f"Bearer {ADMIN_TOKEN}")]))
    slow.wait_requests(1, timeout=10)
    c.close()  # gone before the answer
    assert admin_get(v, "/healthz").status == 200
    assert v.stop() == 0
