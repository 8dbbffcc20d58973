"""verge check against https origins: the TLS step (handshake, protocol, cipher, chain
against the system store or --ca, expiry, name match) with certificates made by the
openssl command line and served by Python's ssl module, then HTTP over that connection."""

import json
import shutil

import pytest

from harness import CertAuthority, run_verge, self_signed_cert, tls_origin as make_tls_origin

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="needs the openssl command line (Debian package openssl)")


def check_json(*args):
    out = run_verge(["check", *args, "--json", "--no-trace", "--count", "1", "--timeout", "2s"],
                    timeout=60)
    return out.returncode, json.loads(out.stdout)


@pytest.fixture
def ca(tmp_path):
    return CertAuthority(tmp_path / "ca")


@pytest.fixture
def tls_origin():
    started = []

    def start(cert, key):
        o = make_tls_origin(cert, key)
        started.append(o)
        return o
    yield start
    for o in started:
        o.stop()


def test_valid_certificate_from_a_trusted_ca_is_ok(ca, tls_origin):
    o = tls_origin(*ca.issue("localhost"))
    code, doc = check_json(f"https://localhost:{o.port}/health", "--ca", str(ca.cert))
    assert code == 0 and doc["verdict"] == "OK", doc
    [origin] = doc["origins"]
    tls = origin["tls"]
    assert tls["handshake"] and tls["chain_valid"] and tls["name_match"]
    assert tls["sni"] == "localhost" and tls["protocol"].startswith("TLSv1.")
    assert tls["cipher"] and 28 <= tls["days_left"] <= 30
    assert "CN=Verge Test CA" in tls["issuer"]
    http = origin["http"]
    assert http["status"] == 200 and http["accepted"] and http["host"] == "localhost:%d" % o.port
    assert http["phases"]["tls"] >= http["phases"]["connect"]
    assert http["cache"]["storable"] and http["cache"]["lifetime_s"] == 60


def test_self_signed_certificate_is_a_tls_problem(tmp_path, tls_origin):
    o = tls_origin(*self_signed_cert(tmp_path))
    code, doc = check_json(f"https://localhost:{o.port}/")
    assert code == 8 and doc["verdict"] == "TLS problem", doc
    assert "does not verify: self-signed certificate" in doc["evidence"]
    tls = doc["origins"][0]["tls"]
    assert tls["handshake"] and not tls["chain_valid"] and tls["name_match"]
    assert tls["chain_error"] == "self-signed certificate"
    # the handshake still completed, so the HTTP check ran over it
    assert doc["origins"][0]["http"]["status"] == 200


def test_expired_certificate_is_a_tls_problem(ca, tls_origin):
    o = tls_origin(*ca.issue("localhost", start="20200101000000Z", end="20200201000000Z"))
    code, doc = check_json(f"https://localhost:{o.port}/", "--ca", str(ca.cert))
    assert code == 8, doc
    assert doc["evidence"].startswith("the certificate of localhost expired on 2020-02-01")
    tls = doc["origins"][0]["tls"]
    assert tls["days_left"] < -365 and tls["not_after"] == "2020-02-01"
    assert tls["chain_error"] == "certificate has expired"
    assert doc["next"].startswith("renew the origin's certificate")


def test_certificate_for_another_name_is_a_tls_problem(ca, tls_origin):
    o = tls_origin(*ca.issue("other.test", sans="DNS:other.test"))
    code, doc = check_json(f"https://localhost:{o.port}/", "--ca", str(ca.cert))
    assert code == 8, doc
    assert "is not valid for that name" in doc["evidence"] and "CN=other.test" in doc["evidence"]
    tls = doc["origins"][0]["tls"]
    assert tls["chain_valid"] and not tls["name_match"]


def test_plain_http_on_the_https_port_is_a_tls_problem(scripted_origin):
    def plain(conn):
        conn.sock.recv(4096)
        conn.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    o = scripted_origin(plain)
    code, doc = check_json(f"https://127.0.0.1:{o.port}/")
    assert code == 8, doc
    tls = doc["origins"][0]["tls"]
    assert not tls["handshake"] and "TLS handshake failed" in tls["error"]
    assert doc["origins"][0]["http"] is None


def test_reset_right_after_the_client_hello_names_a_middlebox(scripted_origin):
    def middlebox(conn):
        conn.sock.recv(4096)  # the ClientHello
        conn.reset_close()
    o = scripted_origin(middlebox)
    out = run_verge(["check", f"https://localhost:{o.port}/", "--no-trace", "--count", "1",
                     "--timeout", "2s"], timeout=60)
    text = out.stdout.decode()
    assert out.returncode == 4, text
    assert text.startswith(f"verdict: firewall blocking: 127.0.0.1:{o.port}: the connection "
                           "is reset right after the TLS ClientHello")
    assert "firewall: a middlebox (an IPS, a TLS or SNI filter" in text
    assert "next: allow the edge's address 127.0.0.1 to reach" in text
    code, doc = check_json(f"https://localhost:{o.port}/")
    assert code == 4 and doc["firewall"]["kind"] == "tls_reset"
    assert doc["origins"][0]["tls"]["reset_after_client_hello"]
