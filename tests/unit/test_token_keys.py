"""Token-signing keys and their rotation: key ids are RFC 7638 thumbprints, the gateway
accepts a token only from the issuer, for the audience and by a key of its JWK Set (the
current key and the ones before it), follows the key file as rotation changes it, and
publishes the public keys, and nothing else, at /api/v1/.well-known/jwks.json."""

from __future__ import annotations

import json
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common import jwks
from gateway.adapters.tokens import TokenVerifier
from gateway.config import DownstreamConfig, GatewayConfig
from gateway.domain.errors import Unauthenticated
from gateway.entrypoints.app import create_app
from unit._gateway_tokens import PRIVATE, PUBLIC, key_pair, token


def key_set_text(*keys: Ed25519PrivateKey) -> str:
    return json.dumps(jwks.key_set([k.public_key() for k in keys]))


def write_atomically(path: Path, text: str) -> None:
    """As rotation writes a key file: whole, in one step."""
    staged = path.with_name(path.name + ".new")
    staged.write_text(text)
    staged.replace(path)


def rejected(verifier: TokenVerifier, access_token: str) -> str:
    with pytest.raises(Unauthenticated) as caught:
        verifier.verify(access_token)
    return str(caught.value)


# ------------------------------------------------------------------------------ the keys


def test_the_key_id_is_the_rfc_7638_thumbprint():
    # RFC 8037, appendix A.3: the thumbprint of the example Ed25519 key.
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
           "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"}
    assert jwks.thumbprint(jwks.public_key(jwk)) == jwk["kid"]


def test_a_published_key_holds_the_public_members_only():
    key = Ed25519PrivateKey.generate()
    (jwk,) = jwks.key_set([key.public_key(), key.public_key()])["keys"]
    assert set(jwk) == {"kty", "crv", "x", "kid", "use", "alg"}
    assert (jwk["kty"], jwk["crv"], jwk["use"], jwk["alg"]) == ("OKP", "Ed25519", "sig", "EdDSA")
    assert jwks.public_key(jwk).public_bytes_raw() == key.public_key().public_bytes_raw()


@pytest.mark.parametrize("text", [
    "not json", "{}", '{"keys": []}', '{"keys": [{"kty": "RSA", "n": "x", "e": "AQAB"}]}',
    json.dumps({"keys": [{**jwks.public_jwk(PRIVATE.public_key()), "kid": "renamed"}]}),
    json.dumps({"keys": [{**jwks.public_jwk(PRIVATE.public_key()), "alg": "ES256"}]}),
    json.dumps({"keys": [{**jwks.public_jwk(PRIVATE.public_key()), "x": "c2hvcnQ"}]}),
], ids=["not-json", "no-keys", "empty", "rsa", "kid-not-thumbprint", "other-alg", "short-x"])
def test_a_key_set_that_is_not_one_of_ed25519_signing_keys_is_refused(text):
    with pytest.raises(ValueError):
        jwks.read_key_set(text)


# -------------------------------------------------------------------------- the claims


def test_a_token_needs_the_issuer_the_audience_and_a_known_key_id():
    verifier = TokenVerifier(PUBLIC)
    assert verifier.verify(token(sub="42")).user_id == "42"
    assert "issuer" in rejected(verifier, token(iss="someone-else"))
    assert "not meant for this API" in rejected(verifier, token(aud="another-api"))
    assert "invalid" in rejected(verifier, token(iss=None))
    assert "invalid" in rejected(verifier, token(aud=None))
    assert "no signing key" in rejected(verifier, token(kid=None))
    assert "unknown key" in rejected(verifier, token(kid="not-a-key-of-ours"))


def test_the_issuer_and_audience_are_the_configured_ones():
    verifier = TokenVerifier(PUBLIC, issuer="https://id.example/", audience="murmur")
    assert verifier.verify(token(iss="https://id.example/", aud="murmur")).user_id == "5"
    assert verifier.verify(token(iss="https://id.example/", aud=["x", "murmur"])).user_id == "5"
    rejected(verifier, token())


def test_a_token_signed_by_another_key_under_a_known_key_id_is_rejected():
    other, _ = key_pair()
    rejected(TokenVerifier(PUBLIC), token(other, kid=jwks.thumbprint(PRIVATE.public_key())))


def test_only_eddsa_is_accepted_whatever_the_header_says():
    kid = jwks.thumbprint(PRIVATE.public_key())
    claims = jwt.decode(token(), options={"verify_signature": False})
    # The public key's bytes used as an HMAC secret: the classic algorithm confusion.
    hmac = jwt.encode(claims, PRIVATE.public_key().public_bytes_raw(), algorithm="HS256",
                      headers={"kid": kid})
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": kid})
    verifier = TokenVerifier(PUBLIC)
    rejected(verifier, hmac)
    rejected(verifier, unsigned)


