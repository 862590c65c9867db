"""Bearer-token verification with a freshly generated Ed25519 key pair."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.problems import Problem
from gateway.auth import TokenVerifier
from unit import _gateway_tokens as tokens
from unit._gateway_tokens import PRIVATE, PUBLIC, key_pair


def token(private: Ed25519PrivateKey = PRIVATE, **claims: object) -> str:
    return tokens.token(private, **{"sub": "42", **claims})


def rejects(verifier: TokenVerifier, header: str | None) -> Problem:
    with pytest.raises(Problem) as caught:
        verifier.authenticate(header)
    assert caught.value.status == 401
    assert caught.value.headers["WWW-Authenticate"].startswith("Bearer")
    return caught.value


def test_a_valid_token_names_its_user() -> None:
    principal = TokenVerifier(PUBLIC).authenticate(f"Bearer {token()}")
    assert (principal.user_id, principal.username) == ("42", "ada")


def test_the_scheme_name_is_case_insensitive() -> None:
    assert TokenVerifier(PUBLIC).authenticate(f"bearer {token()}").user_id == "42"


def test_a_missing_header_is_a_401_with_a_bearer_challenge() -> None:
    assert "needs an access token" in rejects(TokenVerifier(PUBLIC), None).detail


def test_another_scheme_is_rejected() -> None:
    rejects(TokenVerifier(PUBLIC), "Basic YWRhOnNlY3JldA==")


def test_an_expired_token_is_rejected_as_expired() -> None:
    past = int(time.time()) - 3600
    problem = rejects(TokenVerifier(PUBLIC, leeway=5),
                      f"Bearer {token(iat=past - 60, exp=past)}")
    assert "expired" in problem.detail


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


def test_the_key_is_read_once_when_first_needed() -> None:
    reads = []

    def load() -> str:
        reads.append(1)
        return PUBLIC

    verifier = TokenVerifier(load)
    assert reads == []
    verifier.authenticate(f"Bearer {token()}")
    verifier.authenticate(f"Bearer {token()}")
    assert reads == [1]
