"""Error responses that help: HTML for browsers, problem+json for JSON clients, plain text
for the rest; never cacheable; Retry-After where a retry may help; the visitor's Host is
escaped wherever it shows."""

import json

from harness import free_port, zone

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def refused_edge(verge, **extra):
    return verge([zone("z1", [f"http://127.0.0.1:{free_port()}"], hosts=["*"], **extra)])


def test_browser_gets_html_that_explains_and_reloads(verge):
    v = refused_edge(verge)
    resp = v.get("/page", headers=[("Accept", BROWSER)])
    assert resp.status == 502
    assert resp.headers.get("content-type") == "text/html; charset=utf-8"
    assert resp.headers.get("cache-control") == "no-store"
    assert resp.headers.get("retry-after") == "5"
    page = resp.body.decode()
    assert "refused the connection" in page
    assert "not a problem with your browser" in page
    assert "http-equiv=refresh" in page
    assert "verge check http://127.0.0.1:" in page
    assert resp.headers.get("x-request-id") in page


def test_json_client_gets_problem_json(verge):
    v = refused_edge(verge)
    resp = v.get("/api", headers=[("Accept", "application/json")])
    assert resp.headers.get("content-type") == "application/problem+json"
    doc = json.loads(resp.body)
    assert doc["status"] == 502 and doc["proxy_status"] == "connection_refused"
    assert doc["type"].endswith("/connection_refused")
    assert doc["request_id"] == resp.headers.get("x-request-id")


def test_curl_gets_plain_text(verge):
    v = refused_edge(verge)
    resp = v.get("/", headers=[("Accept", "*/*")])
    assert resp.headers.get("content-type") == "text/plain; charset=utf-8"
    assert resp.body.startswith(b"502 Bad Gateway\n")


def test_visitor_host_is_escaped_in_the_page(verge):
    v = refused_edge(verge)
    resp = v.get("/", host="evil.test", headers=[("Accept", BROWSER)])
    assert b"site evil.test" in resp.body
    resp = v.get("/", host="<script>x</script>", headers=[("Accept", BROWSER)])
    assert resp.status == 400  # not a host name: refused before any page shows it raw
    assert b"<script>" not in resp.body


def test_post_page_does_not_reload_itself(verge):
    v = refused_edge(verge)
    resp = v.request("POST", "/form", body=b"a=1", headers=[("Accept", BROWSER)])
    assert resp.status == 502
    assert b"http-equiv=refresh" not in resp.body


def test_expose_details_false_keeps_owner_hints_out(verge):
    v = refused_edge(verge, expose_details=False)
    resp = v.get("/", headers=[("Accept", BROWSER)])
    page = resp.body.decode()
    assert "refused the connection" in page
    assert "verge check" not in page and "127.0.0.1:" not in page.split("site")[0]


def test_zone_template_is_filled_with_escaped_values(verge, tmp_path):
    (tmp_path / "5xx.html").write_text(
        "<html><h1>{{status}} {{reason}}</h1><p>{{what}}</p><p>{{cause}}</p>"
        "<p id=rid>{{request_id}}</p><p id=host>{{host}}</p><p>{{check}}</p></html>")
    (tmp_path / "421.html").write_text("<p>no site {{host}} here</p>")
    v = verge([zone("z1", [f"http://127.0.0.1:{free_port()}"], hosts=["a.test", "*.b.test"],
                    error_pages={"5xx": str(tmp_path / "5xx.html")})])
    resp = v.get("/", headers=[("Accept", BROWSER)])
    page = resp.body.decode()
    assert page.startswith("<html><h1>502 Bad Gateway</h1>")
    assert "refused the connection" in page and "<p>connection_refused</p>" in page
    assert f"<p id=rid>{resp.headers.get('x-request-id')}</p>" in page
    assert "<p id=host>a.test</p>" in page
    assert "verge check http://127.0.0.1:" in page
    # JSON clients still get problem+json, not the HTML template
    resp = v.get("/", headers=[("Accept", "application/json")])
    assert resp.headers.get("content-type") == "application/problem+json"


def test_template_with_unknown_placeholder_is_refused_at_load(tmp_path):
    from harness import run_verge
    (tmp_path / "bad.html").write_text("<p>{{visitor_ip}}</p>")
    cfg = tmp_path / "v.yaml"
    cfg.write_text("zones:\n  - name: z\n    hosts: [a.test]\n"
                   "    origins: [\"http://127.0.0.1:1\"]\n"
                   "    error_pages: { 502: bad.html }\n")
    out = run_verge(["-t", "-c", cfg])
    assert out.returncode == 1
    err = out.stderr.decode()
    assert f"{cfg}:5:25: error page" in err and "unknown placeholder \"{{visitor_ip}}\";" in err
