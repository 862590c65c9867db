"""Session tokens and password hashing of the users service."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common import jwks
from users.adapters.tokens import Argon2Passwords, JwtIssuer


@pytest.fixture(scope="module")
def keys() -> tuple[str, Ed25519PrivateKey]:
    private = Ed25519PrivateKey.generate()
    return jwks.private_pem(private).decode(), private


def decode(token: str, private: Ed25519PrivateKey, **options: bool) -> dict:
    return jwt.decode(token, private.public_key(), algorithms=["EdDSA"],
                      issuer="murmur-users", audience="murmur-api", options=options)


def test_a_token_verifies_with_the_public_key_and_carries_the_claims(keys):
    pem, private = keys
    session = JwtIssuer(pem, 600, clock=lambda: 1_700_000_000).issue(1234567890123, "alice")
    claims = decode(session.access_token, private, verify_exp=False)
    assert claims == {"iss": "murmur-users", "aud": "murmur-api", "sub": "1234567890123",
                      "username": "alice", "iat": 1_700_000_000, "exp": 1_700_000_600}
    assert (session.expires_in, session.token_type) == (600, "Bearer")
    header = jwt.get_unverified_header(session.access_token)
    assert header["alg"] == "EdDSA"
    assert header["kid"] == jwks.thumbprint(private.public_key())


def test_the_issuer_and_audience_are_the_configured_ones(keys):
    pem, private = keys
    session = JwtIssuer(pem, 600, issuer="https://murmur.example/", audience="other").issue(1, "a")
    claims = jwt.decode(session.access_token, private.public_key(), algorithms=["EdDSA"],
                        issuer="https://murmur.example/", audience="other")
    assert (claims["iss"], claims["aud"]) == ("https://murmur.example/", "other")


def test_an_expired_token_is_refused_by_a_verifier(keys):
    pem, private = keys
    session = JwtIssuer(pem, 60, clock=lambda: 1_000).issue(1, "alice")
    with pytest.raises(jwt.ExpiredSignatureError):
        decode(session.access_token, private)


def test_an_issuer_without_a_key_fails_at_start_not_at_first_login(tmp_path):
    with pytest.raises(ValueError):
        JwtIssuer("", 60)
    with pytest.raises(ValueError, match="MURMUR_JWT_PRIVATE_KEY"):
        JwtIssuer(jwks.WatchedFile(tmp_path / "private.pem", jwks.signing_key).get, 60)
    other_kind = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    with pytest.raises(ValueError, match="not an Ed25519 private key"):
        JwtIssuer(other_kind, 60)


def test_a_rotated_key_file_signs_the_next_token_without_a_restart(tmp_path):
    path = tmp_path / "private.pem"
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    path.write_bytes(jwks.private_pem(old))
    issuer = JwtIssuer(jwks.WatchedFile(path, jwks.signing_key, interval=0).get, 60)
    before = issuer.issue(1, "alice").access_token
    replacement = tmp_path / "private.pem.new"
    replacement.write_bytes(jwks.private_pem(new))
    replacement.replace(path)  # as rotation writes it: whole, in one step
    after = issuer.issue(1, "alice").access_token
    assert jwt.get_unverified_header(before)["kid"] == jwks.thumbprint(old.public_key())
    assert jwt.get_unverified_header(after)["kid"] == jwks.thumbprint(new.public_key())
    decode(after, new)


def test_a_key_file_broken_after_the_start_leaves_the_key_read_before_signing(tmp_path):
    path = tmp_path / "private.pem"
    key = Ed25519PrivateKey.generate()
    path.write_bytes(jwks.private_pem(key))
    issuer = JwtIssuer(jwks.WatchedFile(path, jwks.signing_key, interval=0).get, 60)
    path.write_text("half a key")
    decode(issuer.issue(1, "alice").access_token, key)
    path.unlink()
    decode(issuer.issue(1, "alice").access_token, key)


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
