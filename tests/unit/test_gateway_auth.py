"""Bearer-token verification with a freshly generated Ed25519 key pair: the header parsed at
the edge (entrypoints.views.bearer_token), the token checked by the adapter (TokenVerifier),
a failure answered 401 with a Bearer challenge (entrypoints.errors)."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common import jwks
from gateway.adapters.tokens import TokenVerifier
from gateway.config import DownstreamConfig, GatewayConfig
from gateway.domain.errors import Unauthenticated
from gateway.domain.model import Principal
from gateway.entrypoints.app import create_app
from gateway.entrypoints.views import bearer_token
from unit import _gateway_tokens as tokens
from unit._gateway_tokens import PRIVATE, PUBLIC, key_pair


def token(private: Ed25519PrivateKey = PRIVATE, **claims: object) -> str:
    return tokens.token(private, **{"sub": "42", **claims})


def authenticate(verifier: TokenVerifier, header: str | None) -> Principal:
    """Who an Authorization header names, as the gateway finds out."""
    return verifier.verify(bearer_token(header))


def rejects(verifier: TokenVerifier, header: str | None) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as caught:
        authenticate(verifier, header)
    return caught.value


def test_a_valid_token_names_its_user() -> None:
    principal = authenticate(TokenVerifier(PUBLIC), f"Bearer {token()}")
    assert (principal.user_id, principal.username) == ("42", "ada")


def test_the_scheme_name_is_case_insensitive() -> None:
    assert authenticate(TokenVerifier(PUBLIC), f"bearer {token()}").user_id == "42"


def test_a_missing_header_is_a_401_with_a_bearer_challenge() -> None:
    assert "needs an access token" in str(rejects(TokenVerifier(PUBLIC), None))


def test_another_scheme_is_rejected() -> None:
    rejects(TokenVerifier(PUBLIC), "Basic YWRhOnNlY3JldA==")


def test_an_expired_token_is_rejected_as_expired() -> None:
    past = int(time.time()) - 3600
    error = rejects(TokenVerifier(PUBLIC, leeway=5),
                    f"Bearer {token(iat=past - 60, exp=past)}")
    assert "expired" in str(error)


def test_a_token_signed_by_another_key_is_rejected() -> None:
    other, _ = key_pair()
    rejects(TokenVerifier(PUBLIC), f"Bearer {token(other)}")


def test_a_token_without_expiry_is_rejected() -> None:
    rejects(TokenVerifier(PUBLIC), f"Bearer {token(exp=None)}")


def test_a_token_whose_subject_is_not_a_user_id_is_rejected() -> None:
    rejects(TokenVerifier(PUBLIC), f"Bearer {token(sub='admin')}")


def test_an_unsigned_token_is_rejected() -> None:
    unsigned = jwt.encode({"sub": "42", "iat": 1, "exp": 2**40}, None, algorithm="none")
    rejects(TokenVerifier(PUBLIC), f"Bearer {unsigned}")


def test_garbage_is_rejected() -> None:
    rejects(TokenVerifier(PUBLIC), "Bearer not.a.jwt")


def test_the_key_file_is_read_when_first_needed_then_only_when_it_changed(tmp_path) -> None:
    path, reads = tmp_path / "jwks.json", []

    def parse(text: str) -> dict:
        reads.append(1)
        return jwks.read_key_set(text)

    verifier = TokenVerifier(jwks.WatchedFile(path, parse, interval=0))  # no file yet
    path.write_text(PUBLIC)
    authenticate(verifier, f"Bearer {token()}")
    authenticate(verifier, f"Bearer {token()}")
    assert reads == [1]


def test_a_token_without_a_username_names_the_user_with_an_empty_one() -> None:
    assert authenticate(TokenVerifier(PUBLIC), f"Bearer {token(username=None)}") == \
        Principal("42", "")


@pytest.mark.parametrize("header", [None, "Basic YWRhOnNlY3JldA==", "Bearer not.a.jwt"])
def test_a_caller_without_a_valid_token_is_answered_401_with_a_bearer_challenge(header) -> None:
    down = DownstreamConfig("x", "http://127.0.0.1:9", 0.1, 0.1, 1)
    app = create_app(GatewayConfig(users=down, users_sign_in=down, timeline=down, jwt_public_keys=PUBLIC,
                                   jwt_public_keys_file=Path("/nonexistent"), jwt_leeway=0,
                                   retry_after=1), tokens=TokenVerifier(PUBLIC))
    resp = app.test_client().get("/api/v1/timeline",
                                 headers={"Authorization": header} if header else {})
    assert resp.status_code == 401
    assert resp.mimetype == "application/problem+json"
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="murmur"'
    assert resp.get_json()["detail"]
