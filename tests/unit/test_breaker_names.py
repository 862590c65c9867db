"""Every breaker stands for one service's calls to one dependency: a name of its own
(`<service>.<dependency>`, the label of its metrics) and a state of its own."""

from __future__ import annotations

from typing import Any, Callable

import pytest
import redis
from prometheus_client import REGISTRY

from common import resilience
from gateway.bootstrap import bootstrap as gateway_bootstrap
from gateway.config import GatewayConfig
from timeline import bootstrap as timeline_bootstrap
from timeline import config as timeline_config
from users.adapters.postgres import postgres_breaker
from users.adapters.redis_cache import redis_breaker


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value("murmur_breaker_state", {"breaker": name})


def names_made_by(build: Callable[[], Any], monkeypatch) -> list[str]:
    """The names of the breakers `build` makes."""
    made: list[str] = []
    init = resilience.Breaker.__init__

    def recorded(self, name, **settings):
        made.append(name)
        init(self, name, **settings)

    monkeypatch.setattr(resilience.Breaker, "__init__", recorded)
    built = build()
    monkeypatch.setattr(resilience.Breaker, "__init__", init)
    close = getattr(built, "close", None)
    if callable(close):
        close()
    return made


def test_every_service_names_its_breakers_after_itself_and_the_dependency(monkeypatch):
    # Imported here: a test module that puts bench/ first on the path (its fanout.py)
    # may be collected before this one.
    from fanout import config as fanout_config
    from fanout.bootstrap import bootstrap as fanout_bootstrap

    users = names_made_by(lambda: [postgres_breaker(fail_max=5, reset_timeout=10),
                                   redis_breaker()], monkeypatch)
    timeline = names_made_by(lambda: timeline_bootstrap.breakers(timeline_config.load()),
                             monkeypatch)
    gateway = names_made_by(lambda: gateway_bootstrap(GatewayConfig.load()), monkeypatch)
    # The dead-letter producer is Kafka's and no breaker: left out, so no broker is needed.
    fanout = names_made_by(lambda: fanout_bootstrap(fanout_config.load(),
                                                    dead_letters=object()), monkeypatch)
    assert users == ["users.postgres", "users.redis"]
    assert timeline == ["timeline.cassandra", "timeline.redis", "timeline.users"]
    assert sorted(gateway) == ["gateway.timeline", "gateway.users", "gateway.users_sign_in"]
    assert sorted(fanout) == ["fanout.timeline", "fanout.users"]


def test_the_users_and_timeline_redis_breakers_keep_their_own_state():
    users = redis_breaker(fail_max=2, reset_timeout=60)
    timeline = timeline_bootstrap.breakers(timeline_config.load())["redis"]

    def down() -> None:
        raise redis.ConnectionError("Connection refused")

    for _ in range(timeline.fail_max):
        with pytest.raises((redis.ConnectionError, resilience.CircuitBreakerError)):
            timeline.call(down)
    assert timeline.is_open and not users.is_open
    assert (gauge("timeline.redis"), gauge("users.redis")) == (2, 0)
    assert users.call(lambda: "answered") == "answered"
