"""Helpers of the Kubernetes layer: kubectl and helm bound to a release, and API accounts."""

from __future__ import annotations

import json
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Cluster:
    """kubectl and helm bound to the release under test."""

    kubectl_bin: str
    helm_bin: str
    namespace: str
    release: str

    def kubectl(self, *args: str, check: bool = True, timeout: float = 120,
                input: str | None = None) -> subprocess.CompletedProcess[str]:
        """kubectl in the release's namespace."""
        return subprocess.run([self.kubectl_bin, "-n", self.namespace, *args], check=check,
                              capture_output=True, text=True, timeout=timeout, input=input)

    def get(self, *args: str) -> dict:
        """`kubectl get ... -o json`, parsed."""
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def helm(self, *args: str, check: bool = True,
             timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """helm against the release's namespace."""
        return subprocess.run([self.helm_bin, "-n", self.namespace, *args], check=check,
                              capture_output=True, text=True, timeout=timeout)

    def name(self, component: str) -> str:
        """The resource name of one of the release's components (e.g. murmur-gateway)."""
        return f"{self.release}-{component}"

    def selector(self, component: str) -> str:
        """The label selector of one component's pods."""
        return (f"app.kubernetes.io/instance={self.release},"
                f"app.kubernetes.io/component={component}")

    def context(self) -> str:
        """The current kubectl context."""
        return subprocess.run([self.kubectl_bin, "config", "current-context"], check=True,
                              capture_output=True, text=True).stdout.strip()


def unique(prefix: str = "k") -> str:
    """A username no earlier run has used."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@dataclass
class Account:
    """A signed-up user and its bearer token."""

    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header of this account."""
        return {"Authorization": f"Bearer {self.token}"}


def sign_up(api: str, prefix: str = "k") -> Account:
    """Create an account through the edge and sign it in."""
    username, password = unique(prefix), "k8s-password-1"
    created = requests.post(f"{api}/users", json={"username": username, "password": password},
                            timeout=15)
    assert created.status_code == 201, created.text
    session = requests.post(f"{api}/sessions", json={"username": username, "password": password},
                            timeout=15)
    assert session.status_code == 200, session.text
    return Account(username, session.json()["access_token"])
