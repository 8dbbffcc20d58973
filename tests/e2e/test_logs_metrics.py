"""Access log (combined and JSON), error log lines, /metrics counts and /healthz."""

import datetime
import json
import re

from harness import Client, can_connect, free_port, wait_until, zone

COMBINED = re.compile(
    r'^(?P<client>\S+) - - \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d{3}) '
    r'(?P<bytes>\d+|-) "(?P<referer>[^"]*)" "(?P<ua>[^"]*)" zone=(?P<zone>\S+) '
    r'rt=(?P<rt>\d+\.\d{3}) ot=(?P<ot>\d+\.\d{3}|-) origin=(?P<origin>\S+) '
    r'rid=(?P<rid>\S+) error=(?P<error>\S+) cache=(?P<cache>\S+)$')
ERROR_LINE = re.compile(
    r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} "
    r"\[(debug|info|notice|warn|error|crit|alert|emerg)\] \d+#\d+: \S.*$")
JSON_KEYS = {"time", "client", "method", "uri", "protocol", "status", "bytes", "referer",
             "user_agent", "zone", "request_time", "origin_time", "origin", "request_id",
             "error", "cache"}


def near_now(stamp, fmt):
    t = datetime.datetime.strptime(stamp, fmt)
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    now = datetime.datetime.now(datetime.timezone.utc)
    return abs((now - t).total_seconds()) < 300


def test_combined_access_line_for_proxied_request(verge, nginx_origin):
    v = verge([zone("z1", [nginx_origin])])
    resp = v.get("/small.txt?q=1", headers=[("User-Agent", "e2e-agent/1.0"),
                                           ("Referer", "http://ref.test/page")])
    assert resp.status == 200
    rid = resp.headers.get("x-request-id")
    line = v.access_line_for(rid)
    m = COMBINED.match(line)
    assert m, f"not the combined format: {line!r}"
    assert m["client"] == "127.0.0.1"
    assert near_now(m["time"], "%d/%b/%Y:%H:%M:%S %z"), m["time"]
    assert m["request"] == "GET /small.txt?q=1 HTTP/1.1"
    assert m["status"] == "200"
    assert m["bytes"] == str(len(nginx_origin.files["small.txt"])), \
        "combined %b is the body size"
    assert m["referer"] == "http://ref.test/page"
    assert m["ua"] == "e2e-agent/1.0"
    assert m["zone"] == "z1"
    assert m["origin"] == nginx_origin.hostport
    assert m["rid"] == rid
    assert m["error"] == "-"
    assert m["ot"] != "-" and float(m["ot"]) <= float(m["rt"]) + 0.001


def test_combined_access_line_for_unknown_host(verge, scripted_origin):
    v = verge([zone("z1", [scripted_origin()])])
    resp = v.get("/nowhere", host="unknown.example")
    assert resp.status == 421
    line = v.access_line_for(resp.headers.get("x-request-id"))
    m = COMBINED.match(line)
    assert m, line
    assert m["status"] == "421" and m["zone"] == "-" and m["origin"] == "-", line


def test_malformed_request_is_logged_with_what_it_sent_not_delete(verge, scripted_origin):
    """Regression (found running the Valgrind scenario): a head refused as malformed was
    logged as "DELETE / HTTP/0.0", llhttp's method 0 and no version."""
    v = verge([zone("z1", [scripted_origin()])])
    with Client(v.port) as c:
        c.send(b"PUT /bad HTTP/1.1\r\nHost: a.test\r\nX-Ok: 1\r\nBad Header\r\n\r\n")
        assert c.read_response("PUT").status == 400
    with Client(v.port) as c:
        c.send(b"\x01\x02 garbage\r\n\r\n")
        assert c.read_response().status == 400
    lines = v.wait_access(count=2)
    requests = sorted(COMBINED.match(line)["request"] for line in lines)
    assert requests == ["- - -", "PUT /bad HTTP/1.1"], lines


def test_json_access_line_has_every_field(verge, nginx_origin):
    v = verge([zone("z1", [nginx_origin])], logs={"access_format": "json"})
    resp = v.request("HEAD", "/index.html", headers=[("User-Agent", 'quote" and \\ agent')])
    assert resp.status == 200
    rid = resp.headers.get("x-request-id")
    line = v.access_line_for(rid)
    rec = json.loads(line)
    assert JSON_KEYS <= set(rec), f"missing {JSON_KEYS - set(rec)} in {rec}"
    assert rec["client"] == "127.0.0.1"
    assert rec["method"] == "HEAD"
    assert rec["uri"] == "/index.html"
    assert rec["protocol"] == "HTTP/1.1"
    assert rec["status"] == 200
    assert rec["bytes"] == 0
    assert rec["user_agent"] == 'quote" and \\ agent'
    assert rec["zone"] == "z1"
    assert rec["origin"] == nginx_origin.hostport
    assert rec["request_id"] == rid
    assert rec["error"] in (None, "-", "")
    assert isinstance(rec["request_time"], (int, float))
    assert isinstance(rec["origin_time"], (int, float))


