"""Pre-flight: verge check's DNS, TCP and HTTP steps for every origin before a
configuration goes live. `verge -t -c FILE --preflight` prints them; a reload logs them
and, with preflight: refuse, keeps the running configuration when an origin fails."""

import signal
import time

from harness import free_port, run_verge, to_yaml, wait_until, zone


def config_file(tmp_path, origins, preflight=None):
    cfg = {"admin": "off", "zones": [zone("z1", origins)]}
    if preflight:
        cfg["preflight"] = preflight
    path = tmp_path / "v.yaml"
    path.write_text(to_yaml(cfg) + "\n")
    return path


def test_t_preflight_checks_every_origin_and_warns(tmp_path, nginx_origin):
    dead = free_port()
    path = config_file(tmp_path, [nginx_origin.url, f"http://127.0.0.1:{dead}"])
    out = run_verge(["-t", "-c", path, "--preflight"], timeout=60)
    err = out.stderr.decode()
    assert out.returncode == 0, err
    assert f"configuration {path} is valid" in err
    assert (f'pre-flight: zone "z1" origin {nginx_origin.url}: OK: every origin resolves, '
            "accepts connections and answers (HTTP 200)") in err
    assert (f'pre-flight: FAILS: zone "z1" origin http://127.0.0.1:{dead}: origin down: every '
            f"address of 127.0.0.1 refuses connections on port {dead}; next: start the origin "
            "server") in err
    assert "1 origin(s) fail the pre-flight check (preflight: warn: a reload would go ahead)" in err


def test_t_fails_when_preflight_refuses(tmp_path):
    dead = free_port()
    path = config_file(tmp_path, [f"http://127.0.0.1:{dead}"], preflight="refuse")
    out = run_verge(["-t", "-c", path], timeout=60)  # refuse implies the check
    assert out.returncode == 1
    assert "a reload with this file would be refused" in out.stderr.decode()


def test_t_without_preflight_stays_offline(tmp_path):
    path = config_file(tmp_path, [f"http://127.0.0.1:{free_port()}"])
    out = run_verge(["-t", "-c", path])
    assert out.returncode == 0 and b"pre-flight" not in out.stderr


def test_preflight_setting_is_checked_with_its_position(tmp_path):
    path = config_file(tmp_path, ["http://127.0.0.1:1"], preflight="maybe")
    out = run_verge(["-t", "-c", path])
    assert out.returncode == 1
    err = out.stderr.decode()
    line = path.read_text().splitlines().index("preflight: maybe") + 1
    assert err.startswith(f'{path}:{line}:12: "preflight" must be one of "warn", "refuse", '
                          '"off", got "maybe"'), err


def test_preflight_needs_t(tmp_path):
    out = run_verge(["-c", tmp_path / "v.yaml", "--preflight"])
    assert out.returncode == 2 and b"--preflight goes with -t" in out.stderr


def start(verge, origins, preflight=None):
    v = verge.prepare()
    cfg = v.build_config([zone("z1", origins)])
    if preflight:
        cfg["preflight"] = preflight
    v.write_config(cfg)
    v.start()
    return v, cfg


def test_reload_refused_when_an_origin_fails_and_the_setting_says_refuse(verge, nginx_origin):
    v, cfg = start(verge, [nginx_origin.url], preflight="refuse")
    dead = free_port()
    cfg["zones"] = [zone("z1", [f"http://127.0.0.1:{dead}"])]
    v.write_config(cfg)
    v.send_signal(signal.SIGHUP)
    v.wait_error_log(r"reload refused: 1 origin\(s\) of .* fail the pre-flight check "
                     r"\(preflight: refuse\); keeping the running configuration", timeout=20)
    log = v.error_log()
    assert f'pre-flight: zone "z1" origin http://127.0.0.1:{dead}: origin down' in log
    assert "configuration reloaded" not in log
    assert v.get("/small.txt").status == 200  # the old origin still serves


def test_reload_warns_and_goes_ahead_by_default(verge, nginx_origin):
    v, cfg = start(verge, [nginx_origin.url])
    dead = free_port()
    cfg["zones"] = [zone("z1", [f"http://127.0.0.1:{dead}"])]
    v.reload(cfg, timeout=20)
    log = v.error_log()
    assert "[warn]" in log and f"pre-flight: zone \"z1\" origin http://127.0.0.1:{dead}" in log
    assert log.index("pre-flight:") < log.index("configuration reloaded")
    assert v.get("/small.txt").status == 502


def test_reload_logs_good_origins_too(verge, nginx_origin):
    v, cfg = start(verge, [nginx_origin.url])
    v.reload(cfg, timeout=20)
    assert f'[info] ' in v.error_log()
    assert (f'pre-flight: zone "z1" origin {nginx_origin.url}: OK' in v.error_log())


def test_reload_without_preflight(verge, nginx_origin):
    v, cfg = start(verge, [nginx_origin.url], preflight="off")
    cfg["zones"] = [zone("z1", [f"http://127.0.0.1:{free_port()}"])]
    v.reload(cfg, timeout=20)
    assert "pre-flight" not in v.error_log()


def test_workers_keep_serving_while_the_preflight_runs(verge, nginx_origin, scripted_origin):
    def silent(conn):
        conn.read_request()
        conn.sleep(10)
    slow = scripted_origin(silent)
    v, cfg = start(verge, [nginx_origin.url])
    cfg["zones"] = [zone("z1", [slow.url])]
    v.write_config(cfg)
    v.send_signal(signal.SIGHUP)
    slow.wait_requests(1, timeout=10)  # the pre-flight is waiting on the slow origin
    t0 = time.monotonic()
    assert v.get("/small.txt").status == 200  # served by the running configuration
    assert time.monotonic() - t0 < 2.5, "a worker waited on the pre-flight"
    v.send_signal(signal.SIGHUP)  # a second reload waits for the first
    v.wait_error_log(r"reloading again after it")
    wait_until(lambda: v.error_log().count("configuration reloaded") == 2, timeout=30,
               what="both reloads")
    assert "origin too slow" in v.error_log()
