"""report.py - make bench's figures: medians of the rounds with min-max, each figure's
ratio to nginx and to the fixed-response ceiling, the issue's targets, and the Markdown and
JSON written under bench/results/."""
import json
import os
import statistics
import time

import rig

METRICS = ("rps", "mbps", "p50_ms", "p99_ms", "cpu_per_100k", "user_per_100k", "rss_mib")
RESULTS = os.path.join(rig.BENCH, "results")


def _stats(values, base_nginx, base_fixed):
    values = [v for v in values if v is not None]
    if not values:
        return None
    med = statistics.median(values)
    return {"median": med, "min": min(values), "max": max(values),
            "x_nginx": med / base_nginx if base_nginx else None,
            "x_fixed": med / base_fixed if base_fixed else None}


def _median_of(runs, metric):
    values = [r.get(metric) for r in runs if r.get(metric) is not None]
    return statistics.median(values) if values else None


def summarise(result):
    """Adds table["summary"][scenario][server], each idle result's x_nginx, result["targets"]."""
    for table in result["tables"]:
        summary = table["summary"] = {}
        for sc in result["scenarios"]:
            runs = {}
            for r in table["runs"]:
                if r["scenario"] == sc:
                    runs.setdefault(r["server"], []).append(r)
            rows = summary[sc] = {}
            for name, rs in runs.items():
                row = rows[name] = {"requests": sum(r["requests"] for r in rs),
                                    "origin_requests": sum(r["origin_requests"] for r in rs),
                                    # per run: how many origin connections its requests used
                                    "origin_connections": statistics.median(
                                        r.get("origin_connections", 0) for r in rs),
                                    "socket_errors": sum(r["socket_errors"] for r in rs),
                                    "non_2xx_rate": statistics.median(r["non_2xx_rate"] for r in rs)}
                for m in METRICS:
                    row[m] = _stats([r.get(m) for r in rs], _median_of(runs.get("nginx", []), m),
                                    _median_of(runs.get("fixed", []), m))
        idle = {i["server"]: i for i in table["idle"]}
        base = idle.get("nginx", {}).get("bytes_per_conn")
        for i in table["idle"]:
            st = i["bytes_per_conn"]
            i["x_nginx"] = st / base if st is not None and base else None
    result["targets"] = targets(result["tables"][0]) if result["tables"] else []  # pinned


# The targets of issue #6: (text, scenario, metric, compared with, factor, higher is
# better). "compared with" is a server, or "best"/"lowest" of the three peers.
TARGETS = [
    ("hit 1 KiB req/s >= 0.90x fixed", "hit-1k", "rps", "fixed", 0.90, True),
    ("hit 1 KiB req/s >= 1.05x HAProxy", "hit-1k", "rps", "haproxy", 1.05, True),
    ("hit 1 KiB p99 <= best peer's", "hit-1k", "p99_ms", "lowest", 1.0, False),
    ("hit 1 KiB CPU per 100k <= 0.65x nginx", "hit-1k", "cpu_per_100k", "nginx", 0.65, False),
    ("hit 1 KiB pipelined req/s >= 1.5x nginx", "hit-1k-pipelined-16", "rps", "nginx", 1.5, True),
    ("hit 100 KiB MB/s >= 1.1x best peer", "hit-100k", "mbps", "best", 1.1, True),
    ("hit 1 MiB MB/s >= 1.1x best peer", "hit-1m", "mbps", "best", 1.1, True),
    ("pass req/s >= 1.05x best peer", "pass", "rps", "best", 1.05, True),
    ("pass CPU per 100k <= 0.8x nginx", "pass", "cpu_per_100k", "nginx", 0.8, False),
    ("origin down: error rate >= 2x nginx", "error-origin-down", "non_2xx_rate", "nginx", 2.0, True),
    ("idle connection memory <= nginx's", "idle", "bytes_per_conn", "nginx", 1.0, False),
]
PEERS = ("nginx", "haproxy", "varnish")
# Why table 1's scenarios run different numbers of rounds (bench.py rounds_for)
ROUNDS_WHY = ("the most where a target's verdict is close, the fewest where every round of "
              "earlier runs cleared its target by 2x or more or where no target is judged")


