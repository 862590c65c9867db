"""Series a dashboard reads exist from the start, and degraded answers are counted."""

from __future__ import annotations

from flask import Response
from prometheus_client import REGISTRY

from common import resilience
from common.web import create_base_app


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_a_new_breaker_exports_its_rejections_and_transitions_at_zero():
    resilience.Breaker(fail_max=3, reset_timeout=5, name="zero-test.dependency")
    assert sample("murmur_breaker_rejections_total", breaker="zero-test.dependency") == 0
    for state in ("closed", "open", "half-open"):
        assert sample("murmur_breaker_transitions_total",
                      breaker="zero-test.dependency", to=state) == 0


def test_a_retry_policy_exports_its_retries_at_zero_before_the_first_retry():
    resilience.retrying("zero-test-dependency", "read", attempts=2)
    assert sample("murmur_retries_total", dependency="zero-test-dependency",
                  operation="read") == 0


def test_each_reason_of_a_degraded_answer_is_counted_once_by_route():
    app = create_base_app("degraded-test")

    @app.get("/fallback")
    def fallback():
        return Response("{}", headers={"Murmur-Degraded": "cache-unavailable, authors-unavailable"})

    @app.get("/fine")
    def fine():
        return Response("{}")

    client = app.test_client()
    client.get("/fallback")
    client.get("/fallback")
    client.get("/fine")
    for reason in ("cache-unavailable", "authors-unavailable"):
        assert sample("murmur_degraded_responses_total", service="degraded-test",
                      route="/fallback", reason=reason) == 2
    assert sample("murmur_degraded_responses_total", service="degraded-test",
                  route="/fine", reason="") is None
