"""Create the release's Secrets that are missing; never change one that exists.

Runs as the chart's pre-install/pre-upgrade hook Job, in the users image (Python 3 and
`cryptography`), and talks to the Kubernetes API with the standard library and the pod's
service-account token. Generated once, the JWT key pair, the page cursor key, the Postgres
password and the Kafka cluster id survive every upgrade; a Secret deleted on purpose is made anew by the
next `helm upgrade` (rotation).

Not named secrets.py: the script's folder comes first on sys.path, and the file would
shadow the standard library's `secrets` module.

It also rotates the JWT signing key without ending a session (README.md, "Secrets"), one
step at a time, on the Secret as `kubectl get -o json` prints it:
  kubectl get secret <fullname>-jwt -o json \
    | python3 generate-secrets.py rotate-jwt publish|sign [--keep SECONDS] \
    | kubectl replace -f -

Environment:
  MURMUR_SECRETS        JSON list of {"name", "generate", "keys"}; `generate` is "jwt",
                        "key", "password", "kafka-cluster-id", or "" for a Secret the user
                        supplies (existingSecret), which is only checked
  MURMUR_SECRET_LABELS  JSON object: labels of the Secrets it creates
  MURMUR_RELEASE        the Helm release, recorded in an annotation
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import ssl
import sys
import time
import urllib.error
import urllib.request
import uuid

SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
DEADLINE_SECONDS = 120  # for the API server to answer at all (it may be busy at install)


def log(message: str) -> None:
    print(f"secrets: {message}", flush=True)


# ---------------------------------------------------------------------------- generators


# The JWT Secret: the key users signs with, and the public keys the gateway accepts (the
# current one and those whose tokens may still be valid), newest first, as a JWK Set
# (RFC 7517) whose key ids are RFC 7638 thumbprints: the layout and ids of
# services/common/jwks.py, in the few lines this script needs to run on its own.
JWT_PRIVATE, JWT_KEYS, JWT_NEXT = "jwt-private.pem", "jwt-jwks.json", "jwt-next-private.pem"
JWT_ROTATED_AT = "murmur/jwt-rotated-at"  # annotation: when the signing key began signing
# How long older keys stay after the `sign` step: users' token lifetime (3600 s), the
# gateway's leeway (5 s), and ten minutes for users' rollout, whose old pods sign with the
# old key until they are replaced.
JWT_KEEP_SECONDS = 3600 + 5 + 600


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(public) -> dict[str, str]:
    """An Ed25519 public key as a JWK, named by its RFC 7638 thumbprint."""
    from cryptography.hazmat.primitives import serialization

    x = _b64url(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
    kid = _b64url(hashlib.sha256(canonical.encode()).digest())
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig", "alg": "EdDSA"}


def jwt_key_set(jwks: list[dict[str, str]]) -> bytes:
    """The text of a JWK Set of these keys (each once, in this order)."""
    unique = {jwk["kid"]: jwk for jwk in jwks}
    return (json.dumps({"keys": list(unique.values())}, indent=2) + "\n").encode()


def new_jwt_key():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate()


def jwt_private_pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def jwt_private_key(pem: bytes):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SystemExit("secrets: the JWT Secret's private key is not an Ed25519 key")
    return key


def jwt_key_pair() -> dict[str, bytes]:
    """A signing key and the key set of its public key: users signs session tokens, the
    gateway only verifies them."""
    key = new_jwt_key()
    return {JWT_PRIVATE: jwt_private_pem(key),
            JWT_KEYS: jwt_key_set([public_jwk(key.public_key())])}


def complete_jwt_secret(api: "Api", name: str, found: dict) -> dict:
    """A JWT Secret made before keys rotated (a key pair, no key set) gets the key set of
    its private key, so that the tokens it signed stay valid; the Secret as it is now."""
    data = found.get("data") or {}
    if JWT_KEYS in data or JWT_PRIVATE not in data:
        return found
    key = jwt_private_key(base64.b64decode(data[JWT_PRIVATE]))
    keys = jwt_key_set([public_jwk(key.public_key())])
    updated = {**found, "data": {**data, JWT_KEYS: base64.b64encode(keys).decode()}}
    status, stored = api.call("PUT", api.secret_path(name), updated)
    if status != 200:
        raise SystemExit(f"secrets: adding {JWT_KEYS} to Secret {name} failed: HTTP {status} "
                         f"{stored.get('message')}")
    log(f"{name}: added {JWT_KEYS} (the key set of its key pair)")
    return stored


def rotate_jwt(secret: dict, step: str, keep: float, now: float) -> dict:
    """The JWT Secret after one step of a key rotation.

    publish: a new key (kept aside as jwt-next-private.pem) joins the key set, newest
      first; roll the gateway out so that it verifies with it.
    sign: the new key becomes the one users signs with; roll users out.
    Keys older than the signing one stay in the set until `keep` seconds after the signing
    one began (every token they signed has expired by then), and go at the next publish.
    """
    data = secret.get("data") or {}
    annotations = secret.setdefault("metadata", {}).setdefault("annotations", {})
    if JWT_PRIVATE not in data or JWT_KEYS not in data:
        raise SystemExit(f"secrets: the Secret holds no {JWT_PRIVATE} and {JWT_KEYS}; run "
                         "`helm upgrade` once so that its hook completes it")
    signing = public_jwk(jwt_private_key(base64.b64decode(data[JWT_PRIVATE])).public_key())
    keys = json.loads(base64.b64decode(data[JWT_KEYS]))["keys"]
    if step == "publish":
        if JWT_NEXT in data:
            raise SystemExit("secrets: a new key is published already; run `rotate-jwt sign`")
        older = [k for k in keys if k.get("kid") != signing["kid"]]
        if now - float(annotations.get(JWT_ROTATED_AT, "0")) >= keep:
            older = []
        new = new_jwt_key()
        data[JWT_NEXT] = base64.b64encode(jwt_private_pem(new)).decode()
        data[JWT_KEYS] = base64.b64encode(
            jwt_key_set([public_jwk(new.public_key()), signing, *older])).decode()
    elif step == "sign":
        if JWT_NEXT not in data:
            raise SystemExit("secrets: no new key is published; run `rotate-jwt publish` first")
        upcoming = public_jwk(jwt_private_key(base64.b64decode(data[JWT_NEXT])).public_key())
        if upcoming["kid"] not in {k.get("kid") for k in keys}:
            raise SystemExit("secrets: the new key is not in the key set; publish again")
        data[JWT_PRIVATE] = data.pop(JWT_NEXT)
        annotations[JWT_ROTATED_AT] = str(int(now))
    else:
        raise SystemExit(f"secrets: unknown step {step!r}; use publish or sign")
    secret["data"] = data
    return secret


def rotate_jwt_command(argv: list[str]) -> int:
    """`rotate-jwt publish|sign [--keep SECONDS]`: the Secret's JSON in, the new one out."""
    import argparse

    parser = argparse.ArgumentParser(prog="generate-secrets.py rotate-jwt")
    parser.add_argument("step", choices=["publish", "sign"])
    parser.add_argument("--keep", type=float, default=JWT_KEEP_SECONDS,
                        help="seconds after the sign step that older keys stay: users' "
                             "token lifetime, the gateway's leeway and users' rollout "
                             "(default %(default)s)")
    args = parser.parse_args(argv)
    secret = rotate_jwt(json.load(sys.stdin), args.step, args.keep, time.time())
    json.dump(secret, sys.stdout, indent=2)
    print()
    return 0


