"""Recovery: backup origins, the retry budget, passive health marking an origin down (fast
503 destination_unavailable) and bringing it back with one probe, and /incidents."""

import json
import re
import time

from harness import TinyOrigin, build_request, free_port, wait_until, zone


def incidents(v):
    resp = v.admin("/incidents")
    assert resp.status == 200
    assert resp.headers.get("content-type") == "application/json"
    return json.loads(resp.body)["incidents"]


def test_backup_origin_serves_only_when_the_primary_fails(verge, nginx_origin):
    primary_port = free_port()
    primary = TinyOrigin(primary_port)
    try:
        z = zone("z1", [f"http://127.0.0.1:{primary_port}"])
        z["origins"].append({"url": nginx_origin.url, "backup": True})
        v = verge([z])
        for _ in range(4):
            resp = v.get("/small.txt")
            assert resp.status == 200 and resp.body == b"up\n"
        assert nginx_origin.access_lines() == []
    finally:
        primary.stop()
    resp = v.get("/small.txt")
    assert resp.status == 200 and resp.body == nginx_origin.files["small.txt"]
    assert v.metrics().value("verge_origin_errors_total", zone="z1",
                             error="connection_refused") >= 1


def test_retry_budget_bounds_the_attempts_per_request(verge):
    dead = [f"http://127.0.0.1:{free_port()}" for _ in range(4)]
    v = verge([zone("z1", dead, retries=1, health={"failures": 0})])
    resp = v.get("/x")
    assert resp.status == 502
    assert resp.headers.get("proxy-status").startswith("testedge; error=connection_refused")
    m = v.metrics()
    assert m.value("verge_origin_errors_total", zone="z1", error="connection_refused") == 2


def test_origin_marked_down_gives_fast_503_then_recovers_through_one_probe(verge):
    port = free_port()
    v = verge([zone("z1", [f"http://127.0.0.1:{port}"],
                    health={"failures": 2, "hold": "1s"})])
    for _ in range(2):
        assert v.get("/x").status == 502
    v.wait_error_log(r"origin http://127\.0\.0\.1:%d marked down after 2 consecutive" % port)
    resp = v.get("/x")
    assert resp.status == 503, resp
    ps = resp.headers.get("proxy-status")
    assert ps.startswith("testedge; error=destination_unavailable"), ps
    assert "marked down" in ps and "connection_refused" in ps
    assert resp.headers.get("retry-after")
    m = v.metrics()
    # The third request never tried to connect: still two refusals.
    assert m.value("verge_origin_errors_total", zone="z1", error="connection_refused") == 2
    assert m.value("verge_origin_errors_total", zone="z1", error="destination_unavailable") == 1
    [inc] = incidents(v)
    assert inc["zone"] == "z1" and inc["origin"] == f"http://127.0.0.1:{port}"
    assert inc["cause"] == "connection_refused" and inc["end"] is None
    assert inc["requests_affected"] >= 1
    # The edge diagnosed the origin by itself, with the same probes as verge check.
    v.wait_error_log(r"diagnosis of origin http://127\.0\.0\.1:%d: verdict: origin down" % port)
    [inc] = wait_until(lambda: [i for i in incidents(v) if i["diagnosis"]], what="diagnosis")
    assert inc["diagnosis"].startswith("verdict: origin down: every address of 127.0.0.1 "
                                       f"refuses connections on port {port}")
    assert "refused (origin down or port closed)" in inc["diagnosis"]

    origin = TinyOrigin(port)
    try:
        time.sleep(1.1)  # the hold runs out; the next request is the probe
        resp = v.get("/x")
        assert resp.status == 200 and resp.body == b"up\n"
        v.wait_error_log(r"is up again")
        [inc] = incidents(v)
        assert inc["end"] is not None
        assert v.get("/x").status == 200
    finally:
        origin.stop()


def test_failed_probe_keeps_the_origin_down(verge):
    port = free_port()
    v = verge([zone("z1", [f"http://127.0.0.1:{port}"],
                    health={"failures": 1, "hold": "1s"})])
    assert v.get("/x").status == 502
    assert v.get("/x").status == 503
    time.sleep(1.1)
    assert v.get("/x").status == 502  # the probe: tried and refused
    assert v.get("/x").status == 503  # down again for another hold
    m = v.metrics()
    assert m.value("verge_origin_errors_total", zone="z1", error="connection_refused") == 2


ACTIVE = {"path": "/health", "interval": "200ms", "timeout": "500ms", "rise": 2, "fall": 2}


def test_active_probes_take_a_dead_origin_down_before_visitors_hit_it(verge):
    port = free_port()
    v = verge([zone("z1", [f"http://127.0.0.1:{port}"], health={"active": ACTIVE})])
    v.wait_error_log(r"marked down after 2 failed health probes \(last: connection_refused")
    resp = v.get("/x")  # the first visitor request already gets the fast answer
    assert resp.status == 503, resp
    assert "destination_unavailable" in resp.headers.get("proxy-status")
    origin = TinyOrigin(port)
    try:
        v.wait_error_log(r"is up again \(2 health probes succeeded\)")
        assert v.get("/x").status == 200
        assert "/health" in origin.paths
        [inc] = incidents(v)
        assert inc["end"] is not None and inc["cause"] == "connection_refused"
    finally:
        origin.stop()


