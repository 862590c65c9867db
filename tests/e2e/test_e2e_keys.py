"""Signing-key rotation on the running test profile, under traffic.

While a client keeps sending authenticated requests through nginx (profile reads, home
timelines, posts, and sign-ins whose fresh tokens are used at once), `stackctl rotate-keys`
gives the test profile a new signing key. Not one request may fail: tokens signed before
keep working, tokens signed after carry the new key's id, and the published JWK Set lists
both keys.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common import config, jwks
from conftest import REPO
from e2e.conftest import API, PASSWORD, Client, Member

ROTATION_TIMEOUT = 120
CLIENTS = 4


def kid(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def signing_kid() -> str:
    """The kid of the key the test profile's users signs with, from its key file."""
    return jwks.signing_key((config.jwt_keys_dir() / "private.pem").read_bytes()).kid


def published_kids(api: Client) -> list[str]:
    resp = api.get("/.well-known/jwks.json")
    assert resp.status_code == 200, resp.text
    return [key["kid"] for key in resp.json()["keys"]]


@dataclass
class Traffic:
    """A client thread's authenticated requests, each answered or counted as a failure."""

    member: Member
    followee: Member
    stop: threading.Event = field(default_factory=threading.Event)
    sent: list[tuple[float, str]] = field(default_factory=list)  # (when, what)
    failures: list[str] = field(default_factory=list)
    fresh_kids: list[tuple[float, str]] = field(default_factory=list)  # (when, kid) signed in

    def check(self, what: str, resp: requests.Response, expected: int) -> requests.Response:
        self.sent.append((time.monotonic(), what))
        if resp.status_code != expected:
            self.failures.append(f"{what}: {resp.status_code} {resp.text[:200]}")
        return resp

    def run(self) -> None:
        http = requests.Session()
        old = {"Authorization": f"Bearer {self.member.token}"}
        fresh = old
        n = 0
        try:
            while not self.stop.is_set():
                n += 1
                try:
                    self.check("profile", http.get(f"{API}/users/{self.followee.username}",
                                                   headers=old, timeout=10), 200)
                    self.check("timeline (token from before)",
                               http.get(f"{API}/timeline", headers=old, timeout=10), 200)
                    self.check("timeline (fresh token)",
                               http.get(f"{API}/timeline", headers=fresh, timeout=10), 200)
                    if n % 5 == 0:
                        self.check("post", http.post(f"{API}/tweets", headers=old, timeout=10,
                                                     json={"text": f"during rotation {n}"}), 201)
                    if n % 10 == 0:
                        session = self.check("sign-in", http.post(
                            f"{API}/sessions", timeout=10,
                            json={"username": self.member.username, "password": PASSWORD}), 200)
                        if session.status_code == 200:
                            token = session.json()["access_token"]
                            self.fresh_kids.append((time.monotonic(), kid(token)))
                            fresh = {"Authorization": f"Bearer {token}"}
                except requests.RequestException as exc:
                    self.failures.append(f"request failed: {exc!r}")
        finally:
            http.close()


def test_a_key_rotation_under_traffic_fails_no_request(api: Client) -> None:
    followee = api.sign_up("keys")
    members = [api.sign_up("keys") for _ in range(CLIENTS)]
    for member in members:
        api.follow(member, followee)
    old_kid = signing_kid()
    assert {kid(m.token) for m in members} == {old_kid}
    clients = [Traffic(m, followee) for m in members]
    threads = [threading.Thread(target=c.run, daemon=True) for c in clients]
    for thread in threads:
        thread.start()

    def sent() -> int:
        return sum(len(c.sent) for c in clients)

    def first_signed_with(key_id: str) -> float | None:
        return min((when for c in clients for when, k in c.fresh_kids if k == key_id),
                   default=None)

    try:
        api.wait_until(lambda: sent() >= 50, 30, message="traffic before rotating")
        started = time.monotonic()
        rotation = subprocess.run(
            [sys.executable, str(REPO / "local" / "stackctl"), "--profile", "test",
             "rotate-keys"], cwd=REPO, capture_output=True, text=True, timeout=ROTATION_TIMEOUT)
        ended = time.monotonic()
        assert rotation.returncode == 0, rotation.stdout + rotation.stderr
        new_kid = signing_kid()
        assert new_kid != old_kid and f"published key {new_kid}" in rotation.stdout
        # users signs with the new key once it looked at its key file again: the clients'
        # sign-ins soon carry it, and they use each such token at once.
        api.wait_until(lambda: first_signed_with(new_kid), 30,
                       message="a token signed with the new key")
        switched = first_signed_with(new_kid)
        settled = sent()
        api.wait_until(lambda: sent() >= settled + 100, 60,
                       message="traffic with the new key's tokens")
    finally:
        for c in clients:
            c.stop.set()
        for thread in threads:
            thread.join(30)
    failures = [f for c in clients for f in c.failures]
    during = sum(1 for c in clients for when, _ in c.sent if started <= when <= switched)
    print(f"\nrotate-keys took {ended - started:.1f}s, the first new-key token came "
          f"{switched - started:.1f}s after its start; {sent()} requests in all, {during} "
          f"from the rotation's start to that token, {len(failures)} failed")
    assert failures == []
    assert during > 0
    # The tokens from before still work, and the published set holds both keys.
    for member in members:
        assert api.get("/timeline", headers=member.auth).status_code == 200
    member = members[0]
    kids = api.wait_until(lambda: (lambda k: k if {old_kid, new_kid} <= set(k) else None)(
        published_kids(api)), 10, message="both keys in the published JWK Set")
    assert kids[0] == new_kid
    fresh = api.post("/sessions", json={"username": member.username, "password": PASSWORD})
    assert kid(fresh.json()["access_token"]) == new_kid


def test_the_published_key_set_verifies_the_tokens_users_signs(api: Client) -> None:
    member = api.sign_up("keys")
    resp = api.get("/.well-known/jwks.json")
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("application/json")
    assert resp.headers["Cache-Control"].startswith("public, max-age=")
    published = jwks.read_key_set(resp.text)
    claims = jwt.decode(member.token, published[kid(member.token)], algorithms=["EdDSA"],
                        issuer=jwks.ISSUER, audience=jwks.AUDIENCE)
    assert claims["sub"] == member.id
    assert all(set(k) == {"kty", "crv", "x", "kid", "use", "alg"} for k in resp.json()["keys"])


def test_a_token_from_an_unknown_key_or_for_another_audience_is_a_401(api: Client,
                                                                      problem) -> None:
    member = api.sign_up("keys")
    claims = jwt.decode(member.token, options={"verify_signature": False})
    stranger = Ed25519PrivateKey.generate()
    unknown = jwt.encode(claims, stranger, algorithm="EdDSA",
                         headers={"kid": jwks.thumbprint(stranger.public_key())})
    resp = api.get("/timeline", headers={"Authorization": f"Bearer {unknown}"})
    assert "unknown key" in problem(resp, 401)["detail"]
    # users' own key (always published while it signs), but for another API.
    signing = jwks.signing_key((config.jwt_keys_dir() / "private.pem").read_bytes())
    elsewhere = jwt.encode({**claims, "aud": "another-api"}, signing.key, algorithm="EdDSA",
                           headers={"kid": signing.kid})
    resp = api.get("/timeline", headers={"Authorization": f"Bearer {elsewhere}"})
    assert "not meant for this API" in problem(resp, 401)["detail"]
