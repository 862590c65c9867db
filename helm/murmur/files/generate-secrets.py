"""Create the release's Secrets that are missing; never change one that exists.

Runs as the chart's pre-install/pre-upgrade hook Job, in the users image (Python 3 and
`cryptography`), and talks to the Kubernetes API with the standard library and the pod's
service-account token. Generated once, the JWT key pair, the Postgres password and the
Kafka cluster id survive every upgrade; a Secret deleted on purpose is made anew by the
next `helm upgrade` (rotation).

Not named secrets.py: the script's folder comes first on sys.path, and the file would
shadow the standard library's `secrets` module.

Environment:
  MURMUR_SECRETS        JSON list of {"name", "generate", "keys"}; `generate` is "jwt",
                        "password", "kafka-cluster-id", or "" for a Secret the user
                        supplies (existingSecret), which is only checked
  MURMUR_SECRET_LABELS  JSON object: labels of the Secrets it creates
  MURMUR_RELEASE        the Helm release, recorded in an annotation
"""

from __future__ import annotations

import base64
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


def jwt_key_pair() -> dict[str, bytes]:
    """An Ed25519 key pair: users signs session tokens, the gateway only verifies them."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return {"jwt-private.pem": private, "jwt-public.pem": public}


def password(key: str) -> dict[str, bytes]:
    """A random password (URL-safe, so it needs no quoting in a libpq connection string)."""
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
    sys.exit(main())
