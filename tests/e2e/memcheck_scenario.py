"""A short scenario for Verge under Valgrind memcheck (make e2e-valgrind): a proxied
request, a cached hit, a chunked upload, a malformed request, an origin that refuses
connections, a name the resolver says does not exist, a reload, and a clean shutdown.
Memcheck must report no error and no leak: valgrind's --error-exitcode turns any into the
exit status, and its log must say so too.

Not collected by `make e2e` (the name does not start with test_): it needs VERGE_PREFIX set
to a valgrind command line by the Makefile, and it skips, saying why, without one.
"""

import re

import pytest

import harness
from harness import Client, chunked, free_port, zone

NAME = "gone.test"


@pytest.fixture
def valgrind_log():
    if "valgrind" not in harness.VERGE_PREFIX or "{dir}/valgrind.log" not in harness.VERGE_PREFIX:
        pytest.skip("run through `make e2e-valgrind`: VERGE_PREFIX must be a valgrind command "
                    "with --log-file={dir}/valgrind.log")
    return lambda v: harness.read_text(v.dir / "valgrind.log")


def origin(scripted_origin):
    """/c is cacheable for a minute, anything else is not stored."""
    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            cc = "max-age=60" if req.target == "/c" else "no-store"
            conn.respond(200, b"body of " + req.target.encode(), {"Cache-Control": cc})
    return scripted_origin(handler)


def config(v, o, dns_server, extra_zones=()):
    zones = [zone("site", [o.url], cache=True),
             zone("down", [f"http://127.0.0.1:{free_port()}"], hosts=["down.test"],
                  retries=0),
             zone("dns", [f"http://{NAME}:{free_port()}"], hosts=["dns.test"])]
    return v.build_config(zones + list(extra_zones), workers=2,
                          resolver={"servers": [dns_server.address], "timeout": "1s",
                                    "attempts": 1})


def requests_through_every_path(v):
    resp = v.get("/p")
    assert resp.status == 200 and resp.body == b"body of /p", resp
    assert v.get("/c").headers.get("x-cache") == "MISS"
    hit = v.get("/c")
    assert hit.status == 200 and hit.headers.get("x-cache") == "HIT", hit
    resp = v.request("POST", "/upload", headers=[("Transfer-Encoding", "chunked")],
                     body=chunked(b"x" * 3000, 1000))
    assert resp.status == 200, resp
    refused = v.get("/", host="down.test")
    assert refused.status == 502, refused
    assert refused.headers.get("proxy-status").startswith("testedge; error=connection_refused")
    nx = v.get("/", host="dns.test")
    assert nx.status == 502 and "error=dns_error" in nx.headers.get("proxy-status"), nx
    with Client(v.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: a.test\r\nBad Header\r\n\r\n")
        assert c.read_response().status == 400


def test_verge_runs_clean_under_memcheck(verge, scripted_origin, dns_server, valgrind_log):
    dns_server.set_rcode(NAME, "NXDOMAIN", soa_minimum=30)
    o = origin(scripted_origin)
    v = verge.prepare()
    v.write_config(config(v, o, dns_server))
    v.start()
    requests_through_every_path(v)
    v.reload(config(v, o, dns_server, [zone("new", [o.url], hosts=["new.test"])]))
    resp = v.get("/n", host="new.test")
    assert resp.status == 200 and resp.body == b"body of /n", resp
    assert v.get("/c").headers.get("x-cache") == "HIT"  # the cache outlives the reload
    rc = v.stop()
    log = valgrind_log(v)
    assert "ERROR SUMMARY: 0 errors" in log, log[-6000:]
    assert not re.search(r"(definitely|indirectly) lost: [1-9]", log), log[-6000:]
    assert rc == 0, f"verge under valgrind exited with {rc}\n{log[-6000:]}"
