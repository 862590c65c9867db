"""Load-test SLOs: reading the file, percentiles from Locust's histogram, verdicts, table."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from loadtests import slo  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def stats(route: str, times: dict[int, int], failures: int = 0, throttled: int = 0,
          unavailable: int = 0, seconds: float = 10.0) -> slo.RouteStats:
    return slo.RouteStats(route, sum(times.values()), failures, throttled, unavailable,
                          dict(times), seconds)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "slo.toml"
    path.write_text(text)
    return path


def test_the_reviewed_slo_file_loads_and_names_every_kind_of_objective():
    objectives = slo.load(REPO / "loadtests/slo.toml")
    metrics = {o.metric for o in objectives}
    assert {"p95", "p99", "error_ratio", "throttled_ratio", "unavailable_ratio", "rps"} <= metrics
    fresh = [o for o in objectives if o.route == "FRESHNESS post->visible (fan-out)"
             and o.metric == "p95"]
    assert fresh and fresh[0].max == 5000  # Twitter's 5 s goal


def test_percentiles_come_from_the_count_histogram():
    # 90 samples at 10 ms, 9 at 200 ms, 1 at 3000 ms
    hist = {10: 90, 200: 9, 3000: 1}
    assert slo.percentile(hist, 0.50) == 10
    assert slo.percentile(hist, 0.90) == 10
    assert slo.percentile(hist, 0.95) == 200
    assert slo.percentile(hist, 0.99) == 200
    assert slo.percentile(hist, 0.999) == 3000
    assert slo.percentile({}, 0.5) is None


def test_a_latency_objective_passes_at_its_limit_and_fails_above(tmp_path):
    objectives = slo.load(write(tmp_path, '[[slo]]\nroute = "GET /timeline"\n'
                                          'metric = "p95"\nmax = 200\n'))
    at_limit = slo.evaluate(objectives, {"GET /timeline": stats("GET /timeline", {200: 100})})
    above = slo.evaluate(objectives, {"GET /timeline": stats("GET /timeline", {210: 100})})
    assert [r.verdict for r in at_limit] == ["PASS"]
    assert [r.verdict for r in above] == ["FAIL"] and above[0].measured == 210


def test_429_and_503_are_counted_apart_from_errors(tmp_path):
    objectives = slo.load(write(tmp_path, """
