"""Fixtures of the Kubernetes layer: the chart installed on a real cluster.

`make k8s-test` runs these against the current deployment (`make deploy`): the local
cluster in CI, or kind/minikube. They talk to the real API server with kubectl and helm,
and to Murmur only through its edge Service, as a user of the deployment would.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from k8s._cluster import REPO, Cluster


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    """The cluster and release that `make k8s-test` was pointed at."""
    return Cluster(os.environ.get("KUBECTL", "kubectl"), os.environ.get("HELM", "helm"),
                   os.environ.get("NAMESPACE", "murmur"), os.environ.get("RELEASE", "murmur"))


@pytest.fixture(scope="session")
def api(cluster: Cluster) -> str:
    """The public API's base URL of the deployment (`make k8s-url`)."""
    env = {**os.environ, "KUBECTL": cluster.kubectl_bin, "NAMESPACE": cluster.namespace,
           "RELEASE": cluster.release}
    return subprocess.run(["bash", str(REPO / "k8s/url.sh")], check=True, capture_output=True,
                          text=True, env=env).stdout.strip()
