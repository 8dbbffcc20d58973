"""verge check: the verdict (first line and exit status) names the culprit, from the edge's
own position and with its own resolver, connect path and parser."""

from harness import free_port, run_verge


def check(*args, timeout=30):
    out = run_verge(["check", *args], timeout=timeout)
    text = out.stdout.decode()
    return out.returncode, text.splitlines()[0] if text else "", text


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
    def silent(conn):
        conn.read_request()
        conn.sleep(3)
    origin = scripted_origin(silent)
    code, verdict, text = check(origin.url + "/", "--timeout", "500ms")
    assert code == 6, text
    assert verdict.startswith("verdict: origin too slow")


def test_zone_from_a_configuration_file(tmp_path, nginx_origin):
    cfg = tmp_path / "v.yaml"
    cfg.write_text("zones:\n  - name: www\n    hosts: [a.test]\n"
                   f"    origins: [\"{nginx_origin.url}\", \"http://127.0.0.1:{free_port()}\"]\n")
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
    def silent(conn):
        conn.read_request()
        conn.sleep(3)
    slow = scripted_origin(silent)
    dead = free_port()
    cfg = tmp_path / "v.yaml"
    cfg.write_text("zones:\n  - name: www\n    hosts: [a.test]\n"
                   f"    origins: [\"{slow.url}\", \"http://127.0.0.1:{dead}\"]\n")
    code, doc = check_json("--zone", "www", "-c", str(cfg), "--timeout", "500ms")
    assert code == 6  # the first failure found decides: the slow one
    slow_o, dead_o = doc["origins"]
    assert slow_o["http"]["error"] == "http_response_timeout"
    assert dead_o["tcp"][0]["result"] == "refused" and dead_o["http"] is None
