"""The owner's view of one failed request: /requests/<id> on the admin listener, behind
the admin token, says what was tried, each address, each timing, and the classification."""

import json

from harness import free_port, http, zone

TOKEN = "s3cret-token-for-tests-0123456789"


def story(v, rid, token=TOKEN):
    headers = [("Connection", "close")]
    if token is not None:
        headers.append(("Authorization", f"Bearer {token}"))
    return http(v.admin_port, "GET", f"/requests/{rid}", host="admin", headers=headers)


def start(verge, tmp_path, origins, resolver=None):
    (tmp_path / "admin.token").write_text(TOKEN + "\n")
    v = verge.prepare()
    cfg = v.build_config([zone("z1", origins)], **({"resolver": resolver} if resolver else {}))
    cfg["admin"]["token_file"] = str(tmp_path / "admin.token")
    v.write_config(cfg)
    return v.start()


def test_story_lists_every_address_tried_and_the_classification(verge, tmp_path):
    ports = [free_port(), free_port()]
    v = start(verge, tmp_path, [f"http://127.0.0.1:{p}" for p in ports])
    resp = v.get("/some/page?q=1")
    assert resp.status == 502
    rid = resp.headers.get("x-request-id")
    s = story(v, rid)
    assert s.status == 200, s
    assert s.headers.get("content-type") == "application/json"
    doc = json.loads(s.body)
    assert doc["request_id"] == rid
    assert doc["zone"] == "z1" and doc["host"] == "a.test"
    assert doc["method"] == "GET" and doc["target"] == "/some/page?q=1"
    assert doc["status"] == 502 and doc["error"] == "connection_refused"
    tried = [a["target"] for a in doc["attempts"]]
    assert sorted(tried) == sorted(f"127.0.0.1:{p}" for p in ports)
    for a in doc["attempts"]:
        assert a["result"] == "connection_refused" and a["phase"] == "connect"
        assert "Connection refused" in a["detail"]
        assert a["took_ms"] >= 0 and a["start_ms"] >= 0


def test_story_of_a_name_that_does_not_resolve_shows_the_dns_step(verge, tmp_path,
                                                                  dns_server):
    dns_server.set_rcode("nonexistent.invalid", "NXDOMAIN")
    v = start(verge, tmp_path, ["http://nonexistent.invalid:80"],
              resolver={"servers": [dns_server.address]})
    resp = v.get("/")
    rid = resp.headers.get("x-request-id")
    doc = json.loads(story(v, rid).body)
    [step] = doc["attempts"]
    assert step["target"] == "nonexistent.invalid" and step["phase"] == "resolve"
    assert step["result"] == "dns_error"
    assert "rcode=NXDOMAIN" in step["detail"]


def test_story_needs_the_token(verge, tmp_path):
    v = start(verge, tmp_path, [f"http://127.0.0.1:{free_port()}"])
    rid = v.get("/").headers.get("x-request-id")
    assert story(v, rid, token=None).status == 401
    assert story(v, rid, token="wrong-token-wrong-token-wrong").status == 401
    assert story(v, "0" * 32).status == 404


def test_stories_are_closed_without_a_token_file(verge):
    v = verge([zone("z1", [f"http://127.0.0.1:{free_port()}"])])
    rid = v.get("/").headers.get("x-request-id")
    assert story(v, rid).status == 403


def test_short_token_file_is_refused_with_its_position(verge, tmp_path):
    (tmp_path / "short.token").write_text("short\n")
    from harness import run_verge
    cfg = tmp_path / "v.yaml"
    cfg.write_text("admin:\n  token_file: short.token\n"
                   "zones: [ { name: z, hosts: [a.test], origins: [\"http://127.0.0.1:1\"] } ]\n")
    out = run_verge(["-t", "-c", cfg])
    assert out.returncode == 1
    assert f"{cfg}:2:15: admin token" in out.stderr.decode()


def test_story_carries_the_automatic_diagnosis_of_the_origin(verge, tmp_path):
    from harness import wait_until
    port = free_port()
    (tmp_path / "admin.token").write_text(TOKEN + "\n")
    v = verge.prepare()
    cfg = v.build_config([zone("z1", [f"http://127.0.0.1:{port}"], health={"failures": 1})])
    cfg["admin"]["token_file"] = str(tmp_path / "admin.token")
    v.write_config(cfg)
    v.start()
    rid = v.get("/").headers.get("x-request-id")

    def diagnosed():
        doc = json.loads(story(v, rid).body)
        return doc if doc["diagnosis"] else None
    doc = wait_until(diagnosed, what="diagnosis in the story")
    assert doc["origin_url"] == f"http://127.0.0.1:{port}"
    assert doc["diagnosis"].startswith("verdict: origin down")


def test_story_of_a_request_to_a_zone_known_down(verge, tmp_path):
    (tmp_path / "admin.token").write_text(TOKEN + "\n")
    v = verge.prepare()
    cfg = v.build_config([zone("z1", [f"http://127.0.0.1:{free_port()}"],
                               health={"failures": 1, "hold": "1h"})])
    cfg["admin"]["token_file"] = str(tmp_path / "admin.token")
    v.write_config(cfg)
    v = v.start()
    assert v.get("/first").status == 502
    resp = v.get("/second")
    assert resp.status == 503
    doc = json.loads(story(v, resp.headers.get("x-request-id")).body)
    assert doc["status"] == 503 and doc["error"] == "destination_unavailable"
    assert doc["target"] == "/second"
    [step] = doc["attempts"]
    assert step["target"] == "every origin" and step["result"] == "destination_unavailable"
    assert "marked down" in step["detail"]
