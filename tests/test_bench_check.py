"""bench/check_report.py, the benchmark smoke test's check, run as `make test`
runs it after the quick run, on report folders of the test's: a good quick
run's report passes; each fault doctored into it (errors on a side, every
request a 502, idle WebSockets not held, a scenario failed, a ratio out of its
loose bounds, a figure missing) fails the check, named; all of them at once,
each named. And wrk's count of answers other than 2xx or 3xx reaches a side's
errors (bench/loads.py wrk_parse), which is what the check reads. No stack,
no bench image: report.py needs matplotlib only to draw the chart."""

import copy
import importlib.util
import json
import subprocess
import sys

import pytest

from project.env import BASE_DIR

CHECK_REPORT = BASE_DIR / "bench" / "check_report.py"


def bench_module(name: str):
    """bench/<name>.py, which is no package: imported by its path."""
    spec = importlib.util.spec_from_file_location(
        f"bench_{name}", BASE_DIR / "bench" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def side(rate, p99_ms, errors=0, **more):
    return {"rate": rate, "p50_ms": p99_ms / 4, "p99_ms": p99_ms, "errors": errors, **more}


def flood_side(p50_ms, p99_ms, errors=0, **flood):
    """13's side: the measuring clients' pings, and the flood's counts (none at rest)."""
    counts = {
        "flood_frames_per_s": 0.0,
        "flood_sockets_per_s": 0.0,
        "flood_replies_per_s": 0.0,
        "flood_closes_4008": 0,
    }
    return {
        "pings": 96,
        "p50_ms": p50_ms,
        "p99_ms": p99_ms,
        "max_ms": p99_ms,
        "daphne_cpu_share": 0.65 if flood else 0.09,
        "daphne_busy_after_s": 10.6 if flood else 0.5,
        "daphne_memory_mib": 380.0 if flood else 90.0,
        "daphne_restarts": 0,
        "errors": errors,
        **counts,
        **flood,
    }


# A quick run's report.json, as bench/run.py writes it, with the figures of a
# real one (two cores at load average 14-18, the goals it missed included) and
# without the rounds, samples and CPU breakdowns the check does not read.
GOOD = {
    "quick": True,
    "plan": {"rounds": 2, "http_seconds": 2, "idle_connections": 200, "mix_rate": 40},
    "scenarios": ["1", "10", "11", "12", "13", "14", "15", "2", "3", "4", "5", "6", "7", "8", "9"],
    "machine": {"cpus": 2, "load_before": 13.81, "load_after": 18.34},
    "public_vs_static": {
        "sides": {"public page": side(9255.0, 114.3), "static file": side(2878.0, 128.0)},
        "ratios": {"rate": 3.221, "p99_ms": 0.9996},
    },
    "proxy": {
        "sides": {"through nginx": side(165.0, 727.7), "straight to Gunicorn": side(301.9, 345.4)},
        "ratios": {"rate": 0.5275, "p99_ms": 2.171},
    },
    "tuning": {
        "sides": {"this project": side(110.1, 916.5), "common default": side(40.64, 1310.0)},
        "ratios": {"rate": 2.691, "p99_ms": 0.7025},
    },
    "mix": {
        "sides": {
            "this project": {
                "requests": 120,
                "fast_p99_ms": 647.1,
                "slow_p99_ms": 713.9,
                "errors": 0,
            },
            "common default": {
                "requests": 120,
                "fast_p99_ms": 1571.0,
                "slow_p99_ms": 1591.0,
                "errors": 0,
            },
        },
        "ratios": {"fast_p99_ms": 0.5986, "slow_p99_ms": 0.6951},
    },
    "tuning_paced": {
        "sides": {
            "this project": {
                "requests": 120,
                "fast_p50_ms": 21.0,
                "fast_p99_ms": 98.2,
                "errors": 0,
            },
            "common default": {
                "requests": 120,
                "fast_p50_ms": 24.4,
                "fast_p99_ms": 131.0,
                "errors": 0,
            },
        },
        "ratios": {"fast_p50_ms": 0.86, "fast_p99_ms": 0.75},
    },
    "at_rest": {
        "ms_per_s": 74.2,
        "ms_per_s_by_service": {"nginx": 12.5, "web": 12.0, "asgi": 15.1, "worker": 11.9},
    },
    "observability": {
        "sides": {"as shipped": side(156.9, 767.5), "metrics off, text logs": side(122.6, 625.4)},
        "ratios": {"rate": 1.292, "p99_ms": 1.24},
    },
    "enqueue": {
        "sides": {
            "enqueues one task": side(28.68, 1765.0, web_cpu_ms=10.58),
            "enqueues nothing": side(64.0, 1310.0, web_cpu_ms=4.718),
        },
        "ratios": {"rate": 0.4446, "p99_ms": 1.398, "web_cpu_ms": 2.187},
        "piled_up": 259,
    },
    "worker_throughput": {"batch": 100, "rate": 58.02, "seconds": 1.9, "errors": 0},
    "worker_pickup": {
        "offered_rate": 50,
        "tasks": 300,
        "p50_ms": 1708.0,
        "p99_ms": 3626.0,
        "rounds": {"tasks": 150, "request_p99_ms": 1105.0, "errors": 0},
    },
    "session_copies": {
        "sides": {
            "copies on": side(829.0, 180.6, web_cpu_ms=1.356, queries=0.02, session_queries=0.0),
            "copies off": side(511.0, 542.5, web_cpu_ms=2.023, queries=2.03, session_queries=1.0),
        },
        "ratios": {"rate": 1.62, "p99_ms": 0.33, "web_cpu_ms": 0.70, "queries": 0.01},
    },
    "pool": {
        "sides": {
            "pool": side(402.0, 180.2, web_cpu_ms=2.51),
            "no pool": side(398.0, 176.9, web_cpu_ms=2.47),
        },
        "ratios": {"rate": 1.01, "p99_ms": 1.02, "web_cpu_ms": 1.02},
    },
    "flood": {
        "sides": {
            "flood": flood_side(
                124.3,
                722.6,
                flood_frames_per_s=29396.0,
                flood_sockets_per_s=12.5,
                flood_closes_4008=56,
            ),
            "rest": flood_side(3.0, 22.1),
        },
        "ratios": {"p50_ms": 41.35, "p99_ms": 34.03},
    },
    "echo": {
        "sides": {"through nginx": side(461.4, 140.2), "straight to Daphne": side(382.7, 139.6)},
        "ratios": {"rate": 1.187, "p99_ms": 1.079},
    },
    "broadcast": {
        "clients": 50,
        "daphne_processes": 2,
        "sides": {"room": {"p99_ms": 49.33}, "raw Redis": {"p99_ms": 6.121}},
        "ratios": {"p50_ms": 9.252, "p99_ms": 8.06},
    },
    "idle": {"target": 200, "opened": 200, "held": 200, "dropped": 0, "close_codes": {}},
    "cold_start": {"seconds": 38.5, "rounds": [38.5]},
}

# Each fault: the values doctored into GOOD (a path in report.json, and its
# value), and what the check's one problem line must say.
FAULTS = {
    "errors on a side": (
        {("proxy", "sides", "through nginx", "errors"): 12},
        "proxy, through nginx: 12 errors",
    ),
    # wrk counts the 502s as answers: the side keeps its rate.
    "every request a 502": (
        {("tuning", "sides", "this project", "errors"): 220},
        "tuning, this project: 220 errors",
    ),
    "paced requests answered 429": (
        {("mix", "sides", "common default", "errors"): 3},
        "mix, common default: 3 errors",
    ),
    "failed tasks": ({("worker_throughput", "errors"): 2}, "worker_throughput: 2 errors"),
    "pickup's requests failed": (
        {("worker_pickup", "rounds", "errors"): 4},
        "worker_pickup: 4 errors",
    ),
    "0 of 200 idle WebSockets held": (
        {("idle", "held"): 0, ("idle", "dropped"): 200, ("idle", "close_codes"): {"1006": 200}},
        "idle: 0 of 200 idle WebSockets held",
    ),
    "idle WebSockets not opened": (
        {("idle", "opened"): 150, ("idle", "held"): 150},
        "idle: 50 of 200 idle WebSockets not opened",
    ),
    "a scenario failed": (
        {("failed",): {"echo": "RuntimeError('3 of 8 echo clients could not connect')"}},
        "echo failed: RuntimeError('3 of 8 echo clients could not connect')",
    ),
    "a ratio 10x short of its goal": (
        {("proxy", "ratios", "rate"): 0.05},
        "2: page: through nginx / straight to Gunicorn: 0.05, out of",
    ),
    "a ratio of 0": (
        {("observability", "ratios", "rate"): 0.0},
        "10: logs and metrics cost: page as shipped / metrics off and text logs: 0, out of",
    ),
    "a ratio 10x over its ceiling": (
        {("enqueue", "ratios", "web_cpu_ms"): 12.0},
        "11: web's CPU per request: the page enqueuing one task / enqueuing none: 12, out of",
    ),
    "a ratio too good to be true": (
        {("tuning", "ratios", "rate"): 200.0},
        "4: page: this project / common default: 200, out of",
    ),
    "broadcast's ratio past its own bound": (
        {("broadcast", "ratios", "p99_ms"): 150.0},
        "6: broadcast p99, last client: room / raw Redis PUBLISH: 150, out of",
    ),
    "session copies not read": (
        {("session_copies", "sides", "copies on", "session_queries"): 1.0},
        "12: copies on: 1.00 session queries a request: copies not read",
    ),
    "the budget never met the flood": (
        {("flood", "sides", "flood", "flood_replies_per_s"): 4_000.0},
        "13: 4,000.0 of the flood's frames answered a second, past its budget",
    ),
    "an honest client refused under the flood": (
        {("flood", "sides", "flood", "errors"): 2},
        "flood, flood: 2 errors",
    ),
    "the flood's p99 ratio past its own bound": (
        {("flood", "ratios", "p99_ms"): 400.0},
        "13: WebSocket ping p99 on one Daphne, another client flooding it / no flood: 400, out of",
    ),
    "a figure missing": (
        {("cold_start", "seconds"): None},
        "missing: 8: cold start: `docker compose up` to all healthy (s)",
    ),
}


def doctored(changes: dict) -> dict:
    results = copy.deepcopy(GOOD)
    for path, value in changes.items():
        *parents, last = path
        found = results
        for key in parents:
            found = found[key]
        found[last] = value
    return results


def check(folder, results: dict, *, chart: bool = True) -> subprocess.CompletedProcess:
    """The report in `folder` as bench/report.py writes it, and the check on it."""
    (folder / "report.json").write_text(json.dumps(results, indent=2))
    # The table: what the check reads of it is a figure marked missing, none here.
    (folder / "report.md").write_text("# Benchmark report\n")
    if chart:
        (folder / "chart.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(4000))
    return subprocess.run(
        [sys.executable, str(CHECK_REPORT), str(folder)],
        capture_output=True,
        text=True,
        timeout=30,
    )


def problems(result: subprocess.CompletedProcess) -> list[str]:
    return [line[2:] for line in result.stderr.splitlines() if line.startswith("- ")]


def test_a_good_quick_run_passes(tmp_path):
    result = check(tmp_path, GOOD)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "holds all 27 figures" in result.stdout


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_fails_the_check_named(tmp_path, fault):
    changes, named = FAULTS[fault]
    result = check(tmp_path, doctored(changes))
    assert result.returncode == 1, result.stdout
    found = problems(result)
    assert len(found) == 1, result.stderr
    assert found[0].startswith(named), result.stderr


def test_a_missing_chart_fails_the_check_named(tmp_path):
    result = check(tmp_path, GOOD, chart=False)
    assert result.returncode == 1
    assert problems(result) == ["missing: chart.png"]


def test_every_fault_at_once_is_named(tmp_path):
    changes = {}
    for fault_changes, _ in FAULTS.values():
        changes.update(fault_changes)
    # The two idle faults doctor the same counts: 0 held of 150 opened.
    changes[("idle", "held")] = 0
    result = check(tmp_path, doctored(changes))
    assert result.returncode == 1
    found = problems(result)
    named = [named for _, named in FAULTS.values() if not named.startswith("idle:")]
    named += ["idle: 50 of 200 idle WebSockets not opened", "idle: 0 of 150 idle WebSockets held"]
    for each in named:
        assert any(line.startswith(each) for line in found), (each, result.stderr)
    assert len(found) == len(named), result.stderr


def test_the_loose_bounds_hold_every_goal():
    """A run that meets a ratio's goal is never out of its loose bounds."""
    report = bench_module("report")
    assert {f.key for f in report.RATIO_FIGURES} == {
        f.key for f in report.FIGURES if f.key.endswith("_ratio")
    } - {"idle_held_ratio"}
    for figure in report.RATIO_FIGURES:
        low, high = report.loose_bounds(figure)
        assert 0 < low < figure.goal.bound < high < float("inf"), figure.key


# wrk's output (Debian's wrk, as the bench image has it) for a server that
# answered every request with a 502.
WRK_EVERY_REQUEST_A_502 = """\
Running 1s test @ http://127.0.0.1:8080/bench/page/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   229.47us  510.09us  12.43ms   95.71%
    Req/Sec    24.11k     4.45k   32.80k    72.73%
  Latency Distribution
     50%  122.00us
     75%  201.00us
     90%  382.00us
     99%    2.03ms
  26326 requests in 1.10s, 3.01MB read
  Non-2xx or 3xx responses: 26326
Requests/sec:  23945.46
Transfer/sec:      2.74MB
"""


def test_wrk_s_non_2xx_answers_are_a_side_s_errors():
    loads = bench_module("loads")
    result = loads.wrk_parse(WRK_EVERY_REQUEST_A_502)
    assert result.rate == pytest.approx(23945.46)  # the rate alone looks fine
    assert result.errors == result.requests == 26326
    socket_errors = WRK_EVERY_REQUEST_A_502.replace(
        "  Non-2xx or 3xx responses: 26326\n",
        "  Socket errors: connect 0, read 3, write 0, timeout 5\n",
    )
    assert loads.wrk_parse(socket_errors).errors == 8