def test_probe_answered_with_a_5xx_marks_the_origin_down(verge):
    port = free_port()
    origin = TinyOrigin(port, status=503)
    try:
        v = verge([zone("z1", [f"http://127.0.0.1:{port}"], health={"active": ACTIVE})])
        v.wait_error_log(r"marked down after 2 failed health probes .*answered 503")
        assert v.get("/x").status == 503
        origin.status = 200
        v.wait_error_log(r"is up again")
        assert v.get("/x").status == 200
    finally:
        origin.stop()


def test_origin_5xx_passes_through_and_counts_only_when_the_zone_says_so(verge):
    port = free_port()
    origin = TinyOrigin(port, status=503, body=b"origin says no\n")
    try:
        plain = verge([zone("z1", [f"http://127.0.0.1:{port}"], health={"failures": 2})])
        for _ in range(3):
            resp = plain.get("/x")
            assert resp.status == 503 and resp.body == b"origin says no\n"
            assert "proxy-status" not in resp.headers  # the origin's answer, not ours
        plain.stop()
        counting = verge([zone("z1", [f"http://127.0.0.1:{port}"],
                               health={"failures": 2, "count_5xx": True})])
        for _ in range(2):
            assert counting.get("/x").body == b"origin says no\n"
        counting.wait_error_log(r"marked down after 2 consecutive failures \(last: origin_5xx, "
                                r"origin answered 503")
        resp = counting.get("/x")
        assert "destination_unavailable" in resp.headers.get("proxy-status")
    finally:
        origin.stop()


def _failure_lines(v, error):
    """(full lines, sum of the '... and N more like it' counts) for one error type."""
    full, more = 0, 0
    for line in v.error_log().splitlines():
        if f"({error})" not in line:
            continue
        m = re.search(r": and (\d+) more like it in the last ", line)
        if m:
            more += int(m.group(1))
        elif "while proxying" in line:
            full += 1
    return full, more


def test_zone_known_down_answers_every_request_without_a_fetch(verge):
    port = free_port()
    v = verge([zone("z1", [f"http://127.0.0.1:{port}"], health={"failures": 1, "hold": "1h"})])
    assert v.get("/x").status == 502  # marks the origin down
    before = v.metrics()
    n, rids = 30, []
    with v.client() as c:
        for i in range(n):
            accept = ("text/html", "application/json", "text/plain")[i % 3]
            resp = c.request("GET", f"/p{i}", headers=[("Accept", accept)])
            assert resp.status == 503, resp
            assert resp.headers.get("proxy-status").startswith(
                "testedge; error=destination_unavailable"), resp.headers
            rid = resp.headers.get("x-request-id")
            # One page rendered once, but each answer carries its own request id.
            assert rid not in rids and rid in resp.body.decode(), (rid, resp.body[:300])
            assert int(resp.headers.get("content-length")) == len(resp.body)
            rids.append(rid)
    m = v.metrics()
    assert m.value("verge_origin_errors_total", zone="z1", error="connection_refused") == 1
    assert m.value("verge_origin_errors_total", zone="z1", error="destination_unavailable") == n
    assert (m.value("verge_origin_connections_total", zone="z1")
            == before.value("verge_origin_connections_total", zone="z1"))  # nothing tried
    assert m.value("verge_requests_total", zone="z1", status="503") == n
    [inc] = incidents(v)
    assert inc["requests_affected"] == n and inc["end"] is None
    for rid in rids:  # every one is in the access log, whatever the error log says
        assert "error=destination_unavailable" in v.access_line_for(rid)
    # The error log: the first of each second in full, the rest counted, none lost.
    wait_until(lambda: sum(_failure_lines(v, "destination_unavailable")) == n, timeout=5,
               what=f"{n} destination_unavailable failures in the error log")
    full, more = _failure_lines(v, "destination_unavailable")
    assert 1 <= full < n and more == n - full, (full, more)
    assert rids[0] in v.error_log()  # the first line in full names its request


def test_zone_known_down_answers_pipelined_requests_in_order(verge):
    port = free_port()
    v = verge([zone("z1", [f"http://127.0.0.1:{port}"], hosts=["a.test"],
                    health={"failures": 1, "hold": "1h"})])
    assert v.get("/x").status == 502
    # More than one pass of pipelined answers (64 per loop iteration), with the edge's own
    # answers of another kind (421) and a HEAD among them.
    hosts = ["a.test"] * 150
    hosts[70] = "unknown.test"
    methods = ["GET"] * 150
    methods[100] = "HEAD"
    data = b"".join(build_request(m, f"/n{i}", host=h) for i, (m, h) in enumerate(zip(methods, hosts)))
    rids = []
    with v.client() as c:
        c.send(data)
        for i, (m, h) in enumerate(zip(methods, hosts)):
            resp = c.read_response(m)
            assert resp.status == (421 if h != "a.test" else 503), (i, resp)
            assert resp.body == b"" if m == "HEAD" else resp.body, (i, resp)
            rids.append(resp.headers.get("x-request-id"))
        assert c.request("GET", "/after").status == 503  # the connection is still usable
    assert len(set(rids)) == len(rids)
    assert v.metrics().value("verge_requests_total", zone="z1", status="503") == 150
