"""The gateway's resilience seen by a client, with every dependency healthy.

Faults themselves (a service or store down, slow, cut) are tests/fault's; here: the gateway
sets every request's time budget itself, whatever a client claims in `Murmur-Deadline`;
every error a downstream answers reaches the client as problem+json; and each gateway
exports its breakers and pool saturation.
"""

from __future__ import annotations

import re
import time
import uuid

import pytest
import requests

from common import config


def unix_ms(offset: float) -> str:
    """A `Murmur-Deadline` value `offset` seconds from now."""
    return str(int((time.time() + offset) * 1000))


# Deadlines a client might send: long gone, about to pass, absurdly far, not a number.
CLIENT_DEADLINES = [unix_ms(-3600), unix_ms(0.001), unix_ms(10**9), "soon"]


@pytest.mark.parametrize("deadline", CLIENT_DEADLINES)
def test_a_clients_deadline_is_not_trusted_the_gateway_sets_its_own(api, deadline) -> None:
    ada = api.sign_up()
    budget = {"Murmur-Deadline": deadline}
    assert api.get(f"/users/{ada.username}", headers=budget).status_code == 200
    posted = api.post("/tweets", json={"text": "on time"}, headers={**ada.auth, **budget})
    assert posted.status_code == 201, posted.text
    home = api.get("/timeline", headers={**ada.auth, **budget})
    assert home.status_code == 200, home.text


def assert_dependency_problem(resp: requests.Response, status: int) -> None:
    """An error answered because of a downstream: problem+json, and 503s say when to retry."""
    assert resp.headers["Content-Type"].startswith("application/problem+json"), resp.headers
    body = resp.json()
    assert body["status"] == resp.status_code and body["title"], body
    if resp.status_code >= 500:
        # A dependency down never shows as a bare 500/502/504: 503 with Retry-After.
        assert resp.status_code == 503 and int(resp.headers["Retry-After"]) >= 1, resp.headers
    else:
        assert resp.status_code == status, f"{resp.status_code} {resp.text}"


def test_every_error_a_dependency_answers_reaches_the_client_as_a_problem(api) -> None:
    ada, bob = api.sign_up(), api.sign_up()
    tweet = api.tweet(ada)
    etag = api.get(f"/users/{ada.username}").headers["ETag"]
    assert api.patch("/users/me", json={"bio": "new"},
                     headers={**ada.auth, "If-Match": etag}).status_code == 200
    ghost = f"ghost_{uuid.uuid4().hex[:12]}"
    answered_by_a_dependency = [
        (api.get(f"/users/{ghost}"), 404),                                      # users
        (api.get(f"/users/{ghost}/tweets"), 404),                               # users
        (api.put(f"/users/me/following/{ghost}", headers=ada.auth), 404),       # users
        (api.post("/users", json={"username": ada.username,
                                  "password": "correct horse battery"}), 409),  # users
        (api.patch("/users/me", json={"bio": "stale"},
                   headers={**ada.auth, "If-Match": etag}), 412),               # users
        (api.get(f"/users/{ada.username}/followers?cursor=not-a-real-cursor"), 422),  # users
        (api.get("/tweets/1"), 404),                                            # timeline
        (api.delete(f"/tweets/{tweet['id']}", headers=bob.auth), 403),          # timeline
        (api.get("/timeline?cursor=zzzz", headers=ada.auth), 422),              # timeline
    ]
    for resp, status in answered_by_a_dependency:
        assert_dependency_problem(resp, status)


def metrics_of(service: str) -> str:
    port = config.SERVICE_PORTS[service] + config.profile().port_offset
    resp = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert resp.status_code == 200
    return resp.text


def sample(text: str, name: str, label: str, value: str) -> float:
    """The value of `name{label="value"}` in Prometheus text; fails if it is missing."""
    found = re.search(rf'^{name}\{{[^}}]*{label}="{value}"[^}}]*\}} (\S+)$', text, re.MULTILINE)
    assert found, f"{name}{{{label}={value!r}}} is not exported"
    return float(found.group(1))


@pytest.mark.parametrize("gateway", ["gateway", "gateway-2"])
def test_each_gateway_exports_its_breakers_and_pool_saturation(api, gateway) -> None:
    ada = api.sign_up()
    api.tweet(ada)
    text = metrics_of(gateway)
    for dependency in ("users", "timeline"):
        assert sample(text, "murmur_breaker_state", "breaker",
                      f"gateway.{dependency}") in (0, 1, 2)
        size = sample(text, "murmur_pool_size", "dependency", dependency)
        assert size >= 1
        assert 0 <= sample(text, "murmur_pool_in_use", "dependency", dependency) <= size
