"""Origin address policy and what visitors are told: a loop back to the edge, private
space when a zone forbids it, and Proxy-Status details hidden with expose_details: false."""

import re

from harness import zone


def test_origin_pointing_at_the_edge_itself_gives_502_proxy_loop_detected(verge):
    v = verge.prepare()
    v.write_config(v.build_config([zone("z1", [f"http://127.0.0.1:{v.port}"])]))
    v.start()
    resp = v.get("/x")
    assert resp.status == 502, resp
    assert resp.headers.get("proxy-status").startswith("testedge; error=proxy_loop_detected")
    m = v.metrics()
    assert m.value("verge_origin_errors_total", zone="z1", error="proxy_loop_detected") == 1
    # The edge never called itself: this was the only visitor request it saw.
    assert m.value("verge_requests_total", zone="z1", status="502") == 1
    v.wait_error_log(r"proxy_loop_detected")


def test_private_origin_refused_when_zone_disallows_it(verge, nginx_origin):
    v = verge([zone("z1", [nginx_origin], allow_private=False)])
    resp = v.get("/small.txt")
    assert resp.status == 502, resp
    ps = resp.headers.get("proxy-status")
    assert ps.startswith("testedge; error=destination_ip_prohibited"), ps
    assert "allow_private" in ps
    assert nginx_origin.access_lines() == []
    v.wait_error_log(r"destination_ip_prohibited")


def test_expose_details_false_hides_details_from_visitors_not_from_logs(verge):
    v = verge.prepare()
    v.write_config(v.build_config([zone("z1", [f"http://127.0.0.1:{v.port}"],
                                        expose_details=False)]))
    v.start()
    resp = v.get("/x", headers=[("Accept", "text/html")])
    assert resp.status == 502
    assert resp.headers.get("proxy-status") == "testedge; error=proxy_loop_detected"
    assert str(v.port) not in resp.body.decode()
    v.wait_error_log(re.escape(f"127.0.0.1:{v.port}"))