def _figure(t, sc, server, metric):
    """One server's median figure in table t, or None."""
    if sc == "idle":
        return next((i[metric] for i in t["idle"] if i["server"] == server), None)
    row = t["summary"].get(sc, {}).get(server)
    if not row or row.get(metric) is None:
        return None
    return row[metric] if metric == "non_2xx_rate" else row[metric]["median"]


def _per_round(t, sc, server, metric):
    """{round: figure} of one server's runs in table t."""
    return {r["round"]: r[metric] for r in t["runs"]
            if r["scenario"] == sc and r["server"] == server and r.get(metric) is not None}


def targets(t):
    """Each target of issue #6 with Verge's figure, the reference and whether it is met.

    The ratio that decides is the median of the rounds' ratios: Verge's run against the
    reference's run of the same round, seconds apart, so that a swing of the machine's
    speed that lasts a few seconds moves both sides of each ratio. The ratio of the two
    medians is kept beside it, and the rounds' range shows how far a single round goes."""
    out = []
    for text, sc, metric, ref, factor, higher in TARGETS:
        value = _figure(t, sc, "verge", metric)
        if ref in ("best", "lowest"):
            peers = [(x, p) for x, p in ((_figure(t, sc, p, metric), p) for p in PEERS)
                     if x is not None]
            base, ref = (max if ref == "best" else min)(peers) if peers else (None, None)
        else:
            base = _figure(t, sc, ref, metric)
        of_medians = value / base if value is not None and base else None
        ratio, lo, hi = of_medians, None, None
        if sc != "idle" and ref:
            mine, theirs = _per_round(t, sc, "verge", metric), _per_round(t, sc, ref, metric)
            rounds = [mine[k] / theirs[k] for k in mine if theirs.get(k)]
            if rounds:
                ratio, lo, hi = statistics.median(rounds), min(rounds), max(rounds)
        met = None if ratio is None else (ratio >= factor if higher else ratio <= factor)
        out.append({"target": text, "verge": value, "reference": base, "reference_server": ref,
                    "ratio": ratio, "ratio_min": lo, "ratio_max": hi,
                    "ratio_of_medians": of_medians, "met": met, "factor": factor,
                    "note": (_out_of_reach if higher else _below_floor)(t, sc, metric, base, factor)
                    if met is False else None})
    return out


# The floor of each CPU target's scenario: the least any server spends there in the same
# run. A hit: fixed.c, the same bytes from memory and nothing else; a pass-through:
# relay.c, the bytes moved to the origin and back and nothing else (no HTTP).
CPU_FLOORS = {"hit-1k": ("fixed", "[fixed.c](../fixed.c), the same bytes from memory for "
                                  "every request", "hits"),
              "pass": ("relay", "[relay.c](../relay.c), a TCP relay with no HTTP (a read each "
                                "way per request, each turn's writes in one io_uring "
                                "submission, an origin connection kept per visitor)",
                       "pass-throughs")}


def _below_floor(t, sc, metric, base, factor):
    """Why a "factor x the reference" CPU target it missed could not be met: factor times
    the reference is less than the scenario's floor spent in the same run (CPU_FLOORS).
    None when it is not."""
    name = CPU_FLOORS.get(sc, (None,))[0] if metric == "cpu_per_100k" else None
    floor = _figure(t, sc, name, metric) if name else None
    if not floor or base is None or factor * base >= floor:
        return None
    return ("%.2fx the reference would be %.2fx the %s floor (%s CPU s per 100k): less than "
            "the least a server spends on that here" % (factor, factor * base / floor, name,
                                                       _num(floor)))


