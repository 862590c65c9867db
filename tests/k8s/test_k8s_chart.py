"""The chart itself: it lints strictly, and the cluster's own API accepts what it renders."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from k8s._cluster import REPO, Cluster

CHART = REPO / "helm/murmur"
PROFILES = {
    "default": [],
    "ha": ["-f", str(CHART / "values-ha.yaml")],
    "local": ["-f", str(REPO / "k8s/local/values.yaml")],
}


@pytest.mark.parametrize("profile", PROFILES)
def test_the_chart_lints_strictly_with_each_values_file(cluster: Cluster, profile: str) -> None:
    result = subprocess.run([cluster.helm_bin, "lint", "--strict", str(CHART), *PROFILES[profile]],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_the_schema_rejects_a_value_the_chart_does_not_know(cluster: Cluster) -> None:
    result = subprocess.run([cluster.helm_bin, "template", "murmur", str(CHART),
                             "--set", "gateway.replicaz=3"], capture_output=True, text=True)
    assert result.returncode != 0
    assert "replicaz" in result.stderr


@pytest.fixture(scope="module")
def empty_namespace(cluster: Cluster):
    """A namespace of its own, enforcing the restricted policy, so the dry run creates
    rather than updates what the deployed release already has."""
    name = f"{cluster.namespace}-dry-run"
    cluster.kubectl("create", "namespace", name, check=False)
    cluster.kubectl("label", "--overwrite", "namespace", name,
                    "pod-security.kubernetes.io/enforce=restricted")
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false")


@pytest.mark.parametrize("profile", ["local", "ha"])
def test_the_api_server_accepts_every_rendered_manifest_under_the_restricted_policy(
        cluster: Cluster, empty_namespace: str, profile: str) -> None:
    # Another NodePort than the deployed release's, which holds 30080.
    rendered = subprocess.run(
        [cluster.helm_bin, "template", cluster.release, str(CHART), "-n", empty_namespace,
         *PROFILES[profile], "--set", "edge.service.nodePort=32079"],
        check=True, capture_output=True, text=True).stdout
    kubectl = [cluster.kubectl_bin, "-n", empty_namespace, "apply"]
    # Pods are admitted only when their service account exists: create those for real.
    accounts = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "ServiceAccount"]
    subprocess.run([*kubectl, "-f", "-"], input=yaml.safe_dump_all(accounts), check=True,
                   capture_output=True, text=True, timeout=60)
    result = subprocess.run([*kubectl, "--dry-run=server", "-f", "-"], input=rendered,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    # The namespace enforces the restricted Pod Security Standard: a pod template that
    # breaks it draws a warning on its Deployment/StatefulSet and a refusal on a bare Pod.
    assert "PodSecurity" not in result.stderr, result.stderr
    kinds = {line.split("/")[0] for line in result.stdout.splitlines()}
    for kind in ("deployment.apps", "statefulset.apps", "service", "networkpolicy.networking.k8s.io",
                 "poddisruptionbudget.policy", "horizontalpodautoscaler.autoscaling", "job.batch"):
        assert kind in kinds, f"no {kind} rendered: {sorted(kinds)}"
