"""End-to-end fixtures: the test profile's whole stack, reached only through nginx.

Every e2e test talks to http://127.0.0.1:8090/api/v1 (MURMUR_E2E_URL overrides) like a
client would. The session first waits for nginx and every service of the test profile to
be ready and fails, naming what is down, if they are not: a missing stack is an error,
never a reason to skip.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
import requests

from common import config
from conftest import wait_until

API = config.env("MURMUR_E2E_URL", f"http://127.0.0.1:{config.profile().http_port}/api/v1")
READY_TIMEOUT = config.env_float("MURMUR_E2E_READY_TIMEOUT", 60.0)
# Services that must answer /readyz, by their base-port key in common.config.SERVICE_PORTS.
SERVICES = tuple(config.env("MURMUR_E2E_SERVICES", "users,timeline,timeline-authors,fanout,gateway,gateway-2").split(","))
PASSWORD = "correct horse battery staple"


def unique_name(prefix: str = "e2e") -> str:
    """A username no earlier run has used (matches ^[a-z0-9_]{3,30}$)."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def _not_ready() -> list[str]:
    down = []
    offset = config.profile().port_offset
    probes = {name: f"http://127.0.0.1:{config.SERVICE_PORTS[name] + offset}/readyz"
              for name in SERVICES}
    probes["nginx"] = f"{API}/openapi.json"
    for name, url in probes.items():
        try:
            status = requests.get(url, timeout=2).status_code
        except requests.RequestException as exc:
            down.append(f"{name} ({url}: {type(exc).__name__})")
            continue
        if status != 200:
            down.append(f"{name} ({url}: HTTP {status})")
    return down


@pytest.fixture(scope="session", autouse=True)
def stack_ready() -> None:
    """Wait for the test profile's stack; fail (never skip) if it does not come up."""
    deadline = time.monotonic() + READY_TIMEOUT
    down = _not_ready()
    while down and time.monotonic() < deadline:
        time.sleep(0.5)
        down = _not_ready()
    if down:
        pytest.fail("the test profile's stack is not ready (run `make test-up`); not ready: "
                    + "; ".join(down), pytrace=False)


@dataclass
class Member:
    """A signed-up user with a session."""

    id: str
    username: str
    token: str
    display_name: str = ""

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Client:
    """A thin client of the public API with helpers for the common steps."""

    base: str = API
    http: requests.Session = field(default_factory=requests.Session)
    wait_until = staticmethod(wait_until)
    unique_name = staticmethod(unique_name)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return self.http.request(method, self.base + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def sign_up(self, prefix: str = "e2e", display_name: str | None = None) -> Member:
        """Create an account and open a session for it."""
        username = unique_name(prefix)
        body = {"username": username, "password": PASSWORD}
        if display_name is not None:
            body["display_name"] = display_name
        created = self.post("/users", json=body)
        assert created.status_code == 201, created.text
        session = self.post("/sessions", json={"username": username, "password": PASSWORD})
        assert session.status_code == 200, session.text
        user = created.json()
        return Member(user["id"], username, session.json()["access_token"],
                      user["display_name"])

    def follow(self, follower: Member, followee: Member) -> None:
        resp = self.put(f"/users/me/following/{followee.username}", headers=follower.auth)
        assert resp.status_code == 204, resp.text

    def unfollow(self, follower: Member, followee: Member) -> None:
        resp = self.delete(f"/users/me/following/{followee.username}", headers=follower.auth)
        assert resp.status_code == 204, resp.text

    def tweet(self, author: Member, text: str | None = None, **headers: str) -> dict[str, Any]:
        resp = self.post("/tweets", json={"text": text or f"hello {uuid.uuid4().hex[:8]}"},
                         headers={**author.auth, **headers})
        assert resp.status_code == 201, resp.text
        return resp.json()

    def home_ids(self, member: Member, limit: int = 100) -> list[str]:
        resp = self.get("/timeline", params={"limit": limit}, headers=member.auth)
        assert resp.status_code == 200, resp.text
        return [t["id"] for t in resp.json()["items"]]

    def user(self, username: str) -> dict[str, Any]:
        resp = self.get(f"/users/{username}")
        assert resp.status_code == 200, resp.text
        return resp.json()


@pytest.fixture()
def api() -> Client:
    """A fresh API client (its own connection pool)."""
    client = Client()
    yield client
    client.http.close()


def assert_problem(resp: requests.Response, status: int) -> dict[str, Any]:
    """Assert `resp` is an RFC 9457 problem with `status`; return its body."""
    assert resp.status_code == status, f"{resp.status_code} {resp.text}"
    assert resp.headers["Content-Type"].startswith("application/problem+json"), resp.headers
    body = resp.json()
    assert body["status"] == status and body["title"], body
    return body


@pytest.fixture()
def problem() -> Callable[[requests.Response, int], dict[str, Any]]:
    """`problem(resp, status)` asserts an RFC 9457 answer and returns its body."""
    return assert_problem


@pytest.fixture()
def timeline_celebrity(cassandra_session) -> Callable[[Member, bool], None]:
    """`timeline_celebrity(member, True)` waits until timeline's copy of authors holds that
    celebrity status for `member`. users announces a status when a follow or unfollow
    crosses the threshold, and timeline decides from its copy, when it accepts a post,
    whether followers get the tweet by fan-out or by the read-time merge."""
    statement = cassandra_session.prepare("SELECT celebrity FROM authors WHERE id = ?")

    def wait(member: Member, celebrity: bool, timeout: float = 20.0) -> None:
        def held() -> bool:
            rows = list(cassandra_session.execute(statement, (int(member.id),)))
            return bool(rows) and bool(rows[0].celebrity) == celebrity

        wait_until(held, timeout, message=f"timeline holding {member.username} as "
                                          f"{'a' if celebrity else 'no'} celebrity")
    return wait
