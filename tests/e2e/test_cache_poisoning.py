"""Cache poisoning and deception: one visitor's request never shapes what another receives
from the cache. The origin here reflects whatever it is told (as badly written origins
do), so if an attacker's input reached it and the answer were stored, the victim would
see it. Rules: docs/hardening.md, docs/caching.md."""

import email.utils

import pytest

from harness import Client, build_request, wait_until, zone

LAST_MODIFIED = "Sun, 06 Nov 1994 08:49:37 GMT"  # old: heuristic freshness would be long


def reflecting_origin(scripted_origin, headers_for=lambda req: {}):
    """Answers with what it saw: the target, Host, X-Forwarded-Host, method, Cookie, body.
    Field names are read the CGI way ('_' and '-' alike), as many frameworks do."""
    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            xfh = [v for k, v in req.headers.items if k.lower().replace("_", "-") in
                   ("x-forwarded-host", "x-host", "x-original-host", "x-forwarded-server")]
            seen = (f"{req.method} {req.target} host={req.headers.get('host')} "
                    f"xfh={xfh[0] if xfh else None} "
                    f"cookie={req.headers.get('cookie')} body={req.body.decode()}").encode()
            conn.respond(200, seen, headers_for(req))
    return scripted_origin(handler)


def cached_edge(verge, origin, **extra):
    return verge([zone("z1", [origin.url], cache=True, **extra)])


def fetches(origin, target):
    return sum(1 for r in origin.requests if r.target == target)


def stored(v, n=1):
    """The store holds n objects: a visitor may have its last byte a moment before the
    object is committed, so a test that expects a HIT waits for the commit first."""
    wait_until(lambda: v.metrics().value("verge_cache_objects") >= n, what=f"{n} stored")


# ------------------------------------------------------------------ cache deception

@pytest.mark.parametrize("content_type", ["text/html", "text/css"])
def test_path_confusion_is_not_stored_as_static_content(verge, scripted_origin, content_type):
    """/account.php/x.css reaches account.php on many origins. The origin did not mark the
    answer cacheable, so it is not stored, whatever the extension and the Content-Type say:
    Verge never derives freshness from a file extension."""
    origin = reflecting_origin(scripted_origin, lambda req: {"Content-Type": content_type})
    v = cached_edge(verge, origin)
    victim = v.get("/account.php/x.css", headers=[("Cookie", "session=victim")])
    assert victim.status == 200 and b"cookie=session=victim" in victim.body
    attacker = v.get("/account.php/x.css")
    assert b"victim" not in attacker.body, attacker
    assert attacker.headers.get("x-cache") == "MISS", attacker
    assert fetches(origin, "/account.php/x.css") == 2


def test_the_extension_never_changes_what_is_stored(verge, scripted_origin):
    """The same answer at .css, .js, .png and .php: stored, or not, alike. Without
    validators or freshness nothing is stored; with only Last-Modified every one gets the
    same RFC 9111 heuristic freshness, the extension playing no part."""
    plain = reflecting_origin(scripted_origin)
    v = cached_edge(verge, plain)
    dated = reflecting_origin(scripted_origin, lambda req: {
        "Last-Modified": LAST_MODIFIED, "Date": email.utils.formatdate(usegmt=True)})
    v2 = verge([zone("z2", [dated.url], cache=True)])
    exts = ("css", "js", "png", "php", "html")
    for i, ext in enumerate(exts):
        path = f"/page.{ext}"
        assert v.get(path).status == 200
        assert v2.get(path).status == 200
        stored(v2, i + 1)
        assert v.get(path).headers.get("x-cache") == "MISS"
        assert v2.get(path).headers.get("x-cache") == "HIT"
        assert fetches(plain, path) == 2, ext    # not stored: nothing marks it cacheable
        assert fetches(dated, path) == 1, ext    # stored: the same heuristic for all
    assert v.metrics().value("verge_cache_objects") == 0


# ------------------------------------------------------------------ private responses

def test_response_to_an_authorized_request_is_not_shared(verge, scripted_origin):
    origin = reflecting_origin(scripted_origin, lambda req: {"Cache-Control": "max-age=60"})
    v = cached_edge(verge, origin)
    mine = v.get("/me", headers=[("Authorization", "Basic YWxpY2U6cHc=")])
    assert mine.status == 200
    other = v.get("/me")
    assert other.headers.get("x-cache") == "MISS"
    assert fetches(origin, "/me") == 2


@pytest.mark.parametrize("cc", ["public, max-age=60", "s-maxage=60", "max-age=60, must-revalidate"])
def test_authorized_responses_are_shared_only_where_rfc_9111_permits(verge, scripted_origin, cc):
    origin = reflecting_origin(scripted_origin, lambda req: {"Cache-Control": cc})
    v = cached_edge(verge, origin)
    assert v.get("/shared", headers=[("Authorization", "Bearer t")]).status == 200
    stored(v)
    again = v.get("/shared", headers=[("Authorization", "Bearer t")])
    assert again.headers.get("x-cache") == "HIT", (cc, again)
    assert fetches(origin, "/shared") == 1


@pytest.mark.parametrize("cc", ["max-age=60", "public, max-age=60", "s-maxage=60"])
def test_set_cookie_is_never_shared(verge, scripted_origin, cc):
    """RFC 9111 would let a cache store a response with Set-Cookie; Verge never does (as
    Varnish's built-in policy): one visitor's session must not become everyone's."""
    def headers(req):
        return {"Cache-Control": cc, "Set-Cookie": f"session={req.headers.get('x-who')}"}
    origin = reflecting_origin(scripted_origin, headers)
    v = cached_edge(verge, origin)
    first = v.get("/login", headers=[("X-Who", "victim")])
    assert first.headers.get("set-cookie") == "session=victim"
    second = v.get("/login", headers=[("X-Who", "attacker")])
    assert second.headers.get("set-cookie") == "session=attacker", second
    assert second.headers.get("x-cache") == "MISS"
    assert fetches(origin, "/login") == 2


