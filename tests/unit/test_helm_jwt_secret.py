"""The chart's JWT Secret as its secrets hook makes it and its rotation steps change it
(helm/murmur/files/generate-secrets.py, which runs on its own): the layout and key ids
the services read (common.jwks), an older release's Secret completed, and a rotation that
publishes the new key before it signs."""

from __future__ import annotations

import base64
import importlib.util
import json
from pathlib import Path

import pytest

from common import jwks

SCRIPT = Path(__file__).resolve().parents[2] / "helm/murmur/files/generate-secrets.py"
KEEP = 4205.0


@pytest.fixture(scope="module")
def hook():
    spec = importlib.util.spec_from_file_location("generate_secrets", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def as_secret(data: dict[str, bytes], **annotations: str) -> dict:
    """A Secret as `kubectl get -o json` prints it."""
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "murmur-jwt", "resourceVersion": "7", "annotations": annotations},
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}


def value(secret: dict, key: str) -> bytes:
    return base64.b64decode(secret["data"][key])


def signing_kid(secret: dict) -> str:
    return jwks.signing_key(value(secret, "jwt-private.pem")).kid


def published(secret: dict) -> list[str]:
    return list(jwks.read_key_set(value(secret, "jwt-jwks.json").decode()))


def test_a_generated_secret_is_what_users_and_the_gateway_read(hook):
    secret = as_secret(hook.jwt_key_pair())
    assert set(secret["data"]) == {"jwt-private.pem", "jwt-jwks.json"}
    assert published(secret) == [signing_kid(secret)]  # the same key ids as common.jwks
    keys = json.loads(value(secret, "jwt-jwks.json"))["keys"]
    assert set(keys[0]) == {"kty", "crv", "x", "kid", "use", "alg"}


class FakeApi:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict]] = []

    def secret_path(self, name: str = "") -> str:
        return f"/api/v1/namespaces/murmur/secrets/{name}"

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        self.calls.append((method, path, body))
        return 200, body


def test_the_key_pair_of_an_older_release_gets_its_key_set_and_keeps_signing(hook):
    pair = hook.jwt_key_pair()
    older = as_secret({"jwt-private.pem": pair["jwt-private.pem"],
                       "jwt-public.pem": b"-----BEGIN PUBLIC KEY-----"})
    api = FakeApi()
    completed = hook.complete_jwt_secret(api, "murmur-jwt", older)
    ((method, path, body),) = api.calls
    assert (method, path) == ("PUT", "/api/v1/namespaces/murmur/secrets/murmur-jwt")
    assert body["metadata"]["resourceVersion"] == "7"  # refused if it changed meanwhile
    assert value(completed, "jwt-private.pem") == pair["jwt-private.pem"]
    assert published(completed) == [signing_kid(completed)]
    assert hook.complete_jwt_secret(api, "murmur-jwt", completed) is completed
    assert len(api.calls) == 1  # a complete Secret is left as it is


def test_a_rotation_publishes_the_new_key_then_signs_with_it(hook):
    secret = as_secret(hook.jwt_key_pair())
    first = signing_kid(secret)
    secret = hook.rotate_jwt(secret, "publish", KEEP, now=1_000_000)
    assert signing_kid(secret) == first  # the gateway learns the key before it signs
    upcoming = jwks.signing_key(value(secret, "jwt-next-private.pem")).kid
    assert published(secret) == [upcoming, first]
    with pytest.raises(SystemExit, match="published already"):
        hook.rotate_jwt(secret, "publish", KEEP, now=1_000_001)
    secret = hook.rotate_jwt(secret, "sign", KEEP, now=1_000_100)
    assert signing_kid(secret) == upcoming and "jwt-next-private.pem" not in secret["data"]
    assert secret["metadata"]["annotations"]["murmur/jwt-rotated-at"] == "1000100"
    with pytest.raises(SystemExit, match="publish` first"):
        hook.rotate_jwt(secret, "sign", KEEP, now=1_000_200)


def test_older_keys_stay_for_a_token_lifetime_after_the_signing_key_began(hook):
    secret = as_secret(hook.jwt_key_pair())
    first = signing_kid(secret)
    secret = hook.rotate_jwt(hook.rotate_jwt(secret, "publish", KEEP, 1_000_000), "sign", KEEP,
                             1_000_000)
    second = signing_kid(secret)
    soon = hook.rotate_jwt(json.loads(json.dumps(secret)), "publish", KEEP, 1_000_000 + 60)
    assert published(soon)[1:] == [second, first]  # first's tokens may still be valid
    later = hook.rotate_jwt(secret, "publish", KEEP, 1_000_000 + KEEP)
    assert published(later)[1:] == [second]
