"""Session tokens and password hashing of the users service."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from users.adapters.tokens import Argon2Passwords, JwtIssuer


@pytest.fixture(scope="module")
def keys() -> tuple[str, bytes]:
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = private.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, public


def test_a_token_verifies_with_the_public_key_and_carries_the_claims(keys):
    pem, public = keys
    session = JwtIssuer(pem, 600, clock=lambda: 1_700_000_000).issue(1234567890123, "alice")
    claims = jwt.decode(session.access_token, public, algorithms=["EdDSA"],
                        options={"verify_exp": False})
    assert claims == {"sub": "1234567890123", "username": "alice", "iat": 1_700_000_000,
                      "exp": 1_700_000_600}
    assert (session.expires_in, session.token_type) == (600, "Bearer")
    assert jwt.get_unverified_header(session.access_token)["alg"] == "EdDSA"


def test_an_expired_token_is_refused_by_a_verifier(keys):
    pem, public = keys
    session = JwtIssuer(pem, 60, clock=lambda: 1_000).issue(1, "alice")
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(session.access_token, public, algorithms=["EdDSA"])


def test_an_issuer_without_a_key_fails_at_start_not_at_first_login():
    with pytest.raises(ValueError):
        JwtIssuer("", 60)


@pytest.fixture(scope="module")
def passwords() -> Argon2Passwords:
    return Argon2Passwords(time_cost=1, memory_kib=8192, parallelism=1)


def test_a_password_verifies_against_its_hash_only(passwords):
    stored = passwords.hash("correct horse")
    assert stored.startswith("$argon2id$")
    assert passwords.verify(stored, "correct horse")
    assert not passwords.verify(stored, "wrong horse")


def test_a_garbled_hash_never_verifies(passwords):
    assert not passwords.verify("not-a-hash", "anything")


def test_hashes_made_with_other_costs_need_a_rehash(passwords):
    stronger = Argon2Passwords(time_cost=2, memory_kib=8192, parallelism=1)
    assert passwords.needs_rehash(stronger.hash("correct horse"))
    assert not passwords.needs_rehash(passwords.hash("correct horse"))
    assert passwords.verify(passwords.dummy_hash, "x") is False
