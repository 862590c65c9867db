"""Accounts through nginx: sign-up, sign-in, profiles and their optimistic locking."""

from __future__ import annotations

import time

import jwt

from common import config, jwks


def test_signing_up_answers_the_new_profile(api) -> None:
    name = api.unique_name("ada")
    resp = api.post("/users", json={"username": name, "password": "s3cret-password",
                                    "display_name": "Ada L."})
    assert resp.status_code == 201, resp.text
    user = resp.json()
    assert user["username"] == name and user["display_name"] == "Ada L."
    assert isinstance(user["id"], str) and user["id"].isdigit()
    assert (user["followers_count"], user["following_count"]) == (0, 0)
    assert user["bio"] == "" and user["created_at"]


def test_a_taken_username_is_a_409(api, problem) -> None:
    member = api.sign_up()
    resp = api.post("/users", json={"username": member.username, "password": "another-pass"})
    problem(resp, 409)


def test_invalid_sign_ups_are_422_naming_each_field(api, problem) -> None:
    cases = [
        ({"username": "No-Caps", "password": "long-enough"}, "username"),
        ({"username": "ab", "password": "long-enough"}, "username"),
        ({"username": "a" * 31, "password": "long-enough"}, "username"),
        ({"username": api.unique_name(), "password": "short"}, "password"),
        ({"username": api.unique_name(), "password": "x" * 129}, "password"),
        ({"username": api.unique_name(), "password": "long-enough", "display_name": "d" * 51},
         "display_name"),
        ({"password": "long-enough"}, "username"),
    ]
    for body, field in cases:
        errors = problem(api.post("/users", json=body), 422)["errors"]
        assert field in [e["field"] for e in errors], (body, errors)
        assert all(e["message"] for e in errors)


def test_a_session_holds_a_bearer_token(api) -> None:
    member = api.sign_up()
    resp = api.post("/sessions", json={"username": member.username,
                                       "password": "correct horse battery staple"})
    assert resp.status_code == 200
    session = resp.json()
    assert session["token_type"] == "Bearer" and session["expires_in"] > 0
    assert api.get("/timeline", headers={"Authorization": f"Bearer {session['access_token']}"}
                   ).status_code == 200


def test_a_wrong_password_or_unknown_user_is_a_401(api, problem) -> None:
    member = api.sign_up()
    problem(api.post("/sessions", json={"username": member.username, "password": "wrong-pass"}),
            401)
    problem(api.post("/sessions", json={"username": api.unique_name(), "password": "whatever1"}),
            401)


def test_a_profile_is_public_and_carries_an_etag(api) -> None:
    member = api.sign_up(display_name="Grace")
    resp = api.get(f"/users/{member.username}")
    assert resp.status_code == 200
    assert resp.json()["display_name"] == "Grace"
    assert resp.headers["ETag"].strip('W/"')


def test_an_unknown_user_is_a_404(api, problem) -> None:
    problem(api.get(f"/users/{api.unique_name('ghost')}"), 404)


def test_editing_a_profile_with_the_current_etag_answers_a_new_etag(api) -> None:
    member = api.sign_up()
    etag = api.get(f"/users/{member.username}").headers["ETag"]
    resp = api.patch("/users/me", json={"bio": "Analytical engines", "display_name": "Ada"},
                     headers={**member.auth, "If-Match": etag})
    assert resp.status_code == 200, resp.text
    assert resp.json()["bio"] == "Analytical engines"
    assert resp.headers["ETag"] != etag
    fresh = api.get(f"/users/{member.username}")
    assert fresh.json()["display_name"] == "Ada"
    assert fresh.headers["ETag"] == resp.headers["ETag"]


def test_a_stale_etag_is_a_412_and_changes_nothing(api, problem) -> None:
    member = api.sign_up()
    etag = api.get(f"/users/{member.username}").headers["ETag"]
    first = api.patch("/users/me", json={"bio": "first"}, headers={**member.auth, "If-Match": etag})
    assert first.status_code == 200
    problem(api.patch("/users/me", json={"bio": "second"},
                      headers={**member.auth, "If-Match": etag}), 412)
    assert api.user(member.username)["bio"] == "first"


def test_an_edit_without_if_match_is_a_428(api, problem) -> None:
    member = api.sign_up()
    problem(api.patch("/users/me", json={"bio": "x"}, headers=member.auth), 428)


def test_an_invalid_edit_is_a_422(api, problem) -> None:
    member = api.sign_up()
    etag = api.get(f"/users/{member.username}").headers["ETag"]
    errors = problem(api.patch("/users/me", json={"bio": "b" * 161},
                               headers={**member.auth, "If-Match": etag}), 422)["errors"]
    assert [e["field"] for e in errors] == ["bio"]


def test_editing_without_a_token_is_a_401_with_a_bearer_challenge(api, problem) -> None:
    resp = api.patch("/users/me", json={"bio": "x"}, headers={"If-Match": '"1"'})
    problem(resp, 401)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def _token(private_pem: bytes, **claims) -> str:
    """A token as users signs it, with the test profile's current key."""
    signing = jwks.signing_key(private_pem)
    return jwt.encode({"iss": jwks.ISSUER, "aud": jwks.AUDIENCE, **claims}, signing.key,
                      algorithm="EdDSA", headers={"kid": signing.kid})


def test_an_expired_or_forged_token_is_a_401(api, problem) -> None:
    member = api.sign_up()
    private = (config.jwt_keys_dir() / "private.pem").read_bytes()
    past = int(time.time()) - 3600
    expired = _token(private, sub=member.id, username=member.username, iat=past - 60, exp=past)
    resp = api.get("/timeline", headers={"Authorization": f"Bearer {expired}"})
    assert "expired" in problem(resp, 401)["detail"]
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    tampered = member.token[:-4] + ("AAAA" if not member.token.endswith("AAAA") else "BBBB")
    problem(api.get("/timeline", headers={"Authorization": f"Bearer {tampered}"}), 401)
    problem(api.get("/timeline", headers={"Authorization": "Bearer"}), 401)
    problem(api.get("/timeline"), 401)