def _floor_md(t):
    """For each CPU target's scenario, every server's CPU over the floor's: its own work
    on top of the system calls that no server of that scenario avoids; and of each, the
    user time (the rest is the kernel's)."""
    out = []
    for sc, (name, what, unit) in CPU_FLOORS.items():
        floor = _figure(t, sc, name, "cpu_per_100k")
        if not floor:
            continue
        user = lambda server: _user_note(t, sc, server)
        figures = [(s, _figure(t, sc, s, "cpu_per_100k")) for s in t["summary"].get(sc, {})
                   if s not in CPU_FLOORS_NAMES]
        nginx = _figure(t, sc, "nginx", "cpu_per_100k")
        out += ["", "`%s`'s floor (table %s): %s, spent %s CPU s per 100k %s (%s%s). Each "
                "server, and its figure over the floor's: %s." % (
                    sc, t["key"], what, _num(floor), unit,
                    "%.2fx nginx's" % (floor / nginx) if nginx else "",
                    user(name), "; ".join("%s %s (%.2fx%s)" % (s, _num(x), x / floor, user(s))
                                          for s, x in figures if x is not None))]
    return out


CPU_FLOORS_NAMES = {name for name, _, _ in CPU_FLOORS.values()}


def _user_note(t, sc, server):
    """"; user X" with the server's user CPU per 100k in scenario sc, or "" unmeasured."""
    u = _figure(t, sc, server, "user_per_100k")
    return "; user %s" % _num(u, 2) if u is not None else ""


def _deciding(tg):
    """A target's deciding ratio to two places, or to three where two would show the
    factor itself beside a verdict that it was not met (0.898 against >= 0.90)."""
    x = tg["ratio"]
    if x is None:
        return "-"
    if "%.2f" % x == "%.2f" % tg["factor"] and not tg["met"]:
        return "%.3f" % x
    return "%.2f" % x


def _out_of_reach(t, sc, metric, base, factor):
    """Why a "factor x the reference" throughput target it missed could not be met: factor
    times the reference is more than the fixed server (the ceiling one hop cannot pass,
    set by the load generator) reached in the same scenario. None when it is within."""
    ceiling = _figure(t, sc, "fixed", metric) if metric in ("rps", "mbps") else None
    if not ceiling or base is None or factor * base <= ceiling:
        return None
    return ("%.2fx the reference would be %.2fx the fixed ceiling (%s): the load generator, "
            "not the server, sets the figure here; compare CPU per request"
            % (factor, factor * base / ceiling, _num(ceiling)))


# A round in which the fixed server, which does the same work in every round, ran below
# this share of its best figure of the scenario was slowed by something outside the run.
DISTURBED = 0.6


def _disturbed(t, scenarios):
    """Notes naming the rounds in which the fixed ceiling itself ran far below its best: the
    machine was slowed then (on a VM, often by other guests, which nothing inside it sees),
    so those rounds' figures, and ratios against a server that ran before or after the
    slowdown, tell of the machine rather than of the servers. They stay in the medians."""
    quiet = t.get("cpu_s_others", 0) < 0.05 * max(1.0, t.get("cpu_s_available", 0))
    out = []
    for sc in scenarios:
        got = _per_round(t, sc, "fixed", "rps")
        if len(got) < 2:
            continue
        best = max(got.values())
        slow = sorted(k for k, v in got.items() if v < DISTURBED * best)
        if not slow:
            continue
        lo, hi = (100 * f(got[k] for k in slow) / best for f in (min, max))
        out.append("%s: the fixed ceiling ran at %s of its best in round%s %s: the machine was "
                   "slowed then%s; those rounds stay in the medians" % (
                       sc, "%.0f%%" % lo if round(lo) == round(hi) else "%.0f–%.0f%%" % (lo, hi),
                       "s" if len(slow) > 1 else "", ", ".join(str(k) for k in slow),
                       " by something outside this machine (its own other work was under 5% of "
                       "the CPU)" if quiet else ""))
    return out


def _num(x, digits=None):
    if x is None:
        return "-"
    if digits is not None:
        return "%.*f" % (digits, x)
    if x >= 1e6:
        return "%.2fM" % (x / 1e6)
    if x >= 1e4:
        return "%.1fk" % (x / 1e3)
    if x >= 100:
        return "%.0f" % x
    return "%.2f" % x