def password(key: str) -> dict[str, bytes]:
    """A random password (URL-safe, so it needs no quoting in a libpq connection string)."""
    return {key: secrets.token_urlsafe(32).encode()}


def random_key(key: str) -> dict[str, bytes]:
    """A secret key of 256 random bits, URL-safe text (the page cursor key, which users
    and timeline derive their cursor cipher's key from)."""
    return {key: secrets.token_urlsafe(32).encode()}


def kafka_cluster_id(key: str) -> dict[str, bytes]:
    """A KRaft cluster id: 16 random bytes in URL-safe base64 without padding (22 chars),
    the form `kafka-storage.sh random-uuid` prints. Like Kafka's own Uuid.randomUuid(), it
    never starts with "-", which a command line would take for an option."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=")
        if not cluster_id.startswith(b"-"):
            return {key: cluster_id}


def generate(kind: str, keys: list[str]) -> dict[str, bytes]:
    if kind == "jwt":
        return jwt_key_pair()
    if kind == "password":
        return password(keys[0])
    if kind == "key":
        return random_key(keys[0])
    if kind == "kafka-cluster-id":
        return kafka_cluster_id(keys[0])
    raise ValueError(f"unknown secret kind {kind!r}")


# ---------------------------------------------------------------------------- API server


class Api:
    """The few calls needed, over HTTPS with the pod's service-account credentials."""

    def __init__(self) -> None:
        host = os.environ["KUBERNETES_SERVICE_HOST"]
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if ":" in host:  # an IPv6 address
            host = f"[{host}]"
        self.base = f"https://{host}:{port}"
        self.context = ssl.create_default_context(cafile=f"{SERVICE_ACCOUNT}/ca.crt")
        with open(f"{SERVICE_ACCOUNT}/namespace", encoding="utf-8") as f:
            self.namespace = f.read().strip()

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        """(status, JSON body); retries connection errors and 5xx until the deadline."""
        deadline = time.monotonic() + DEADLINE_SECONDS
        delay = 0.5
        while True:
            # Read the token on every call: projected tokens are rotated by the kubelet.
            with open(f"{SERVICE_ACCOUNT}/token", encoding="utf-8") as f:
                token = f.read().strip()
            request = urllib.request.Request(
                self.base + path, method=method,
                data=json.dumps(body).encode() if body is not None else None,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json",
                         "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, context=self.context, timeout=10) as resp:
                    return resp.status, json.load(resp)
            except urllib.error.HTTPError as exc:
                if exc.code < 500:
                    try:
                        return exc.code, json.load(exc)
                    except ValueError:
                        return exc.code, {}
                problem = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                problem = str(exc)
            if time.monotonic() + delay > deadline:
                raise SystemExit(f"secrets: the API server did not answer: {problem}")
            log(f"API server not answering ({problem}); retrying in {delay:.1f}s")
            time.sleep(delay)
            delay = min(delay * 2, 8.0)

    def secret_path(self, name: str = "") -> str:
        path = f"/api/v1/namespaces/{self.namespace}/secrets"
        return f"{path}/{name}" if name else path


# ---------------------------------------------------------------------------- the work


def check_keys(name: str, found: dict, keys: list[str]) -> None:
    missing = [k for k in keys if k not in (found.get("data") or {})]
    if missing:
        raise SystemExit(f"secrets: Secret {name} exists but lacks {', '.join(missing)}; "
                         "add the keys, or delete the Secret to have a new one generated")


def ensure(api: Api, spec: dict, labels: dict, release: str) -> None:
    name, kind, keys = spec["name"], spec["generate"], spec["keys"]
    status, found = api.call("GET", api.secret_path(name))
    if status == 200:
        if kind == "jwt":
            found = complete_jwt_secret(api, name, found)
        check_keys(name, found, keys)
        log(f"{name}: present, kept")
        return
    if status == 403:
        raise SystemExit(f"secrets: not allowed to read Secret {name}: {found.get('message')}")
    if status != 404:
        raise SystemExit(f"secrets: reading Secret {name} failed: HTTP {status} "
                         f"{found.get('message')}")
    if not kind:
        raise SystemExit(f"secrets: Secret {name} (an existingSecret value) does not exist; "
                         f"create it with the key(s) {', '.join(keys)}")
    data = {k: base64.b64encode(v).decode() for k, v in generate(kind, keys).items()}
    body = {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {
            "name": name, "namespace": api.namespace, "labels": labels,
            "annotations": {
                "murmur/generated-by": f"{release} secrets hook",
                "murmur/lifetime": "kept by helm uninstall, like the data volumes",
            },
        },
        "data": data,
    }
    status, created = api.call("POST", api.secret_path(), body)
    if status == 201:
        log(f"{name}: created ({kind})")
    elif status == 409:  # made meanwhile by a concurrent run: keep that one
        status, found = api.call("GET", api.secret_path(name))
        check_keys(name, found, keys)
        log(f"{name}: created meanwhile by another run, kept")
    else:
        raise SystemExit(f"secrets: creating Secret {name} failed: HTTP {status} "
                         f"{created.get('message')}")


def main() -> int:
    specs = json.loads(os.environ["MURMUR_SECRETS"])
    labels = json.loads(os.environ.get("MURMUR_SECRET_LABELS", "{}"))
    release = os.environ.get("MURMUR_RELEASE", "")
    api = Api()
    for spec in specs:
        ensure(api, spec, labels, release)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["rotate-jwt"]:
        sys.exit(rotate_jwt_command(sys.argv[2:]))
    sys.exit(main())
