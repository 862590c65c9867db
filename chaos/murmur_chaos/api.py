"""The public API as the experiments' clients use it: accounts, follows, posts, timelines."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import requests

PASSWORD = "chaos-experiment-password"
DEGRADED = "Murmur-Degraded"


@dataclass(frozen=True)
class Member:
    """A signed-up account with a session."""

    id: str
    username: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def member(data: dict[str, str]) -> Member:
    return Member(**data)


def _patient(call, what: str, deadline: float = 60.0) -> requests.Response:
    """`call()` until it is not refused for the rate limit (429) or a passing outage; the
    experiments set up between faults, and one refused sign-up must not abort them."""
    end = time.monotonic() + deadline
    while True:
        try:
            resp = call()
            if resp.status_code not in (429, 502, 503, 504):
                return resp
            wait = float(resp.headers.get("Retry-After", "1") or 1)
        except requests.RequestException:
            wait = 1.0
        if time.monotonic() > end:
            raise AssertionError(f"{what}: no answer but refusals for {deadline:.0f}s")
        time.sleep(min(wait, 2.0))


def sign_in(api: str, username: str, password: str = PASSWORD) -> str:
    """A session token for an existing account."""
    body = {"username": username, "password": password}
    resp = _patient(lambda: requests.post(f"{api}/sessions", json=body, timeout=10),
                    f"signing in {username}")
    assert resp.status_code == 200, (resp.status_code, resp.text[:200])
    return resp.json()["access_token"]


def sign_up(api: str, prefix: str) -> Member:
    """A new account with a session."""
    username = f"{prefix}_{uuid.uuid4().hex[:8]}"
    body = {"username": username, "password": PASSWORD}
    resp = _patient(lambda: requests.post(f"{api}/users", json=body, timeout=10),
                    f"signing up {username}")
    if resp.status_code == 409:  # created by an attempt whose answer was lost
        resp = requests.get(f"{api}/users/{username}", timeout=10)
    assert resp.status_code in (200, 201), (resp.status_code, resp.text[:200])
    return Member(resp.json()["id"], username, sign_in(api, username))


def wait_until_known(api: str, member: Member, deadline: float = 60.0) -> None:
    """Poll until the member's tweets answer 200: timeline learns of a new account from
    its `UserRegistered` event, so for a moment after sign-up the list is a 404."""
    end = time.monotonic() + deadline
    while True:
        resp = _patient(lambda: requests.get(f"{api}/users/{member.username}/tweets",
                                             timeout=10),
                        f"reading {member.username}'s tweets")
        if resp.status_code == 200:
            return
        if time.monotonic() > end:
            raise AssertionError(f"{member.username}'s tweets still answer "
                                 f"{resp.status_code} {deadline:.0f}s after sign-up")
        time.sleep(0.2)


def follow(api: str, follower: Member, followee: Member) -> None:
    resp = _patient(lambda: requests.put(f"{api}/users/me/following/{followee.username}",
                                         headers=follower.auth, timeout=10),
                    f"{follower.username} following {followee.username}")
    assert resp.status_code == 204, (resp.status_code, resp.text[:200])


def home_ids(api: str, reader: Member, most: int = 800,
             session: requests.Session | None = None) -> list[str]:
    """Every id of a reader's home timeline, page by page (up to `most`), duplicates kept;
    raises unless every page answers 200."""
    http = session or requests
    ids: list[str] = []
    params: dict[str, Any] = {"limit": 100}
    while len(ids) < most:
        resp = http.get(f"{api}/timeline", params=params, headers=reader.auth, timeout=10)
        assert resp.status_code == 200, (resp.status_code, resp.text[:200])
        page = resp.json()
        ids += [t["id"] for t in page["items"]]
        if not page.get("next_cursor"):
            break
        params["cursor"] = page["next_cursor"]
    return ids