def _cell(st, digits=None):
    if st is None:
        return "-"
    if st["min"] == st["max"]:
        return _num(st["median"], digits)
    return "%s (%s–%s)" % (_num(st["median"], digits), _num(st["min"], digits), _num(st["max"], digits))


def _ratio(st):
    if st is None:
        return "-"
    f = lambda x: "%.2f" % x if x is not None else "-"
    return "%s / %s" % (f(st["x_nginx"]), f(st["x_fixed"]))


def _paced_md(result, t):
    """The open-loop scenarios' latencies, with the tail the main table leaves out."""
    out = []
    for sc, rate in result.get("paced", {}).items():
        runs = [r for r in t["runs"] if r["scenario"] == sc]
        if not runs:
            continue
        out += ["", "Open-loop latency, `%s` ([pace.c](../pace.c)): %d requests per second "
                "offered to every server alike on %d connections, each latency counted from "
                "the moment the schedule said the request should leave (wrk sends a "
                "connection's next request only after the last answer, so the requests a "
                "stall delays are never measured). Medians of the rounds (min–max):"
                % (sc, rate, t["conns"]), "",
                "| server | answered/s | p50 ms | p99 ms | p99.9 ms | max ms | CPU s/100k req | not answered |",
                "|---|---|---|---|---|---|---|---|"]
        for name in t["summary"][sc]:
            rs = [r for r in runs if r["server"] == name]
            st = lambda m: _stats([r[m] for r in rs], None, None)
            lost = sum(r["unanswered"] + r["socket_errors"] for r in rs)
            out.append("| %s | %s | %s | %s | %s | %s | %s | %d of %d |" % (
                name, _cell(st("rps")), _cell(st("p50_ms"), 3), _cell(st("p99_ms"), 3),
                _cell(st("p999_ms"), 3), _cell(st("max_ms"), 3), _cell(st("cpu_per_100k"), 2),
                lost, sum(r["due"] for r in rs)))
    return out


