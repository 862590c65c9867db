"""Every dashboard panel and every recording rule answers from the local VictoriaMetrics
after a short load through nginx: no panel queries a metric that does not exist.

A panel marked `on_event` (breaker transitions, retries, dead letters...) only gets data
once the thing it counts happens, which a healthy stack never does; for those the test
proves instead that every metric the panel reads is declared by the services' code and
that VictoriaMetrics holds the series of the process kind that declares it, so the panel
fills the moment the event occurs.
"""

from __future__ import annotations

import importlib.util
import sys
import time

import pytest
import requests
import yaml

import stackctl
from conftest import REPO, wait_until
from fault.steady_load import API, sign_up

LOAD_SECONDS = 20.0
# New samples reach queries after a scrape (5 s), the rules' evaluation (10 s, 5 s behind)
# and the server's latency offset: give every expression this long to answer.
DATA_DEADLINE = 90.0


def _load_dashboards():
    spec = importlib.util.spec_from_file_location("murmur_dashboards",
                                                  REPO / "observability/dashboards.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


dashboards = _load_dashboards()
RULES = yaml.safe_load((REPO / "observability/rules.yml").read_text())
RECORDED = [rule["record"] for group in RULES["groups"] for rule in group["rules"]
            if "record" in rule]


def query(expr: str) -> list[dict]:
    """An instant query against the local VictoriaMetrics."""
    resp = requests.get(f"{stackctl.observability.victoriametrics_url()}/api/v1/query",
                        params={"query": expr}, timeout=10)
    resp.raise_for_status()
    body = resp.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def series_exist(metric: str) -> bool:
    """Whether VictoriaMetrics holds any series of `metric` from the last 10 minutes."""
    resp = requests.get(f"{stackctl.observability.victoriametrics_url()}/api/v1/series",
                        params={"match[]": metric, "start": str(time.time() - 600)}, timeout=10)
    resp.raise_for_status()
    return bool(resp.json()["data"])


@pytest.fixture(scope="module")
def loaded() -> None:
    """~20 s of the product's own traffic through nginx: sign-ups, follows, posts, reads."""
    wait_until(lambda: requests.get(f"{stackctl.observability.victoriametrics_url()}/health",
                                    timeout=2).ok, timeout=30, message="VictoriaMetrics up")
    people = [sign_up("dash") for _ in range(4)]
    http = requests.Session()
    for follower in people:
        for author in people:
            if author is not follower:
                resp = http.put(f"{API}/users/me/following/{author.username}",
                                headers=follower.auth, timeout=10)
                assert resp.status_code == 204, resp.text
    deadline, n = time.monotonic() + LOAD_SECONDS, 0
    while time.monotonic() < deadline:
        person = people[n % len(people)]
        posted = http.post(f"{API}/tweets", json={"text": f"dashboards check {n}"},
                           headers=person.auth, timeout=10)
        assert posted.status_code == 201, posted.text
        for path in ("/timeline", f"/users/{person.username}/tweets",
                     f"/users/{person.username}", f"/tweets/{posted.json()['id']}"):
            resp = http.get(f"{API}{path}", headers=person.auth, timeout=10)
            assert resp.status_code == 200, (path, resp.text)
        n += 1


def of_this_run(result: list[dict]) -> bool:
    """Data, and when its series carry a profile, some of the test profile's (this load's)."""
    profiles = {r["metric"].get("profile") for r in result}
    return bool(result) and (profiles == {None} or "test" in profiles)


def answers(expr: str) -> list[dict]:
    """The expression's result once it holds data of this run (polled up to the deadline),
    else the last result."""
    try:
        return wait_until(lambda: of_this_run(query(expr)) and query(expr),
                          timeout=DATA_DEADLINE, interval=2.0, message=expr)
    except AssertionError:
        return query(expr)


@pytest.mark.parametrize("expr", RECORDED)
def test_every_recording_rule_has_data_after_the_load(loaded, expr: str) -> None:
    result = answers(expr)
    assert of_this_run(result), f"recording rule {expr} has no data of the test profile: {result}"


# The process kinds that run a service package's code ("common" runs in every HTTP
# service and in fanout).
PACKAGE_JOBS = {"gateway": "gateway", "users": "users", "timeline": "timeline",
                "fanout": "fanout", "common": "gateway|users|timeline|fanout"}


@pytest.mark.parametrize("slug, panel, expr", dashboards.expressions(),
                         ids=[f"{s}:{p.title}" for s, p, _ in dashboards.expressions()])
def test_every_panel_expression_has_data_or_reads_metrics_that_exist(
        loaded, slug: str, panel, expr: str) -> None:
    if answers(expr) if not panel.on_event else query(expr):
        return
    assert panel.on_event, f"{slug}: panel {panel.title!r} has no data: {expr}"
    declared = dashboards.declared_metrics()
    for name in dashboards.metric_names(expr):
        assert name in declared, f"{panel.title!r} reads {name}, which no service declares"
        jobs = "|".join(PACKAGE_JOBS[p] for p in dashboards.declaring_packages(name))
        # The processes running the declaring code are scraped (their other murmur_
        # series are there), so this one appears with its first event.
        assert series_exist(f'{{__name__=~"murmur_.+", job=~"{jobs}", profile="test"}}'), (
            f"{panel.title!r}: {name}'s processes ({jobs}) are not scraped")
