"""Each profile's token-signing keys in the secrets folder, and their rotation.

Per profile, in <secrets>/jwt/<profile>/ (common.config.jwt_keys_dir):
  private.pem  the key users signs with (PKCS#8 PEM, readable by its owner only)
  jwks.json    the public keys the gateways accept, newest first (a JWK Set, RFC 7517)

Either file is replaced whole (written aside, then renamed over the old one), so a process
never reads half of one; users and the gateways look at their file's modification time at
most every second and read it again when it changed, so a rotation needs no restart.

`rotate-keys` keeps the order that makes a rotation invisible to clients: the new public
key goes to the gateways first, and only once each running gateway serves it does users
sign with the new private key (a gateway worker that has not looked at the file since
looks at once on meeting the new key's id). The keys before stay in the set for as long
as tokens they signed may still be valid (see `token_lifetime`).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from common import config, jwks

from .layout import HOST, prefix
from .readiness import poll
from .supervisord import process_info, supervisor_running

# Before keys rotated, one pair in the secrets folder served every profile.
LEGACY_FILES = ("jwt-private.pem", "jwt-public.pem")
# The gateway processes of a profile, with their key in common.config.SERVICE_PORTS.
GATEWAYS = (("gateway-1", "gateway"), ("gateway-2", "gateway-2"))
SERVED_TIMEOUT = 30.0


def key_files(profile: str) -> tuple[Path, Path]:
    """The profile's private key file and public key set file."""
    folder = config.jwt_keys_dir(profile)
    return folder / "private.pem", folder / "jwks.json"


def make_private_folder(folder: Path) -> None:
    """`folder` and the folders above it that are missing, for their owner only."""
    for missing in [f for f in (*reversed(folder.parents), folder) if not f.exists()]:
        missing.mkdir(mode=0o700, exist_ok=True)


def write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Replace `path` by a file holding `data` in one step: a reader finds the old file or
    the new one, never a part of either."""
    make_private_folder(path.parent)
    staged = path.with_name(f".{path.name}.{os.getpid()}.new")
    try:
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(staged, mode)  # whatever the umask took away
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)


def key_set_file(publics: Iterable[Ed25519PublicKey]) -> bytes:
    """The text of a key set file holding these public keys, in this order."""
    return (json.dumps(jwks.key_set(publics), indent=2) + "\n").encode()


@contextmanager
def locked(profile: str) -> Iterator[None]:
    """One change to a profile's keys at a time (two rotations at once would lose a key)."""
    folder = config.jwt_keys_dir(profile)
    make_private_folder(folder)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure_key_set(profile: str) -> None:
    """The profile's key files, made if missing: from the pair every profile shared before
    (its sessions stay valid), else with a new key."""
    private_path, public_path = key_files(profile)
    if private_path.exists() and public_path.exists():
        return
    with locked(profile):
        legacy = config.secrets_dir() / LEGACY_FILES[0]
        source = private_path if private_path.exists() else legacy
        key = (jwks.signing_key(source.read_bytes()).key if source.exists()
               else Ed25519PrivateKey.generate())
        published = (jwks.read_key_set(public_path.read_text()) if public_path.exists()
                     else {})
        # The verifiers' file first: a key never signs before the gateways can know it.
        if jwks.thumbprint(key.public_key()) not in published:
            write_atomically(public_path, key_set_file([key.public_key(),
                                                        *published.values()]), 0o644)
        if not private_path.exists():
            write_atomically(private_path, jwks.private_pem(key), 0o600)


def ensure_key_sets() -> None:
    """Every profile's key files (see `ensure_key_set`); the shared pair of old goes."""
    for profile in config.PROFILES:
        ensure_key_set(profile)
    for name in LEGACY_FILES:
        (config.secrets_dir() / name).unlink(missing_ok=True)


@dataclass(frozen=True)
class Rotation:
    """A new key published to the verifiers, not signing yet."""

    key: Ed25519PrivateKey
    previous: str  # the kid of the key signing until `sign_with_new_key`
    kept: tuple[str, ...]  # older kids whose tokens may still be valid
    dropped: tuple[str, ...]  # older kids whose tokens have all expired

    @property
    def kid(self) -> str:
        """The new key's id."""
        return jwks.thumbprint(self.key.public_key())