def _table_md(result, t):
    out = ["## Table %s: %s" % (t["key"], t["title"]), ""]
    by = {}
    for name, n in t["rounds_by"].items():
        by.setdefault(n, []).append("`%s`" % name)
    rounds = "; ".join("%d for %s" % (n, ", ".join(names)) for n, names in
                       sorted(by.items(), reverse=True)) if len(by) > 1 else \
        "%d for every scenario" % next(iter(by), 0)
    out.append("wrk: %d thread(s), %d connections, %.0f s per run, servers alternated within "
               "each round, in reverse order every other round. Rounds: %s%s. Load average "
               "before/after: %s / %s."
               % (t["threads"], t["conns"], result["seconds"], rounds,
                  " (" + ROUNDS_WHY + ")" if len(by) > 1 else "",
                  "%.2f" % t["loadavg_before"][0], "%.2f" % t["loadavg_after"][0]))
    out.append("Other work on the machine used %.0f of the %.0f CPU seconds available during "
               "this table (%.0f%%): the more, the noisier the figures."
               % (t["cpu_s_others"], t["cpu_s_available"],
                  100 * t["cpu_s_others"] / max(1.0, t["cpu_s_available"])))
    big = [sc for sc in result.get("closed_loop_pace", []) if sc in result["scenarios"]]
    if big:
        out.append("%s: [pace.c](../pace.c)'s closed loop instead of wrk, the same "
                   "connections and seconds, 64 KiB reads where wrk's 8 KiB reads make wrk "
                   "the limit for large bodies (latency from each request's send)."
                   % ", ".join("`%s`" % sc for sc in big))
    out += ["", "| scenario | server | req/s | MB/s | p50 ms | p99 ms | CPU s/100k req | of it user | RSS MiB | origin req. |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for sc in result["scenarios"]:
        for name, row in t["summary"][sc].items():
            origin = row["origin_requests"]
            if result["kinds"][sc] in ("pass", "miss"):
                origin = "%d (%.2f per req., %s conn. a run)" % (
                    origin, origin / max(1, row["requests"]), _num(row["origin_connections"], 0))
            rps = _cell(row["rps"])
            if result["kinds"][sc] == "error" and name != "fixed":
                rps += " [%s: %s/s]" % (t.get("error_status", {}).get(name, "?"), _num(row["non_2xx_rate"]))
            out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                sc, name, rps, _cell(row["mbps"], 1), _cell(row["p50_ms"], 3),
                _cell(row["p99_ms"], 3), _cell(row["cpu_per_100k"], 2),
                _num(row["user_per_100k"]["median"], 2) if row["user_per_100k"] else "-",
                _num(row["rss_mib"]["median"], 1), origin))
    out += _paced_md(result, t)
    out += ["", "Ratios (median ÷ nginx's median / ÷ fixed's median; higher is better for req/s "
            "and MB/s, lower for latency, CPU and RSS):", "",
            "| scenario | server | req/s | MB/s | p50 | p99 | CPU/100k | user | RSS |",
            "|---|---|---|---|---|---|---|---|---|"]
    for sc in result["scenarios"]:
        for name, row in t["summary"][sc].items():
            out.append("| %s | %s | %s |" % (sc, name, " | ".join(_ratio(row[m]) for m in METRICS)))
    if t["idle"]:
        out += ["", "Idle keep-alive connections, each after one answered GET (a hit): RSS "
                "growth of all the server's processes while they are held, per connection "
                "still open at the end; in brackets the range over the steps in which they "
                "were opened:", "",
                "| server | held / asked | still open | bytes per connection | ×nginx | RSS MiB with all held | origin req. |",
                "|---|---|---|---|---|---|---|"]
    for i in t["idle"]:
        steps = i["bytes_per_conn_steps"]
        spread = " (%.0f–%.0f)" % (min(steps), max(steps)) if steps else ""
        out.append("| %s | %d / %d | %d | %s%s | %s | %.1f | %d |" % (
            i["server"], i["answered"], i["asked"], i["still_open"], _num(i["bytes_per_conn"], 0),
            spread, "%.2f" % i["x_nginx"] if i["x_nginx"] is not None else "-", i["rss_mib"],
            i["origin_requests"]))
    notes = list(t["notes"])
    for sc in result["scenarios"]:
        for name, row in t["summary"][sc].items():
            if result["kinds"][sc] == "hit" and name != "fixed" and row["origin_requests"]:
                notes.append("%s, %s: NOT all from its cache: %d origin requests during the runs"
                             % (sc, name, row["origin_requests"]))
            # a miss the origin never saw was answered from a cache: the run measured hits
            if (result["kinds"][sc] == "miss" and name != "fixed"
                    and row["origin_requests"] < 0.99 * row["requests"]):
                notes.append("%s, %s: some were not misses: only %d origin requests for %d requests"
                             % (sc, name, row["origin_requests"], row["requests"]))
            # the issue asks for keep-alive to the origin: a proxy whose requests in a run
            # came on more than one origin connection in ten did not keep them
            runs = max(1, t["rounds_by"].get(sc, 1))
            if (result["kinds"][sc] in ("pass", "miss") and name != "fixed"
                    and row["origin_connections"] > 0.1 * row["origin_requests"] / runs):
                notes.append("%s, %s: NOT kept alive to the origin: %s origin connections a "
                             "run for %s origin requests" % (
                                 sc, name, _num(row["origin_connections"], 0),
                                 _num(row["origin_requests"] / runs)))
            if row["socket_errors"]:
                notes.append("%s, %s: %d socket errors or timeouts in wrk" % (sc, name, row["socket_errors"]))
    notes += _disturbed(t, result["scenarios"])
    for i in t["idle"]:
        if i["origin_requests"] and i["server"] != "fixed":
            notes.append("idle, %s: its GETs were not all hits: %d origin requests"
                         % (i["server"], i["origin_requests"]))
        if i["answered"] < i["asked"] or i["still_open"] < i["answered"]:
            notes.append("idle, %s: %d of %d connections answered, %d still open at the end"
                         % (i["server"], i["answered"], i["asked"], i["still_open"]))
    if not any(n for n in notes if "NOT all" in n):
        notes.append("every hit scenario was served from cache: the origin's access log did not "
                     "grow during any measured hit run")
    out += ["", "Notes:"] + ["- " + n for n in notes] + [""]
    return out