def test_json_access_line_for_origin_failure(verge):
    v = verge([zone("z1", [f"http://127.0.0.1:{free_port()}"])], logs={"access_format": "json"})
    resp = v.get("/down")
    assert resp.status == 502
    rec = json.loads(v.access_line_for(resp.headers.get("x-request-id")))
    assert rec["status"] == 502
    assert rec["error"] == "connection_refused"


def test_every_access_line_is_one_json_object(verge, scripted_origin):
    v = verge([zone("z1", [scripted_origin()])], logs={"access_format": "json"})
    for i in range(5):
        v.get(f"/n{i}")
    v.get("/x", host="unknown.example")
    v.wait_access(count=6)
    for line in v.access_lines():
        assert isinstance(json.loads(line), dict), line


def test_metrics_count_requests_connections_and_origin_requests(verge, nginx_origin):
    v = verge([zone("z1", [nginx_origin])])
    before = v.metrics()
    for _ in range(7):
        assert v.get("/small.txt").status == 200
    for _ in range(3):
        assert v.get("/", host="unknown.example").status == 421
    with Client(v.port) as c:  # two more on one connection
        assert c.request("GET", "/index.html").status == 200
        assert c.request("GET", "/nope-404").status == 404
    m = v.metrics()
    assert not m.bad_lines, m.bad_lines
    assert m.value("verge_requests_total", zone="z1", status="200") == 8
    assert m.value("verge_requests_total", zone="z1", status="404") == 1
    assert m.value("verge_requests_total", zone="-", status="421") == 3
    assert m.value("verge_origin_requests_total", zone="z1") == 9
    assert 1 <= m.value("verge_origin_connections_total", zone="z1") <= 2
    assert m.sum("verge_origin_errors_total", zone="z1") == 0
    assert m.value("verge_connections_total") - before.value("verge_connections_total") == 11
    wait_until(lambda: v.metrics().value("verge_connections_active") == 0,
               what="verge_connections_active back to 0")


def test_metrics_text_is_prometheus_format(verge, scripted_origin):
    v = verge([zone("z1", [scripted_origin()])])
    v.get("/")
    resp = v.admin("/metrics")
    assert resp.status == 200
    assert (resp.headers.get("content-type") or "").startswith("text/plain"), resp.headers
    m = v.metrics()
    assert not m.bad_lines, m.bad_lines
    for family, kind in (("verge_requests_total", "counter"),
                         ("verge_origin_errors_total", "counter"),
                         ("verge_connections_active", "gauge"),
                         ("verge_connections_total", "counter")):
        assert f"# TYPE {family} {kind}" in m.text, family
    assert {"verge_requests_total", "verge_connections_active",
            "verge_connections_total"} <= m.names()


def test_connections_active_counts_open_visitor_connections(verge, scripted_origin):
    v = verge([zone("z1", [scripted_origin()])])
    clients = [Client(v.port) for _ in range(3)]
    try:
        for c in clients:
            assert c.request("GET", "/").status == 200
        assert v.metrics().value("verge_connections_active") == 3
    finally:
        for c in clients:
            c.close()
    wait_until(lambda: v.metrics().value("verge_connections_active") == 0,
               what="verge_connections_active back to 0")


def test_healthz_says_ok(verge, scripted_origin):
    v = verge([zone("z1", [scripted_origin()])])
    resp = v.admin("/healthz")
    assert resp.status == 200
    assert resp.body.strip() == b"ok"


def test_admin_off_opens_no_admin_listener(verge, scripted_origin):
    v = verge([zone("z1", [scripted_origin()])], admin="off")
    assert v.get("/").status == 200
    assert not can_connect(v.admin_port)


def test_error_log_lines_have_the_documented_format_and_context(verge):
    port = free_port()
    v = verge([zone("z1", [f"http://127.0.0.1:{port}"])])
    resp = v.get("/down")
    assert resp.status == 502
    rid = resp.headers.get("x-request-id")
    v.wait_error_log("connection_refused")
    lines = [l for l in v.error_log().splitlines() if l.strip()]
    bad = [l for l in lines if not ERROR_LINE.match(l)]
    assert not bad, bad
    failure = [l for l in lines if "connection_refused" in l]
    assert any(f"127.0.0.1:{port}" in l for l in failure), failure
    assert any(rid in l for l in failure), f"request id {rid} not in {failure}"
