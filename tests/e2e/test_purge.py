"""Purge on the admin listener (token-protected): one URL, a prefix, a tag, a whole zone;
soft purge keeps stale-if-error protection, hard purge does not."""

import json
import time

from harness import http, zone
from test_cache import origin_answering

TOKEN = "purge-token-for-tests-0123456789"


def edge(verge, tmp_path, origin, **extra):
    (tmp_path / "admin.token").write_text(TOKEN + "\n")
    v = verge.prepare()
    cfg = v.build_config([zone("z1", [origin.url], cache=True, **extra)])
    cfg["admin"]["token_file"] = str(tmp_path / "admin.token")
    v.write_config(cfg)
    return v.start()


def purge(v, query, token=TOKEN):
    headers = [("Connection", "close")]
    if token:
        headers.append(("Authorization", f"Bearer {token}"))
    return http(v.admin_port, "POST", f"/purge?{query}", host="admin", headers=headers)


def warm(v, *paths):
    for p in paths:
        v.get(p)
        assert v.get(p).headers.get("x-cache") == "HIT"


def test_purge_one_url_a_prefix_a_tag_and_a_zone(verge, scripted_origin, tmp_path):
    origin = origin_answering(scripted_origin, {"Cache-Control": "max-age=600",
                                                "Cache-Tag": "product-7 images"})
    v = edge(verge, tmp_path, origin)
    warm(v, "/img/a.png", "/img/b.png", "/css/site.css")
    resp = purge(v, "zone=z1&path=/img/a.png")
    assert resp.status == 200 and json.loads(resp.body) == {"purged": 1, "mode": "hard"}
    assert v.get("/img/a.png").headers.get("x-cache") == "MISS"
    assert v.get("/img/b.png").headers.get("x-cache") == "HIT"
    assert json.loads(purge(v, "zone=z1&prefix=/img/").body)["purged"] == 2
    assert v.get("/img/b.png").headers.get("x-cache") == "MISS"
    warm(v, "/img/b.png")
    assert json.loads(purge(v, "zone=z1&tag=product-7").body)["purged"] == 2  # b and css
    assert v.get("/css/site.css").headers.get("x-cache") == "MISS"
    warm(v, "/css/site.css")
    assert json.loads(purge(v, "zone=z1").body)["purged"] >= 1
    assert v.get("/css/site.css").headers.get("x-cache") == "MISS"


def test_purge_needs_the_token(verge, scripted_origin, tmp_path):
    origin = origin_answering(scripted_origin, {"Cache-Control": "max-age=600"})
    v = edge(verge, tmp_path, origin)
    assert purge(v, "zone=z1", token=None).status == 401
    assert purge(v, "zone=z1", token="wrong-wrong-wrong-wrong").status == 401


def test_soft_purge_keeps_stale_if_error_hard_purge_does_not(verge, scripted_origin, tmp_path):
    origin = origin_answering(scripted_origin, {"Cache-Control": "max-age=600"})
    v = edge(verge, tmp_path, origin, stale_if_error="1h")
    warm(v, "/soft", "/hard")
    assert json.loads(purge(v, "zone=z1&path=/soft&mode=soft").body)["purged"] == 1
    assert json.loads(purge(v, "zone=z1&path=/hard").body)["purged"] == 1
    origin.stop()
    time.sleep(0.1)
    soft = v.get("/soft")
    assert soft.status == 200 and soft.headers.get("x-cache") == "STALE"
    assert soft.headers.get("cache-status").endswith("; detail=stale-if-error")
    assert soft.headers.get("proxy-status").startswith("testedge; error=connection_refused")
    hard = v.get("/hard")
    assert hard.status == 502
    assert hard.headers.get("proxy-status").startswith("testedge; error=connection_refused")
    assert "x-cache" not in hard.headers  # the edge's own error page, nothing from the cache
    m = v.metrics()
    assert m.value("verge_cache_requests_total", zone="z1", result="STALE") == 1
    assert m.value("verge_requests_total", zone="z1", status="502") == 1
    assert len(origin.requests) == 2  # /soft and /hard, once each


def test_no_worker_answers_from_a_purged_object(verge, scripted_origin, tmp_path):
    """Both workers (a new connection per request lands on either) remember their hits of
    /hot; once the purge has answered, neither gives the purged object again."""
    version = [0]

    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            version[0] += 1
            conn.respond(200, b"v%d\n" % version[0], {"Cache-Control": "max-age=600"})

    v = edge(verge, tmp_path, scripted_origin(handler))
    for _ in range(3):
        before = {v.get("/hot").body for _ in range(16)}
        assert len(before) == 1, before
        assert purge(v, "zone=z1&path=/hot").status == 200
        after = {v.get("/hot").body for _ in range(16)}
        assert not before & after, (before, after)