def markdown(result):
    m = result["machine"]
    out = ["# make bench: Verge, nginx, HAProxy, Varnish, a fixed-response ceiling and a relay floor", "",
           "%s. %d CPUs (%s), kernel %s, load average %.2f at the start. The machine may be "
           "shared with other work: compare the ratios within this run, not absolute figures "
           "across runs.%s"
           % (m["date"], m["cpus"], m["cpu_model"], m["kernel"], m["loadavg_at_start"][0],
              " BENCH_QUICK: one short round, a smoke run, not a measurement." if result["quick"] else ""),
           "",
           "Access logs are off in every server (Varnish still writes its in-memory shared log, "
           "which cannot be turned off; no varnishncsa reads it). Caches: 256 MiB in memory "
           "each (nginx's on tmpfs); HAProxy's max-object-size is 2 MiB (at most half its "
           "total-max-size), so the 1 MiB object can come from its cache: the origin column "
           "and the notes show whether every hit did. The origin is nginx with its access log on (to prove "
           "hits); it runs on the servers' CPUs. `fixed` is bench/fixed.c: the same bytes from "
           "memory for every request, the ceiling one hop cannot pass; for the error path it "
           "answers 200 and is shown only as that ceiling. `relay` is bench/relay.c, in `pass` "
           "alone: a TCP relay with no HTTP, the least CPU a proxy can spend on a "
           "pass-through, the floor of its CPU figure. Versions: %s."
           % ", ".join("%s %s" % kv for kv in result["tables"][0]["versions"].items()) if result["tables"] else "",
           ""]
    for t in result["tables"]:
        out += _table_md(result, t)
    out += ["## Targets of issue #6 (table %s)" % (result["tables"][0]["key"] if result["tables"] else "-"), "",
            "Ratio: the median of the rounds' ratios (Verge's run ÷ the reference's run in the "
            "same round), which decides; in brackets its range over the rounds; then the ratio "
            "of the two medians of the tables above.", "",
            "| target | Verge | reference | ratio (rounds' range) | ratio of medians | met |",
            "|---|---|---|---|---|---|"]
    f2 = lambda x: "%.2f" % x if x is not None else "-"
    for tg in result["targets"]:
        spread = " (%s–%s)" % (f2(tg["ratio_min"]), f2(tg["ratio_max"])) if tg["ratio_min"] is not None else ""
        out.append("| %s | %s | %s%s | %s%s | %s | %s |" % (
            tg["target"], _num(tg["verge"]), _num(tg["reference"]),
            " (%s)" % tg["reference_server"] if tg["reference_server"] else "",
            _deciding(tg), spread, f2(tg["ratio_of_medians"]),
            {True: "yes", False: "**no**", None: "-"}[tg["met"]]))
    notes = ["- %s: %s." % (tg["target"], tg["note"]) for tg in result["targets"] if tg.get("note")]
    if notes:
        out += ["", "Out of reach in this run:", ""] + notes
    out += _floor_md(result["tables"][0]) if result["tables"] else []
    out += ["", "Whole run: %.0f s." % result["elapsed_s"], ""]
    return "\n".join(out)


def write(result, md):
    os.makedirs(RESULTS, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    paths = []
    for base in ("latest", stamp):
        for ext, text in (("md", md), ("json", json.dumps(result, indent=1, sort_keys=True))):
            p = os.path.join(RESULTS, "%s.%s" % (base, ext))
            with open(p, "w") as f:
                f.write(text + "\n")
            paths.append(os.path.relpath(p, rig.ROOT))
    return paths
