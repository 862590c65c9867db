"""The chart's monitoring resources on a real API server: with the Prometheus Operator's
CRDs installed (k8s/crds/, the versions the chart is checked against), the server accepts
the rendered PodMonitor, PrometheusRule and dashboard ConfigMaps in a dry run, and refuses
a PodMonitor its CRD schema forbids (so the dry run does check them)."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from k8s._cluster import REPO, Cluster

CHART = REPO / "helm/murmur"
CRDS = sorted((REPO / "k8s/crds").glob("*.yaml"))
MONITORING = ["--set", "metrics.podMonitor.enabled=true",
              "--set", "metrics.prometheusRule.enabled=true",
              "--set", "dashboards.enabled=true"]


@pytest.fixture(scope="module")
def crds(cluster: Cluster) -> list[str]:
    """The vendored CRDs installed (server-side apply: the PodMonitor one is too large for
    the last-applied annotation) and established."""
    names = []
    for path in CRDS:
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
        names.append(f"crd/{yaml.safe_load(path.read_text())['metadata']['name']}")
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)
    return names


@pytest.fixture(scope="module")
def monitoring_resources(cluster: Cluster) -> list[dict]:
    rendered = subprocess.run(
        [cluster.helm_bin, "template", cluster.release, str(CHART), "-n", cluster.namespace,
         *MONITORING], check=True, capture_output=True, text=True).stdout
    wanted = [d for d in yaml.safe_load_all(rendered) if d and (
        d["kind"] in ("PodMonitor", "PrometheusRule")
        or "grafana_dashboard" in d["metadata"]["labels"])]
    assert sorted(d["kind"] for d in wanted) == ["ConfigMap"] * 3 + ["PodMonitor",
                                                                     "PrometheusRule"]
    return wanted


def dry_run(cluster: Cluster, resources: list[dict]) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl("apply", "--dry-run=server", "-f", "-", check=False,
                           input=yaml.safe_dump_all(resources))


def test_the_api_server_accepts_the_monitoring_resources(cluster: Cluster, crds,
                                                         monitoring_resources) -> None:
    result = dry_run(cluster, monitoring_resources)
    assert result.returncode == 0, result.stderr
    assert "podmonitor.monitoring.coreos.com/" in result.stdout
    assert "prometheusrule.monitoring.coreos.com/" in result.stdout


def test_the_api_server_refuses_a_pod_monitor_its_schema_forbids(cluster: Cluster, crds,
                                                                  monitoring_resources) -> None:
    (monitor,) = [d for d in monitoring_resources if d["kind"] == "PodMonitor"]
    broken = yaml.safe_load(yaml.safe_dump(monitor))
    broken["spec"]["podMetricsEndpoints"][0]["relabelings"][0]["action"] = "rename"
    result = dry_run(cluster, [broken])
    assert result.returncode != 0
    assert "action" in result.stderr