[[slo]]
route = "*"
metric = "error_ratio"
max = 0.0
[[slo]]
route = "*"
metric = "throttled_ratio"
max = 0.0
[[slo]]
route = "*"
metric = "unavailable_ratio"
max = 0.5
"""))
    # 100 requests: 3 failures, all of them 429s (2) or 503s with Retry-After (1).
    run = {"GET /timeline": stats("GET /timeline", {10: 100}, failures=3, throttled=2,
                                  unavailable=1)}
    errors, throttled, unavailable = slo.evaluate(objectives, run)
    assert errors.passed and errors.measured == 0.0
    assert not throttled.passed and throttled.measured == pytest.approx(0.02)
    assert unavailable.passed and unavailable.measured == pytest.approx(0.01)


def test_the_star_route_sums_http_routes_and_leaves_freshness_out(tmp_path):
    objectives = slo.load(write(tmp_path, '[[slo]]\nroute = "*"\nmetric = "rps"\nmin = 20\n'))
    run = {"GET /a": stats("GET /a", {5: 100}), "POST /b": stats("POST /b", {5: 50}),
           "FRESHNESS post->visible (fan-out)": stats("FRESHNESS post->visible (fan-out)",
                                                      {900: 1000})}
    [result] = slo.evaluate(objectives, run)
    assert result.measured == pytest.approx(15.0)  # 150 requests in 10 s, freshness not counted
    assert not result.passed


def test_an_objective_without_samples_fails_unless_told_otherwise(tmp_path):
    objectives = slo.load(write(tmp_path, '[[slo]]\nroute = "DELETE /tweets/[id]"\n'
                                          'metric = "p99"\nmax = 100\n'))
    [strict] = slo.evaluate(objectives, {})
    [lenient] = slo.evaluate(objectives, {}, no_data_passes=True)
    assert not strict.passed and strict.verdict == "NO DATA"
    assert lenient.passed and lenient.verdict == "n/a"
    few = {"DELETE /tweets/[id]": stats("DELETE /tweets/[id]", {500: 3})}
    [too_few] = slo.evaluate(objectives, few, min_samples=20, no_data_passes=True)
    assert too_few.passed and too_few.measured is None and too_few.samples == 3


@pytest.mark.parametrize("text, complaint", [
    ("", "no [[slo]] entries"),
    ('[[slo]]\nroute = "*"\nmetric = "p42"\nmax = 1\n', "metric must be one of"),
    ('[[slo]]\nroute = "*"\nmetric = "rps"\nmax = 1\n', "rps takes a min"),
    ('[[slo]]\nroute = "*"\nmetric = "p95"\nmin = 1\n', "p95 takes a max"),
    ('[[slo]]\nmetric = "p95"\nmax = 1\n', "route missing"),
    ('[[slo]]\nroute = "*"\nmetric = "p95"\nmax = 1\nmaxx = 2\n', "unknown keys"),
    ("[[slo]\n", "slo.toml"),
])
def test_a_broken_slo_file_is_refused_with_the_reason(tmp_path, text, complaint):
    with pytest.raises(slo.SLOFileError, match=complaint.replace("[", r"\[")):
        slo.load(write(tmp_path, text))


def test_the_table_shows_threshold_measured_and_verdict(tmp_path):
    objectives = slo.load(write(tmp_path, """
[[slo]]
route = "GET /timeline"
metric = "p99"
max = 1000
[[slo]]
name = "no 429s"
route = "*"
metric = "throttled_ratio"
max = 0.0
"""))
    run = {"GET /timeline": stats("GET /timeline", {1200: 10}, failures=1, throttled=1)}
    text = slo.table(slo.evaluate(objectives, run))
    lines = text.splitlines()
    assert lines[0].split() == ["objective", "threshold", "measured", "samples", "verdict"]
    assert "GET /timeline p99" in lines[2] and "<= 1000 ms" in lines[2] and "1200 ms" in lines[2]
    assert lines[2].endswith("FAIL")
    assert "no 429s" in lines[3] and "10.00%" in lines[3] and lines[3].endswith("FAIL")


def test_a_window_is_the_difference_of_two_snapshots():
    before = stats("GET /a", {10: 5, 20: 5}, failures=1, throttled=1, seconds=10)
    after = stats("GET /a", {10: 5, 20: 8, 30: 4}, failures=3, throttled=1, seconds=25)
    window = after.minus(before)
    assert window.requests == 7 and window.histogram == {20: 3, 30: 4}
    assert window.failures == 2 and window.throttled == 0 and window.seconds == 15


def test_the_routes_table_lists_rate_and_percentiles_http_first_then_freshness():
    run = {"FRESHNESS post->visible (fan-out)": stats("FRESHNESS post->visible (fan-out)",
                                                      {400: 9, 900: 1}),
           "GET /timeline": stats("GET /timeline", {50: 95, 700: 5}, failures=2),
           "DELETE /tweets/[id]": stats("DELETE /tweets/[id]", {})}
    lines = slo.routes_table(run).splitlines()
    assert lines[0].split() == ["route", "requests", "req/s", "failures", "p50", "p95", "p99"]
    assert lines[2].split() == ["GET", "/timeline", "100", "10.0", "2", "50", "50", "700"]
    assert lines[3].startswith("FRESHNESS post->visible (fan-out)")
    assert lines[3].split()[-3:] == ["400", "900", "900"]  # 10 samples: p95 is the 10th
    assert len(lines) == 4  # a route without requests is left out
    assert slo.routes_json(run)["GET /timeline"]["p99"] == 700
