"""Command line: version, configuration test (-t) with FILE:LINE:COL errors, zero-config serve."""

import re

from harness import can_connect, free_port, run_verge, wait_until, zone


def test_version_prints_verge_0_1_0(verge_bin):
    r = run_verge(["version"])
    assert r.returncode == 0, r
    assert r.stdout.decode().strip() == "verge 0.1.0", r


def test_t_valid_config_says_valid_and_exits_0(verge, scripted_origin):
    v = verge.prepare()
    v.write_config(v.build_config([zone("z1", [scripted_origin()])]))
    r = run_verge(["-t", "-c", v.config_path])
    out = (r.stdout + r.stderr).decode()
    assert r.returncode == 0, out
    assert f"configuration {v.config_path} is valid" in out, out
    assert not can_connect(v.port), "-t must not start serving"


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def check_position(r, path):
    err = r.stderr.decode()
    assert r.returncode == 1, (r.returncode, err)
    m = re.search(re.escape(str(path)) + r":(\d+):(\d+): (.+)", err)
    assert m, f"no {path}:LINE:COL: message in stderr: {err!r}"
    return int(m.group(1)), int(m.group(2)), m.group(3)


def test_t_unknown_key_reports_file_line_col_and_exits_1(tmp_path, verge_bin):
    path = write(tmp_path, "bad.yaml",
                 f'listen: ["127.0.0.1:{free_port()}"]\n'
                 "workers: 1\n"
                 "bogus_key: 1\n"
                 "zones:\n"
                 "  - name: z1\n"
                 "    hosts: [a.test]\n"
                 '    origins: ["http://127.0.0.1:1"]\n')
    line, col, msg = check_position(run_verge(["-t", "-c", path]), path)
    assert (line, col) == (3, 1), msg
    assert "bogus_key" in msg


def test_t_bad_duration_reports_its_line(tmp_path, verge_bin):
    path = write(tmp_path, "bad.yaml",
                 f'listen: ["127.0.0.1:{free_port()}"]\n'
                 "zones:\n"
                 "  - name: z1\n"
                 "    hosts: [a.test]\n"
                 '    origins: ["http://127.0.0.1:1"]\n'
                 "    timeouts: {connect: banana}\n")
    line, col, msg = check_position(run_verge(["-t", "-c", path]), path)
    assert line == 6, msg
    assert col in (16, 25), f"column {col} points at neither the key nor the value: {msg}"


def test_t_yaml_syntax_error_reports_position(tmp_path, verge_bin):
    path = write(tmp_path, "bad.yaml",
                 'listen: ["127.0.0.1:1"\n'
                 "zones: []\n")
    line, _, _ = check_position(run_verge(["-t", "-c", path]), path)
    assert line in (1, 2, 3)


def test_t_zone_without_origins_is_an_error(tmp_path, verge_bin):
    path = write(tmp_path, "bad.yaml",
                 f'listen: ["127.0.0.1:{free_port()}"]\n'
                 "zones:\n"
                 "  - name: z1\n"
                 "    hosts: [a.test]\n")
    line, _, _ = check_position(run_verge(["-t", "-c", path]), path)
    assert 3 <= line <= 5


def test_t_missing_file_fails(tmp_path, verge_bin):
    path = tmp_path / "nope.yaml"
    r = run_verge(["-t", "-c", path])
    assert r.returncode != 0
    assert str(path) in r.stderr.decode()


def test_serve_with_invalid_config_refuses_to_start(tmp_path, verge_bin):
    port = free_port()
    path = write(tmp_path, "bad.yaml",
                 f'listen: ["127.0.0.1:{port}"]\n'
                 "workers: many\n"
                 "zones:\n"
                 "  - name: z1\n"
                 "    hosts: [a.test]\n"
                 '    origins: ["http://127.0.0.1:1"]\n')
    r = run_verge(["serve", "-c", path], timeout=10)
    assert r.returncode != 0
    assert re.search(re.escape(str(path)) + r":2:\d+", r.stderr.decode()), r.stderr


def test_zero_config_serves_any_host_through_default_zone(verge, nginx_origin):
    v = verge(args=["serve", "--origin", nginx_origin.url, "--listen", "127.0.0.1:{port}",
                    "--admin", "127.0.0.1:{admin_port}", "--workers", "1"])
    for host in ("anything.example", "a.test", "127.0.0.1"):
        resp = v.get("/small.txt", host=host)
        assert resp.status == 200, (host, resp)
        assert resp.body == nginx_origin.files["small.txt"]
    # each is counted as it completes, a moment after the visitor has the response
    wait_until(lambda: v.metrics().value("verge_requests_total", zone="default",
                                         status="200") == 3, what="3 requests counted")


def test_zero_config_admin_off_has_no_admin_listener(verge, scripted_origin):
    v = verge(args=["serve", "--origin", scripted_origin().url, "--listen", "127.0.0.1:{port}",
                    "--admin", "off"])
    assert v.get("/").status == 200
    assert not can_connect(v.admin_port)
