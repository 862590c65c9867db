"""The public system status: how readings of the processes become the summary, how often
the processes are read, and that nothing but states and numbers comes out."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from common.config import SettingError
from gateway.adapters.status import HttpStatusSources, readiness, samples
from gateway.adapters.tokens import TokenVerifier
from gateway.config import DownstreamConfig, GatewayConfig, status_sources
from gateway.domain import status
from gateway.domain.status import Reading, Recent, Sample, summarize
from gateway.entrypoints.app import create_app
from gateway.service_layer.status import StatusBoard
from unit._fake_peer import Answer, running_service
from unit._gateway_tokens import PUBLIC

AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def breaker(name: str, state: int = 0) -> Sample:
    return Sample("murmur_breaker_state", {"breaker": name}, state)


def healthy() -> dict[str, Reading]:
    """Readings of a system at rest, as the processes answer them."""
    return {
        "gateway": Reading("gateway", True, True, ("jwt_public_keys",), (),
                           (breaker("gateway.users"), breaker("gateway.timeline"))),
        "users": Reading("users", True, True, ("postgres", "redis"), (),
                         (breaker("users.postgres"), breaker("users.redis"),
                          Sample("murmur_cache_requests_total",
                                 {"cache": "profile", "result": "hit"}, 30),
                          Sample("murmur_cache_requests_total",
                                 {"cache": "profile", "result": "miss"}, 10))),
        "timeline": Reading("timeline", True, True, ("cassandra", "redis"), (),
                            (breaker("timeline.cassandra"), breaker("timeline.redis"),
                             breaker("timeline.users"))),
        "fanout": Reading("fanout", True, True, ("consumer", "held", "redis"), (),
                          (breaker("fanout.users"), breaker("fanout.timeline"),
                           Sample("murmur_fanout_consumer_lag",
                                  {"topic": "tweets.v1", "partition": "0"}, 3),
                           Sample("murmur_fanout_consumer_lag",
                                  {"topic": "follows.v1", "partition": "1"}, 4),
                           Sample("murmur_fanout_lag_seconds_sum", {"type": "TweetPosted"}, 2.0),
                           Sample("murmur_fanout_lag_seconds_count", {"type": "TweetPosted"},
                                  8))),
        "users-relay": Reading("users-relay", True, True, (), (),
                               (Sample("murmur_outbox_backlog", {"outbox": "users"}, 2),)),
        "timeline-relay": Reading("timeline-relay", True, True, (), (),
                                  (Sample("murmur_outbox_backlog", {"outbox": "timeline"}, 5),)),
        "timeline-authors": Reading("timeline-authors", True, True, ("cassandra", "consumer"),
                                    (), (Sample("murmur_timeline_author_consumer_lag",
                                                {"partition": "0"}, 1),)),
    }


def summary_of(readings: dict[str, Reading]) -> dict:
    return summarize(readings, Recent(status.counters(readings)), AT)


def states(summary: dict) -> dict[str, str]:
    return {c["name"]: c["status"] for c in summary["components"]}


def test_a_system_at_rest_is_ok_with_every_component_up_and_every_breaker_closed() -> None:
    summary = summary_of(healthy())
    assert summary["status"] == "ok"
    assert set(states(summary).values()) == {"up"}
    assert [c["name"] for c in summary["components"]] == [
        "gateway", "users", "timeline", "fanout", "users-relay", "timeline-relay",
        "timeline-authors", "postgres", "redis", "cassandra", "kafka"]
    assert {b["state"] for b in summary["breakers"]} == {"closed"}
    assert {(b["process"], b["name"]) for b in summary["breakers"]} >= {
        ("gateway", "gateway.users"), ("timeline", "timeline.cassandra")}
    assert summary["generated_at"] == "2025-01-02T03:04:05.000Z"


def test_the_pipeline_sums_each_figure_over_partitions_and_processes() -> None:
    assert summary_of(healthy())["pipeline"] == {
        "consumer_lag": 7, "fanout_lag_seconds": 0.25, "outbox_backlog": 7,
        "authors_consumer_lag": 1}


def test_a_figure_whose_process_did_not_answer_is_null() -> None:
    readings = {**healthy(), "fanout": Reading("fanout", answered=False)}
    pipeline = summary_of(readings)["pipeline"]
    assert pipeline["consumer_lag"] is None and pipeline["fanout_lag_seconds"] is None
    assert pipeline["outbox_backlog"] == 7


def test_a_cache_shows_its_hit_ratio_under_its_services_name() -> None:
    assert summary_of(healthy())["caches"] == [
        {"name": "users.profile", "hit_ratio": 0.75, "requests": 40}]


def test_a_process_that_does_not_answer_is_down_and_the_system_degraded() -> None:
    summary = summary_of({**healthy(), "fanout": Reading("fanout", answered=False)})
    assert states(summary)["fanout"] == "down"
    assert summary["status"] == "degraded"


def test_the_system_is_down_when_neither_users_nor_timeline_answers() -> None:
    readings = {**healthy(), "users": Reading("users", answered=False),
                "timeline": Reading("timeline", answered=False)}
    assert summary_of(readings)["status"] == "down"


def test_the_system_is_down_when_the_gateways_breakers_to_both_are_open() -> None:
    readings = healthy()
    readings["gateway"] = Reading("gateway", True, True, samples=(
        breaker("gateway.users", 2), breaker("gateway.timeline", 2)))
    summary = summary_of(readings)
    assert summary["status"] == "down"
    assert states(summary)["users"] == "degraded"  # it answers; the gateway does not call it


def test_a_store_no_answering_service_can_reach_is_down() -> None:
    readings = healthy()
    readings["users"] = Reading("users", True, False, (), ("redis",))
    readings["timeline"] = Reading("timeline", True, False, (), ("redis",))
    readings["fanout"] = Reading("fanout", True, False, (), ("redis",))
    summary = summary_of(readings)
    redis = next(c for c in summary["components"] if c["name"] == "redis")
    assert redis == {"name": "redis", "kind": "store", "status": "down",
                     "detail": "users, timeline, fanout cannot reach it"}
    assert states(summary)["users"] == "degraded"
    assert summary["status"] == "degraded"


def test_a_store_only_some_services_cannot_reach_is_degraded() -> None:
    readings = {**healthy(), "timeline": Reading("timeline", True, False, (), ("redis",))}
    assert states(summary_of(readings))["redis"] == "degraded"


def test_an_open_breaker_degrades_its_process_and_what_it_guards() -> None:
    readings = healthy()
    readings["timeline"] = Reading("timeline", True, True, ("cassandra", "redis"), (),
                                   (breaker("timeline.cassandra", 2), breaker("timeline.redis", 1)))
    summary = summary_of(readings)
    assert states(summary)["cassandra"] == "degraded"
    assert states(summary)["redis"] == "degraded"
    assert states(summary)["timeline"] == "degraded"
    assert {b["name"]: b["state"] for b in summary["breakers"]
            if b["process"] == "timeline"} == {"timeline.cassandra": "open",
                                               "timeline.redis": "half_open"}
    assert summary["status"] == "degraded"


def test_a_breaker_shows_its_worst_state_over_the_workers() -> None:
    readings = healthy()
    readings["users"] = Reading("users", True, True, ("postgres",), (),
                                (breaker("users.postgres", 0), breaker("users.postgres", 2)))
    assert [b["state"] for b in summary_of(readings)["breakers"]
            if b["name"] == "users.postgres"] == ["open"]


def test_a_process_the_gateway_does_not_read_is_unknown_and_does_not_degrade() -> None:
    readings = {**healthy(), "users-relay": status.unobserved("users-relay")}
    summary = summary_of(readings)
    assert states(summary)["users-relay"] == "unknown"
    assert summary["status"] == "ok"


def test_the_edge_is_up_only_for_a_request_that_came_through_it() -> None:
    summary = summary_of(healthy())
    through = status.seen_through_edge(summary, True)["components"][0]
    direct = status.seen_through_edge(summary, False)["components"][0]
    assert (through["name"], through["kind"], through["status"]) == ("nginx", "edge", "up")
    assert direct["status"] == "unknown"


def test_the_edges_are_the_arrows_of_the_design_between_known_components() -> None:
    names = {name for name, _kind in status.COMPONENTS}
    edges = summary_of(healthy())["edges"]
    assert {(e["from"], e["to"]) for e in edges} >= {
        ("nginx", "gateway"), ("gateway", "users"), ("gateway", "timeline"),
        ("kafka", "fanout"), ("fanout", "redis"), ("timeline", "cassandra")}
    assert all(e["from"] in names and e["to"] in names for e in edges)


# ------------------------------------------------------------------ nothing but figures

HOSTILE = "http://10.0.0.7:6379/ token=s3cret 127.0.0.1:5432"


def test_nothing_a_process_reports_besides_names_and_figures_reaches_the_summary() -> None:
    readings = healthy()
    readings["users"] = Reading("users", True, False, (), ("postgres", HOSTILE),
                                (breaker(HOSTILE, 2), breaker("users.redis"),
                                 Sample("murmur_cache_requests_total",
                                        {"cache": HOSTILE, "result": "hit"}, 3)))
    summary = status.seen_through_edge(summary_of(readings), False)
    text = json.dumps({k: v for k, v in summary.items() if k != "generated_at"})
    assert not re.search(r":\d", text), text
    for word in ("127.0.0.1", "10.0.0.7", "http", "token", "s3cret", "//"):
        assert word not in text
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", summary["generated_at"])
    assert states(summary)["users"] == "degraded"  # still told, by names it knows


def test_a_readiness_answer_gives_its_check_names_and_never_its_messages() -> None:
    problem = json.dumps({"status": 503, "errors": [
        {"field": "redis", "message": "Error 111 connecting to 127.0.0.1:16379."}]}).encode()
    assert readiness(503, problem) == (False, (), ("redis",))
    ready = json.dumps({"status": "ready", "checks": ["postgres", "redis"]}).encode()
    assert readiness(200, ready) == (True, ("postgres", "redis"), ())
    assert readiness(500, b"<html>")[0] is None


# ------------------------------------------------------------------- recent figures


def test_counters_that_grew_give_the_recent_mean_fanout_lag_and_hit_ratio() -> None:
    earlier = status.counters(healthy())
    later = healthy()
    later["fanout"] = Reading("fanout", True, True, ("consumer",), (), (
        Sample("murmur_fanout_lag_seconds_sum", {"type": "TweetPosted"}, 2.0 + 3.0),
        Sample("murmur_fanout_lag_seconds_count", {"type": "TweetPosted"}, 8 + 2)))
    later["users"] = Reading("users", True, True, ("postgres", "redis"), (), (
        Sample("murmur_cache_requests_total", {"cache": "profile", "result": "hit"}, 31),
        Sample("murmur_cache_requests_total", {"cache": "profile", "result": "miss"}, 19)))
    totals = status.counters(later)
    summary = summarize(later, Recent(totals, status.growth(earlier, totals), 30.0), AT)
    assert summary["pipeline"]["fanout_lag_seconds"] == 1.5
    assert summary["caches"] == [{"name": "users.profile", "hit_ratio": 0.1, "requests": 10}]
    assert summary["window_seconds"] == 30.0


def test_a_counter_that_went_down_was_reset_and_all_of_it_is_growth() -> None:
    assert status.growth({("k",): 100.0}, {("k",): 7.0}) == {("k",): 7.0}
    assert status.growth({("k",): 5.0}, {("k",): 7.0, ("new",): 2.0}) == {
        ("k",): 2.0, ("new",): 2.0}


# ------------------------------------------------------------------------ the board


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingSources:
    """Sources that count their readings; `gate` holds a reading until it is set."""

    def __init__(self) -> None:
        self.reads = 0
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.gate.set()

    def read(self) -> dict[str, Reading]:
        self.reads += 1
        self.entered.set()
        assert self.gate.wait(10), "the test never let the reading finish"
        return healthy()


def test_the_board_reads_the_processes_at_most_once_per_max_age() -> None:
    sources, clock = CountingSources(), Clock()
    board = StatusBoard(sources, max_age=2.0, clock=clock, wall_clock=lambda: AT)
    first = board.summary()
    clock.now += 1.9
    assert board.summary() is first and sources.reads == 1
    clock.now += 0.2
    assert board.summary() is not first and sources.reads == 2


def test_requests_that_arrive_during_a_reading_share_it() -> None:
    sources, clock = CountingSources(), Clock()
    board = StatusBoard(sources, max_age=2.0, clock=clock, wall_clock=lambda: AT)
    sources.gate.clear()
    got: list[dict] = []
    threads = [threading.Thread(target=lambda: got.append(board.summary())) for _ in range(8)]
    for thread in threads:
        thread.start()
    assert sources.entered.wait(10)
    sources.gate.set()
    for thread in threads:
        thread.join(10)
    assert sources.reads == 1 and len(got) == 8
    assert all(summary is got[0] for summary in got)


def test_the_board_gives_growth_over_the_readings_of_the_last_minute() -> None:
    sources, clock = CountingSources(), Clock()
    board = StatusBoard(sources, max_age=2.0, clock=clock, wall_clock=lambda: AT)
    assert board.summary()["window_seconds"] is None  # no earlier reading: since start
    clock.now += 5
    later = board.summary()
    assert later["window_seconds"] == 5.0
    assert later["caches"][0]["requests"] == 0 and later["caches"][0]["hit_ratio"] is None
    clock.now += status.WINDOW + 1  # every earlier reading has left the window
    assert board.summary()["window_seconds"] is None


# ---------------------------------------------------------------- reading over HTTP


def metrics_text() -> str:
    registry = CollectorRegistry()
    Gauge("murmur_breaker_state", "b", ["breaker"], registry=registry).labels("users.redis").set(2)
    Counter("murmur_cache_requests_total", "c", ["cache", "result"],
            registry=registry).labels("profile", "hit").inc(4)
    Histogram("murmur_fanout_lag_seconds", "h", ["type"],
              registry=registry).labels("TweetPosted").observe(0.5)
    Counter("murmur_http_requests_total", "not wanted", registry=registry).inc()
    return generate_latest(registry).decode()


def test_the_wanted_samples_of_a_prometheus_text_are_kept_and_the_rest_skipped() -> None:
    found = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in samples(metrics_text())}
    assert found[("murmur_breaker_state", (("breaker", "users.redis"),))] == 2
    assert found[("murmur_cache_requests_total", (("cache", "profile"), ("result", "hit")))] == 4
    assert found[("murmur_fanout_lag_seconds_sum", (("type", "TweetPosted"),))] == 0.5
    assert not any(name.startswith("murmur_http") for name, _labels in found)
    assert samples("not { a metric") == ()


def test_processes_are_read_over_http_and_one_that_hangs_costs_only_the_timeout() -> None:
    with running_service() as users, running_service() as fanout:
        users.answer = Answer(200, {"status": "ready", "checks": ["postgres", "redis"]})
        users.script = []
        fanout.answer = Answer(hang=True)
        sources = HttpStatusSources({"users": users.url, "fanout": fanout.url,
                                     "timeline": "http://127.0.0.1:9"}, timeout=0.3,
                                    own_checks={"keys": lambda: None},
                                    own_metrics=lambda: metrics_text().encode())
        try:
            started = time.monotonic()
            readings = sources.read()
            took = time.monotonic() - started
        finally:
            fanout.released.set()
            sources.close()
    assert took < 2.0
    assert readings["users"].answered and readings["users"].ready
    assert readings["users"].passing == ("postgres", "redis")
    assert not readings["fanout"].answered and not readings["timeline"].answered
    assert not readings["users-relay"].observed
    # The gateway's own reading keeps its own breakers only.
    assert readings["gateway"].ready and readings["gateway"].samples == ()


# ------------------------------------------------------------------------- the route


def gateway_config(**changes) -> GatewayConfig:
    down = DownstreamConfig("x", "http://127.0.0.1:9", 0.1, 0.1, 1)
    return GatewayConfig(users=down, users_sign_in=down, timeline=down, jwt_public_keys=PUBLIC,
                         jwt_public_keys_file=Path("/nonexistent"), **changes)


@pytest.fixture()
def route():
    sources = CountingSources()
    app = create_app(gateway_config(), users=object(), timeline=object(),
                     tokens=TokenVerifier(PUBLIC), status=sources)
    return app.test_client(), sources


def test_the_route_answers_the_summary_as_json_shared_for_two_seconds(route) -> None:
    client, sources = route
    resp = client.get("/api/v1/system/status", headers={"X-Forwarded-Proto": "http"})
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    assert resp.headers["Cache-Control"] == "max-age=2"
    body = resp.get_json()
    assert body["status"] == "ok" and body["components"][0]["status"] == "up"
    for _ in range(20):
        assert client.get("/api/v1/system/status").status_code == 200
    assert sources.reads == 1


def test_the_route_is_declared_with_its_response_schema(route) -> None:
    client, _sources = route
    doc = client.get("/api/v1/openapi.json").get_json()
    operation = doc["paths"]["/api/v1/system/status"]["get"]
    assert "security" not in operation
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/SystemStatus")
    schema = doc["components"]["schemas"]["SystemStatus"]
    assert set(schema["required"]) >= {"generated_at", "status", "components", "edges",
                                       "breakers", "pipeline", "caches"}
    assert {"429", "503"} <= set(operation["responses"])


def test_status_sources_outside_the_system_are_refused_naming_the_variable() -> None:
    assert status_sources(("users", "fanout")) == ("users", "fanout")
    with pytest.raises(SettingError, match="^GATEWAY_STATUS_SOURCES='users,postgres': unknown"):
        create_app(gateway_config(status_sources=("users", "postgres")), users=object(),
                   timeline=object(), tokens=TokenVerifier(PUBLIC))
