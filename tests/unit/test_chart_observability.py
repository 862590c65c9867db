"""The chart's observability: scrape annotations, the optional PodMonitor and
PrometheusRule (valid against the Prometheus Operator's CRD schemas, k8s/crds/), the
Grafana dashboard ConfigMaps, and tracing's OTEL_* environment, as `helm template`
renders them."""

from __future__ import annotations

import json
import subprocess
from functools import lru_cache
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm/murmur"
CRDS = REPO / "k8s/crds"
PROCESSES = {"gateway", "users", "timeline", "fanout", "users-relay", "timeline-relay",
             "timeline-authors"}
MONITORING = ("--set", "metrics.podMonitor.enabled=true",
              "--set", "metrics.prometheusRule.enabled=true",
              "--set", "dashboards.enabled=true")


@lru_cache(maxsize=1)
def helm() -> str:
    """The helm the Kubernetes targets use (k8s/tool.sh: the cached build, else PATH)."""
    return subprocess.run(["bash", str(REPO / "k8s/tool.sh"), "helm"], check=True,
                          capture_output=True, text=True, timeout=1800).stdout.strip()


def render(*flags: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`helm template` of the chart with extra flags."""
    return subprocess.run([helm(), "template", "murmur", str(CHART), "-n", "obs", *flags],
                          check=check, capture_output=True, text=True, timeout=120)


@lru_cache(maxsize=8)
def documents(*flags: str) -> tuple[dict, ...]:
    """The rendered resources."""
    return tuple(d for d in yaml.safe_load_all(render(*flags).stdout) if d)


def of_kind(kind: str, *flags: str) -> list[dict]:
    return [d for d in documents(*flags) if d["kind"] == kind]


def crd_schema(kind: str) -> dict:
    """The v1 openAPIV3Schema of one vendored CRD, by kind."""
    for path in CRDS.glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["names"]["kind"] == kind:
            (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
            return version["schema"]["openAPIV3Schema"]
    raise AssertionError(f"no CRD of kind {kind} under k8s/crds")


def schema_errors(kind: str, resource: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(crd_schema(kind))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(resource)]


def env_of(*flags: str) -> dict[str, str]:
    """The shared environment ConfigMap's data."""
    (config,) = [c for c in of_kind("ConfigMap", *flags) if c["metadata"]["name"].endswith("-env")]
    return config["data"]


def test_monitoring_resources_are_off_by_default() -> None:
    kinds = {d["kind"] for d in documents()}
    assert not {"PodMonitor", "PrometheusRule"} & kinds
    assert not [c for c in of_kind("ConfigMap") if "grafana_dashboard" in c["metadata"]["labels"]]


def test_every_murmur_process_pod_carries_the_scrape_annotations() -> None:
    annotated = {}
    for deployment in of_kind("Deployment"):
        component = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        annotated[component] = (annotations.get("prometheus.io/scrape"),
                                annotations.get("prometheus.io/port"),
                                annotations.get("prometheus.io/path"))
    for process in PROCESSES:
        assert annotated[process] == ("true", "8000", "/metrics"), process
    assert annotated["edge"] == (None, None, None)  # nginx serves no /metrics


def test_the_scrape_annotations_can_be_turned_off() -> None:
    for deployment in of_kind("Deployment", "--set", "metrics.podAnnotations=false"):
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        assert "prometheus.io/scrape" not in annotations


def test_the_pod_monitor_is_valid_against_its_crd_schema() -> None:
    (monitor,) = of_kind("PodMonitor", *MONITORING)
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert schema_errors("PodMonitor", monitor) == []


def test_the_crd_schema_check_rejects_a_malformed_pod_monitor() -> None:
    (monitor,) = of_kind("PodMonitor", *MONITORING)
    broken = json.loads(json.dumps(monitor))
    broken["spec"]["podMetricsEndpoints"][0]["relabelings"][0]["action"] = "rename"
    broken["spec"]["selector"]["matchExpressions"] = "all"
    assert len(schema_errors("PodMonitor", broken)) >= 2


def test_the_pod_monitor_selects_every_murmur_process_and_names_the_job_by_its_kind() -> None:
    (monitor,) = of_kind("PodMonitor", *MONITORING)
    spec = monitor["spec"]
    (expression,) = spec["selector"]["matchExpressions"]
    assert (expression["key"], expression["operator"]) == ("app.kubernetes.io/component", "In")
    assert set(expression["values"]) == PROCESSES
    assert spec["selector"]["matchLabels"]["app.kubernetes.io/instance"] == "murmur"
    assert spec["namespaceSelector"] == {"matchNames": ["obs"]}
    (endpoint,) = spec["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    targets = {r["targetLabel"]: r["sourceLabels"] for r in endpoint["relabelings"]}
    assert targets["job"] == ["__meta_kubernetes_pod_label_app_kubernetes_io_component"]
    assert targets["instance"] == ["__meta_kubernetes_pod_name"]
    # Every process pod carries the label the job comes from, and the port it scrapes.
    for deployment in of_kind("Deployment", *MONITORING):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        if labels["app.kubernetes.io/component"] in PROCESSES:
            (container,) = deployment["spec"]["template"]["spec"]["containers"]
            assert "http" in {p["name"] for p in container["ports"]}


def test_the_prometheus_rule_is_valid_and_carries_the_repositorys_rules() -> None:
    (rule,) = of_kind("PrometheusRule", *MONITORING)
    assert schema_errors("PrometheusRule", rule) == []
    source = yaml.safe_load((REPO / "observability/rules.yml").read_text())
    assert rule["spec"] == source  # alert templates such as {{ $labels.job }} kept verbatim


def test_selector_labels_reach_the_monitor_and_the_rule() -> None:
    flags = (*MONITORING, "--set", "metrics.podMonitor.labels.release=kps",
             "--set", "metrics.prometheusRule.labels.release=kps")
    (monitor,) = of_kind("PodMonitor", *flags)
    (rule,) = of_kind("PrometheusRule", *flags)
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert rule["metadata"]["labels"]["release"] == "kps"


def test_each_grafana_dashboard_is_a_configmap_labelled_for_the_sidecar() -> None:
    maps = [c for c in of_kind("ConfigMap", *MONITORING)
            if c["metadata"]["labels"].get("grafana_dashboard") == "1"]
    files = sorted((CHART / "files/grafana").glob("*.json"))
    assert len(maps) == len(files) == 3
    shipped = {name: text for c in maps for name, text in c["data"].items()}
    for path in files:
        assert json.loads(shipped[path.name]) == json.loads(path.read_text())


def test_the_sidecar_label_namespace_and_folder_are_configurable() -> None:
    flags = ("--set", "dashboards.enabled=true", "--set", "dashboards.label=dash",
             "--set-string", "dashboards.labelValue=murmur", "--set", "dashboards.namespace=mon",
             "--set", "dashboards.annotations.grafana_folder=Murmur")
    maps = [c for c in of_kind("ConfigMap", *flags) if "dash" in c["metadata"]["labels"]]
    assert len(maps) == 3
    for c in maps:
        assert c["metadata"]["labels"]["dash"] == "murmur"
        assert c["metadata"]["namespace"] == "mon"
        assert c["metadata"]["annotations"]["grafana_folder"] == "Murmur"


def test_tracing_is_off_by_default() -> None:
    env = env_of()
    assert env["OTEL_SDK_DISABLED"] == "true"
    assert "OTEL_TRACES_EXPORTER" not in env


@pytest.mark.parametrize("exporter, variable, endpoint", [
    ("otlp", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
    ("zipkin", "OTEL_EXPORTER_ZIPKIN_ENDPOINT", "http://zipkin:9411/api/v2/spans"),
])
def test_tracing_exports_to_the_configured_endpoint(exporter, variable, endpoint) -> None:
    env = env_of("--set", "tracing.enabled=true", "--set", f"tracing.exporter={exporter}",
                 "--set", f"tracing.endpoint={endpoint}", "--set-json", "tracing.sampleRatio=0.25")
    assert env["OTEL_SDK_DISABLED"] == "false"
    assert env["OTEL_TRACES_EXPORTER"] == exporter
    assert env[variable] == endpoint
    assert (env["OTEL_TRACES_SAMPLER"], env["OTEL_TRACES_SAMPLER_ARG"]) == (
        "parentbased_traceidratio", "0.25")


def test_the_exporters_the_chart_names_are_installed_with_the_services() -> None:
    from importlib.metadata import entry_points

    installed = {e.name for e in entry_points(group="opentelemetry_traces_exporter")}
    assert {"otlp_proto_http", "zipkin_json"} <= installed
    pins = (REPO / "services/requirements.txt").read_text()
    assert "opentelemetry-exporter-otlp-proto-http==" in pins
    assert "opentelemetry-exporter-zipkin-json==" in pins


def test_a_collector_exporter_without_an_endpoint_is_refused() -> None:
    result = render("--set", "tracing.enabled=true", "--set", "tracing.exporter=zipkin",
                    check=False)
    assert result.returncode != 0
    assert "tracing.endpoint" in result.stderr


def test_the_schema_refuses_an_unknown_exporter() -> None:
    result = render("--set", "tracing.exporter=jaeger", check=False)
    assert result.returncode != 0
    assert "exporter" in result.stderr