def publish_new_key(profile: str, token_lifetime: float, now: float | None = None) -> Rotation:
    """Step 1: a new key, added to the key set the gateways verify with (newest first).

    Every key in the set but the signing one stopped signing when the signing key started
    (its file's modification time), so the tokens they signed have all expired
    `token_lifetime` seconds after that; until then they stay in the set. The key files
    must exist (`ensure_key_set`).
    """
    private_path, public_path = key_files(profile)
    signing = jwks.signing_key(private_path.read_bytes())
    published = jwks.read_key_set(public_path.read_text())
    older = {kid: key for kid, key in published.items() if kid != signing.kid}
    signing_for = (time.time() if now is None else now) - private_path.stat().st_mtime
    kept = {} if signing_for >= token_lifetime else older
    new = Ed25519PrivateKey.generate()
    write_atomically(public_path, key_set_file(
        [new.public_key(), signing.key.public_key(), *kept.values()]), 0o644)
    return Rotation(new, signing.kid, tuple(kept), tuple(k for k in older if k not in kept))


def sign_with_new_key(profile: str, rotation: Rotation) -> None:
    """Step 2: users signs with the new key from its next look at the file on."""
    private_path, _ = key_files(profile)
    write_atomically(private_path, jwks.private_pem(rotation.key), 0o600)


def token_lifetime() -> float:
    """How long after a new key's file is written the tokens of the key before may still be
    valid: users' token lifetime, the gateways' leeway, and the time users may take to look
    at its key file again (the settings as this environment sets them, like the services
    started from it)."""
    from gateway.config import GatewayConfig
    from users.config import UsersConfig

    users, gateway = config.settings(UsersConfig), config.settings(GatewayConfig)
    return (float(users["jwt_expires_in"].read()) + float(gateway["jwt_leeway"].read())
            + float(users["jwt_key_check_interval"].read()))


def served_kids(port: int) -> set[str]:
    """The key ids a gateway publishes at its JWKS endpoint (none if it does not answer)."""
    url = f"http://{HOST}:{port}/api/v1/.well-known/jwks.json"
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return {key.get("kid") for key in json.load(resp).get("keys", [])}
    except (OSError, ValueError):
        return set()


def running_gateways(profile: str) -> list[tuple[str, int]]:
    """The profile's gateway processes that run, with their ports."""
    if not supervisor_running():
        return []
    names = [(prefix(profile) + name, config.PROFILES[profile].port_of(port_key))
             for name, port_key in GATEWAYS]
    return [(name, port) for name, port in names
            if process_info(name)["statename"] == "RUNNING"]


def cmd_rotate_keys(profile: str) -> None:
    """Rotate the profile's signing key with no request failing (see the module's doc)."""
    t0 = time.monotonic()
    lifetime = token_lifetime()
    ensure_key_set(profile)
    with locked(profile):
        rotation = publish_new_key(profile, lifetime)
        print(f"published key {rotation.kid} to the {profile} profile's gateways", flush=True)
        gateways = running_gateways(profile)
        for name, port in gateways:
            poll(lambda: rotation.kid in served_kids(port), SERVED_TIMEOUT,
                 f"{name} serving key {rotation.kid}")
            print(f"  {name} serves it", flush=True)
        if not gateways:
            print("  no gateway of the profile runs: each reads the key set when it starts")
        sign_with_new_key(profile, rotation)
    print(f"users signs with key {rotation.kid} from now on; key {rotation.previous} still "
          f"verifies the tokens it signed", flush=True)
    for kid in rotation.kept:
        print(f"  kept older key {kid}: tokens it signed may still be valid")
    for kid in rotation.dropped:
        print(f"  dropped key {kid}: every token it signed expired ({lifetime:.0f}s)")
    print(f"rotated the {profile} profile's signing key in {time.monotonic() - t0:.1f}s")
