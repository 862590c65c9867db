"""The local platform's signing keys, in a scratch secrets folder: each profile's key files
made once (from the pair all profiles shared before, if there is one), a rotation that
publishes the new key before it signs, and older keys kept exactly as long as tokens they
signed may be valid."""

from __future__ import annotations

import json
import os
import stat
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common import config, jwks
from stackctl import keys

LIFETIME = 3605.0


@pytest.fixture()
def secrets(monkeypatch, tmp_path):
    folder = tmp_path / "secrets"
    monkeypatch.setenv("MURMUR_SECRETS_DIR", str(folder))
    return folder


def published(profile: str) -> list[str]:
    _, public_path = keys.key_files(profile)
    return [k["kid"] for k in json.loads(public_path.read_text())["keys"]]


def signing(profile: str) -> str:
    private_path, _ = keys.key_files(profile)
    return jwks.signing_key(private_path.read_bytes()).kid


def age(profile: str, seconds: float) -> None:
    """Pretend the profile's signing key started signing `seconds` ago."""
    private_path, _ = keys.key_files(profile)
    then = time.time() - seconds
    os.utime(private_path, (then, then))


def test_each_profile_gets_its_own_key_files_readable_by_their_owner_only(secrets):
    keys.ensure_key_sets()
    assert signing("dev") != signing("test")
    for profile in config.PROFILES:
        private_path, public_path = keys.key_files(profile)
        assert published(profile) == [signing(profile)]
        assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
        assert stat.S_IMODE(private_path.parent.stat().st_mode) == 0o700
        assert "d" not in json.loads(public_path.read_text())["keys"][0]  # no private part
    before = {p: keys.key_files(p)[0].read_bytes() for p in config.PROFILES}
    keys.ensure_key_sets()
    assert {p: keys.key_files(p)[0].read_bytes() for p in config.PROFILES} == before


def test_the_pair_every_profile_shared_before_keeps_signing_and_then_goes(secrets):
    shared = Ed25519PrivateKey.generate()
    secrets.mkdir(mode=0o700)
    (secrets / "jwt-private.pem").write_bytes(jwks.private_pem(shared))
    (secrets / "jwt-public.pem").write_text("the old public key")
    keys.ensure_key_sets()
    kid = jwks.thumbprint(shared.public_key())
    assert signing("dev") == signing("test") == kid  # sessions opened before stay valid
    assert published("dev") == published("test") == [kid]
    assert not (secrets / "jwt-private.pem").exists()
    assert not (secrets / "jwt-public.pem").exists()


def test_a_rotation_publishes_the_new_key_before_it_signs(secrets):
    keys.ensure_key_set("test")
    old = signing("test")
    rotation = keys.publish_new_key("test", LIFETIME)
    assert (rotation.previous, signing("test")) == (old, old)  # not signing yet
    assert published("test") == [rotation.kid, old]
    keys.sign_with_new_key("test", rotation)
    assert signing("test") == rotation.kid
    assert published("test") == [rotation.kid, old]
    assert stat.S_IMODE(keys.key_files("test")[0].stat().st_mode) == 0o600


def test_a_rotation_touches_no_other_profile(secrets):
    keys.ensure_key_sets()
    dev = (keys.key_files("dev")[0].read_bytes(), keys.key_files("dev")[1].read_bytes())
    keys.sign_with_new_key("test", keys.publish_new_key("test", LIFETIME))
    assert (keys.key_files("dev")[0].read_bytes(), keys.key_files("dev")[1].read_bytes()) == dev


def test_older_keys_stay_while_their_tokens_may_be_valid_and_go_after(secrets):
    keys.ensure_key_set("test")
    first = signing("test")
    second = keys.publish_new_key("test", LIFETIME)
    keys.sign_with_new_key("test", second)
    # Rotating again at once: tokens `first` signed until a moment ago are still valid.
    third = keys.publish_new_key("test", LIFETIME)
    assert (third.kept, third.dropped) == ((first,), ())
    keys.sign_with_new_key("test", third)
    assert published("test") == [third.kid, second.kid, first]
    # A token's lifetime after `third` began signing, every key before it is done with.
    age("test", LIFETIME + 1)
    fourth = keys.publish_new_key("test", LIFETIME)
    assert (fourth.kept, set(fourth.dropped)) == ((), {second.kid, first})
    assert published("test") == [fourth.kid, third.kid]


def test_a_key_published_but_never_signing_is_dropped_like_any_older_key(secrets):
    keys.ensure_key_set("test")
    abandoned = keys.publish_new_key("test", LIFETIME)  # the rotation stopped here
    age("test", LIFETIME + 1)
    rotation = keys.publish_new_key("test", LIFETIME)
    assert rotation.dropped == (abandoned.kid,)
    assert published("test") == [rotation.kid, signing("test")]


def test_the_command_signs_with_the_new_key_only_once_every_running_gateway_serves_it(
        secrets, monkeypatch, capsys):
    keys.ensure_key_sets()
    old = signing("test")
    looks: list[tuple[int, str]] = []

    def served(port: int) -> set[str]:
        # What the gateway on `port` serves: the file, from its second look on.
        looks.append((port, signing("test")))
        return set(published("test")) if sum(p == port for p, _ in looks) > 1 else {old}

    monkeypatch.setattr(keys, "running_gateways",
                        lambda profile: [("test-gateway-1", 18011), ("test-gateway-2", 18012)])
    monkeypatch.setattr(keys, "served_kids", served)
    keys.cmd_rotate_keys("test")
    new = signing("test")
    assert new != old and published("test")[:2] == [new, old]
    # Each gateway was asked until it served the new key, all while the old one signed.
    assert looks == [(18011, old), (18011, old), (18012, old), (18012, old)]
    assert f"users signs with key {new}" in capsys.readouterr().out


def test_the_command_never_signs_with_a_key_a_gateway_does_not_serve(secrets, monkeypatch):
    keys.ensure_key_sets()
    old = signing("test")
    monkeypatch.setattr(keys, "SERVED_TIMEOUT", 0.3)
    monkeypatch.setattr(keys, "running_gateways", lambda profile: [("test-gateway-1", 18011)])
    monkeypatch.setattr(keys, "served_kids", lambda port: {old})
    with pytest.raises(SystemExit, match="test-gateway-1 serving key"):
        keys.cmd_rotate_keys("test")
    assert signing("test") == old