# ------------------------------------------------------------------ unkeyed inputs

CACHEABLE = {"Cache-Control": "max-age=60"}


@pytest.mark.parametrize("field", ["X-Forwarded-Host", "X_Forwarded_Host", "X-Host",
                                   "X-Original-Host", "X-Forwarded-Server"])
def test_unkeyed_host_fields_cannot_poison_the_stored_answer(verge, scripted_origin, field):
    origin = reflecting_origin(scripted_origin, lambda req: CACHEABLE)
    v = cached_edge(verge, origin)
    poisoned = v.get("/home", headers=[(field, "evil.example")])
    assert b"evil" not in poisoned.body, poisoned
    stored(v)
    victim = v.get("/home")
    assert victim.headers.get("x-cache") == "HIT" and b"evil" not in victim.body, victim
    assert b"xfh=None" in victim.body


def test_method_override_fields_cannot_turn_a_stored_get_into_something_else(verge,
                                                                               scripted_origin):
    origin = reflecting_origin(scripted_origin, lambda req: CACHEABLE)
    v = cached_edge(verge, origin)
    v.get("/item", headers=[("X-HTTP-Method-Override", "DELETE"), ("X-Method-Override", "PUT"),
                            ("X-HTTP-Method", "POST")])
    [req] = origin.requests
    assert req.method == "GET"
    for name in ("x-http-method-override", "x-method-override", "x-http-method"):
        assert req.headers.get(name) is None


def test_host_is_sent_as_the_key_holds_it(verge, scripted_origin):
    """With origin_host: visitor, "A.Test.:8080" and "a.test" are one key, so the origin
    gets the one name the key holds, not the attacker's spelling."""
    origin = reflecting_origin(scripted_origin, lambda req: CACHEABLE)
    v = cached_edge(verge, origin, origin_host="visitor")
    poisoned = v.get("/h", host="A.Test.:8080")
    assert b"host=a.test " in poisoned.body, poisoned
    stored(v)
    victim = v.get("/h", host="a.test")
    assert victim.headers.get("x-cache") == "HIT" and b"host=a.test " in victim.body, victim


def test_a_get_with_a_body_neither_uses_nor_fills_the_cache(verge, scripted_origin):
    """A "fat GET": the origin may answer by a body no key holds."""
    origin = reflecting_origin(scripted_origin, lambda req: CACHEABLE)
    v = cached_edge(verge, origin)
    fat = v.request("GET", "/f", body=b"poison")
    assert b"body=poison" in fat.body
    clean = v.get("/f")
    assert clean.headers.get("x-cache") == "MISS" and b"poison" not in clean.body, clean
    stored(v)
    assert v.get("/f").headers.get("x-cache") == "HIT"
    assert fetches(origin, "/f") == 2


def test_a_conditional_visitor_cannot_store_a_304_for_everyone(verge, scripted_origin):
    def headers(req):
        return CACHEABLE | {"ETag": '"v1"'}

    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            if req.headers.get("if-none-match") == '"v1"':
                conn.respond(304, b"", headers(req))
            else:
                conn.respond(200, b"full body", headers(req))
    origin = scripted_origin(handler)
    v = cached_edge(verge, origin)
    assert v.get("/c", headers=[("If-None-Match", '"v1"')]).status == 304
    full = v.get("/c")
    assert full.status == 200 and full.body == b"full body", full


def test_targets_that_origins_read_another_way_are_refused(verge, scripted_origin):
    """A fragment, a backslash or a broken %-escape could be normalised by the origin to
    another path than the key holds: refused before any lookup."""
    origin = reflecting_origin(scripted_origin, lambda req: CACHEABLE)
    v = cached_edge(verge, origin)
    for target in ("/a#x", "/account.php\\x.css", "/a%2"):
        with Client(v.port) as c:
            c.send(build_request("GET", target))
            assert c.read_response().status == 400, target
    assert origin.requests == []


def test_a_coded_body_without_vary_reaches_only_visitors_that_asked_for_it(verge,
                                                                           scripted_origin):
    """The origin gzips for whoever sends Accept-Encoding: gzip and forgets Vary: the
    stored gzip body must not be every visitor's answer. (Once the plain answer is stored
    it may serve everyone: an identity body is safe for any visitor.)"""
    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            if "gzip" in (req.headers.get("accept-encoding") or ""):
                conn.respond(200, b"\x1f\x8b coded", CACHEABLE | {"Content-Encoding": "gzip"})
            else:
                conn.respond(200, b"plain", CACHEABLE)
    origin = scripted_origin(handler)
    v = cached_edge(verge, origin)
    assert v.get("/e", headers=[("Accept-Encoding", "gzip")]).body == b"\x1f\x8b coded"
    stored(v)
    again = v.get("/e", headers=[("Accept-Encoding", "gzip")])
    assert again.headers.get("x-cache") == "HIT" and again.body == b"\x1f\x8b coded"
    plain = v.get("/e")
    assert plain.body == b"plain" and "content-encoding" not in plain.headers, plain
    assert plain.headers.get("x-cache") == "MISS"
    stored(v)
    for _ in range(3):
        resp = v.get("/e", headers=[("Accept-Encoding", "identity")])
        assert resp.body == b"plain" and "content-encoding" not in resp.headers, resp
    assert fetches(origin, "/e") <= 3
