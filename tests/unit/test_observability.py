"""Dashboards and rules as code (observability/): the generated files are current, every
expression parses as PromQL, and every metric it reads is one the services declare, a
recording rule, or a series the scraper adds."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import promql_parser
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _load_dashboards():
    spec = importlib.util.spec_from_file_location("murmur_dashboards",
                                                  REPO / "observability/dashboards.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


dashboards = _load_dashboards()
RULES = yaml.safe_load((REPO / "observability/rules.yml").read_text())
ALL_RULES = [rule for group in RULES["groups"] for rule in group["rules"]]
RECORDED = {rule["record"] for rule in ALL_RULES if "record" in rule}
DECLARED = dashboards.declared_metrics()


metric_names = dashboards.metric_names


def every_expression() -> list[tuple[str, str]]:
    """(where, expression) of every panel query and every rule."""
    found = [(f"{slug}: {panel.title}", expr) for slug, panel, expr in dashboards.expressions()]
    found += [(rule.get("record") or rule["alert"], rule["expr"]) for rule in ALL_RULES]
    return found


def test_the_generated_dashboards_and_the_charts_rules_are_current() -> None:
    stale = [str(path.relative_to(REPO)) for path, text in dashboards.outputs().items()
             if not path.exists() or path.read_text() != text]
    assert not stale, f"stale generated files: {stale}; run `make dashboards`"


def test_the_check_mode_reports_a_stale_file(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(dashboards, "CHART_RULES", tmp_path / "murmur.rules.yml")
    assert dashboards.main(["--check"]) == 1
    assert "murmur.rules.yml" in capsys.readouterr().out
    assert not (tmp_path / "murmur.rules.yml").exists()  # --check writes nothing


@pytest.mark.parametrize("where, expr", every_expression(), ids=lambda v: str(v)[:60])
def test_every_expression_parses_as_promql(where: str, expr: str) -> None:
    promql_parser.parse(expr)


def test_the_metric_name_reader_sees_selectors_inside_functions_and_ranges() -> None:
    assert metric_names('sum by (a) (rate(x_total{b="c"}[1m])) / on (a) y or up') == {
        "x_total", "y", "up"}


def test_the_declaration_scanner_finds_the_services_metrics() -> None:
    # A Counter gains _total, a Histogram its _bucket/_count/_sum, a Gauge stays as named.
    assert DECLARED["murmur_http_requests_total"] == "murmur_http_requests_total"
    assert "murmur_timeline_author_events_total" in DECLARED  # declared without _total
    assert "murmur_fanout_lag_seconds_bucket" in DECLARED
    assert "murmur_breaker_state" in DECLARED
    assert "murmur_breaker_state_total" not in DECLARED


@pytest.mark.parametrize("where, expr", every_expression(), ids=lambda v: str(v)[:60])
def test_every_metric_an_expression_reads_exists(where: str, expr: str) -> None:
    unknown = {name for name in metric_names(expr)
               if name not in DECLARED and name not in RECORDED
               and name not in dashboards.SCRAPE_SERIES}
    assert not unknown, f"{where} reads metrics nothing exports: {sorted(unknown)}"


def test_recording_rules_are_named_level_metric_operations() -> None:
    pattern = re.compile(r"^[a-z_]+:[a-z_]+:[a-z0-9_]+$")
    bad = [name for name in RECORDED if not pattern.match(name)]
    assert not bad
    assert len(RECORDED) == len([r for r in ALL_RULES if "record" in r])  # no name twice


def test_recording_rules_cover_rate_errors_and_latency_quantiles_per_service() -> None:
    for name in ("job:murmur_http_requests:rate1m",
                 "job:murmur_http_requests_errors:ratio_rate1m",
                 "job:murmur_http_request_duration_seconds:p50_rate1m",
                 "job:murmur_http_request_duration_seconds:p95_rate1m",
                 "job:murmur_http_request_duration_seconds:p99_rate1m"):
        assert name in RECORDED
        rule = next(r for r in ALL_RULES if r.get("record") == name)
        assert "by (job, profile" in rule["expr"]


def test_every_alert_has_a_severity_a_summary_and_reads_a_real_condition() -> None:
    alerts = [rule for rule in ALL_RULES if "alert" in rule]
    names = {rule["alert"] for rule in alerts}
    assert {"MurmurBreakerOpen", "MurmurFanoutConsumerLagHigh", "MurmurFanoutFreshnessSlow",
            "MurmurErrorRatioHigh", "MurmurLatencyP99High"} <= names
    for rule in alerts:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert re.search(r"[<>=]=?|!=", rule["expr"]), f"{rule['alert']} compares nothing"


def test_the_breaker_alert_fires_on_the_open_state_of_the_gauge() -> None:
    rule = next(r for r in ALL_RULES if r.get("alert") == "MurmurBreakerOpen")
    assert "murmur_breaker_state" in rule["expr"] and rule["expr"].rstrip().endswith("== 2")


def test_vmui_dashboards_have_the_custom_dashboard_shape() -> None:
    for d in dashboards.DASHBOARDS:
        doc = json.loads((dashboards.VMUI_DIR / f"{d.slug}.json").read_text())
        assert doc["title"] == d.title and doc["rows"]
        for row in doc["rows"]:
            for panel in row["panels"]:
                assert panel["title"] and panel["expr"]
                assert all(isinstance(e, str) and e for e in panel["expr"])
                assert 1 <= panel["width"] <= 12


def test_grafana_dashboards_pick_their_prometheus_through_a_variable() -> None:
    uids = set()
    for d in dashboards.DASHBOARDS:
        doc = json.loads((dashboards.GRAFANA_DIR / f"{d.slug}.json").read_text())
        uids.add(doc["uid"])
        assert doc["schemaVersion"] == 39
        (variable,) = doc["templating"]["list"]
        assert (variable["name"], variable["type"], variable["query"]) == (
            "datasource", "datasource", "prometheus")
        charts = [p for p in doc["panels"] if p["type"] == "timeseries"]
        assert len(charts) == len(d.panels())
        for panel in charts:
            assert panel["datasource"]["uid"] == "${datasource}"
            assert panel["targets"] and all(t["expr"] for t in panel["targets"])
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24
    assert len(uids) == len(dashboards.DASHBOARDS)


def test_grafana_panels_do_not_overlap() -> None:
    for d in dashboards.DASHBOARDS:
        cells: set[tuple[int, int]] = set()
        for panel in dashboards.grafana(d)["panels"]:
            pos = panel["gridPos"]
            mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"])
                    for y in range(pos["y"], pos["y"] + pos["h"])}
            assert not cells & mine, f"{d.slug}: {panel['title']} overlaps"
            cells |= mine


def test_the_dashboards_show_golden_signals_pipeline_and_resilience() -> None:
    exprs = " ".join(e for _, _, e in dashboards.expressions())
    for needed in ("job:murmur_http_requests:rate1m", "murmur_pool_in_use",
                   "murmur_pool_waiting", "outbox:murmur_outbox_backlog:max",
                   "topic:murmur_fanout_consumer_lag:sum", "job:murmur_fanout_deliveries:rate1m",
                   "job:murmur_fanout_lag_seconds:p95_rate5m", "murmur_fanout_held_seconds",
                   "murmur_fanout_dead_lettered_total", "murmur_breaker_state",
                   "murmur_retries_total", "murmur_breaker_rejections_total"):
        assert needed in exprs, needed