# ---------------------------------------------------------------------------- rotation


def test_the_previous_key_verifies_until_it_leaves_the_key_set(tmp_path):
    previous, current = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    path = tmp_path / "jwks.json"
    path.write_text(key_set_text(current, previous))
    verifier = TokenVerifier(jwks.WatchedFile(path, jwks.read_key_set, interval=0))
    old, new = token(previous), token(current)
    assert verifier.verify(old).user_id == verifier.verify(new).user_id == "5"
    write_atomically(path, key_set_text(current))  # retired: its tokens have expired
    assert "unknown key" in rejected(verifier, old)
    assert verifier.verify(new).user_id == "5"


def test_a_key_published_a_moment_ago_verifies_at_once(tmp_path):
    current, upcoming = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    path = tmp_path / "jwks.json"
    path.write_text(key_set_text(current))
    now = [1000.0]
    # A long check interval on a clock that stands still: only the unknown kid looks.
    verifier = TokenVerifier(jwks.WatchedFile(path, jwks.read_key_set, interval=3600,
                                              clock=lambda: now[0]))
    verifier.verify(token(current))
    write_atomically(path, key_set_text(upcoming, current))
    assert verifier.verify(token(upcoming)).user_id == "5"
    assert [k["kid"] for k in verifier.key_set()["keys"]] == [
        jwks.thumbprint(upcoming.public_key()), jwks.thumbprint(current.public_key())]


def test_a_key_file_is_looked_at_no_more_than_every_interval(tmp_path):
    first, second = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    path = tmp_path / "jwks.json"
    path.write_text(key_set_text(first))
    now = [1000.0]
    keys = jwks.WatchedFile(path, jwks.read_key_set, interval=5, clock=lambda: now[0])
    assert list(keys.get()) == [jwks.thumbprint(first.public_key())]
    write_atomically(path, key_set_text(second))
    now[0] += 4.9
    assert list(keys.get()) == [jwks.thumbprint(first.public_key())]
    now[0] += 0.2
    assert list(keys.get()) == [jwks.thumbprint(second.public_key())]


def test_a_broken_or_missing_key_file_leaves_the_keys_read_before(tmp_path):
    path = tmp_path / "jwks.json"
    path.write_text(PUBLIC)
    verifier = TokenVerifier(jwks.WatchedFile(path, jwks.read_key_set, interval=0))
    verifier.verify(token())
    write_atomically(path, '{"keys": [')
    assert verifier.verify(token()).user_id == "5"
    path.unlink()
    assert verifier.verify(token()).user_id == "5"


def test_a_verifier_without_its_key_file_is_not_ready(tmp_path):
    verifier = TokenVerifier(jwks.WatchedFile(tmp_path / "jwks.json", jwks.read_key_set))
    with pytest.raises(FileNotFoundError):
        verifier.key_set()


# -------------------------------------------------------------------------- publishing


def app_with(keys: str, **settings):
    down = DownstreamConfig("x", "http://127.0.0.1:9", 0.1, 0.1, 1)
    return create_app(GatewayConfig(users=down, users_sign_in=down, timeline=down,
                                    jwt_public_keys=keys, jwt_public_keys_file=Path("/unused"),
                                    jwt_leeway=0, retry_after=1, **settings))


def test_the_key_set_is_published_for_anyone_with_a_cache_lifetime():
    previous, current = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    client = app_with(key_set_text(current, previous), jwks_max_age=120).test_client()
    resp = client.get("/api/v1/.well-known/jwks.json")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    assert resp.headers["Cache-Control"] == "public, max-age=120"
    keys = resp.get_json()["keys"]
    assert [k["kid"] for k in keys] == [jwks.thumbprint(current.public_key()),
                                        jwks.thumbprint(previous.public_key())]
    assert all(set(k) == {"kty", "crv", "x", "kid", "use", "alg"} for k in keys)
    doc = client.get("/api/v1/openapi.json").get_json()
    answer = doc["paths"]["/api/v1/.well-known/jwks.json"]["get"]["responses"]["200"]
    assert "Cache-Control" in answer["headers"]
    assert answer["content"]["application/json"]["schema"]["$ref"].endswith("/JsonWebKeySet")
    assert "security" not in doc["paths"]["/api/v1/.well-known/jwks.json"]["get"]


def test_a_token_for_another_audience_is_answered_401_problem_json():
    client = app_with(PUBLIC).test_client()
    resp = client.get("/api/v1/timeline",
                      headers={"Authorization": f"Bearer {token(aud='another-api')}"})
    assert resp.status_code == 401 and resp.mimetype == "application/problem+json"
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="murmur"'
    assert "not meant for this API" in resp.get_json()["detail"]

