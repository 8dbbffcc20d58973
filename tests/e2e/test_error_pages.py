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


def test_a_headless_browser_renders_the_page(verge, tmp_path):
    """The page renders in a real browser; the screenshot is kept in build/test-artifacts/."""
    import pathlib
    import shutil
    import subprocess
    import pytest
    browser = shutil.which("chromium-headless-shell")
    if browser is None:
        pytest.skip("chromium-headless-shell is not installed (./dev setup installs it)")
    v = refused_edge(verge)
    url = f"http://127.0.0.1:{v.port}/page"
    flags = [browser, "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path}/profile"]
    dom = subprocess.run(flags + ["--dump-dom", url], capture_output=True, timeout=60)
    text = dom.stdout.decode()
    assert "<h1>502 Bad Gateway</h1>" in text, dom.stderr.decode()[-2000:]
    assert "refused the connection" in text and "For the site owner" in text
    artifacts = pathlib.Path(__file__).resolve().parents[2] / "build" / "test-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "error-page-502-connection-refused.png"
    subprocess.run(flags + ["--window-size=900,700", f"--screenshot={shot}", url],
                   capture_output=True, timeout=60, check=True)
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10000  # a blank page is far smaller


def test_each_zone_and_host_gets_its_own_page_and_a_reload_replaces_it(verge, tmp_path):
    """Pages are rendered once and reused: a page must never be reused for another zone,
    another visitor Host, another format or after a reload that changed the zone's page."""
    (tmp_path / "a.html").write_text("<p>page A for {{host}} ({{request_id}})</p>")
    (tmp_path / "b.html").write_text("<p>page B for {{host}} ({{request_id}})</p>")
    down = f"http://127.0.0.1:{free_port()}"
    z1 = zone("z1", [down], hosts=["a.test", "*.a.test"],
              error_pages={"5xx": str(tmp_path / "a.html")})
    z2 = zone("z2", [f"http://127.0.0.1:{free_port()}"], hosts=["b.test"])
    v = verge([z1, z2])
    for _ in range(2):
        for host in ("a.test", "x.a.test"):
            resp = v.get("/", host=host, headers=[("Accept", BROWSER)])
            rid = resp.headers.get("x-request-id")
            assert resp.body.decode() == f"<p>page A for {host} ({rid})</p>", resp.body
        resp = v.get("/", host="b.test", headers=[("Accept", BROWSER)])
        assert "b.test" in resp.body.decode() and "page A" not in resp.body.decode()
        resp = v.get("/", host="a.test", headers=[("Accept", "application/json")])
        assert json.loads(resp.body)["request_id"] == resp.headers.get("x-request-id")
    z1["error_pages"] = {"5xx": str(tmp_path / "b.html")}
    v.reload(v.build_config([z1, z2]))
    resp = v.get("/", host="a.test", headers=[("Accept", BROWSER)])
    rid = resp.headers.get("x-request-id")
    assert resp.body.decode() == f"<p>page B for a.test ({rid})</p>", resp.body
