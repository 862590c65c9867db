"""The observability servers both profiles share: Zipkin (traces), VictoriaMetrics (the
time-series server, scraping every process) and vmalert (recording and alerting rules).

Like the stores they belong to no profile. The scrape configuration is rendered from the
component table, so a service process added to the table is scraped without another edit;
VictoriaMetrics re-reads it every few seconds, and vmalert re-reads the rules file, so
neither restarts (and loses no samples) when they change.
"""

from __future__ import annotations

import json
from pathlib import Path

from common import config

from . import readiness
from .layout import HOST, paths, ports, prefix, write_if_changed

REPO = config.REPO_ROOT
RULES = REPO / "observability" / "rules.yml"
DASHBOARDS = REPO / "observability" / "vmui"
SCRAPE_CONFIG = "victoriametrics-scrape.json"  # JSON is YAML: no YAML library needed

# How often every process is scraped and the rules evaluated: short, so a one-minute load
# run already draws a curve.
SCRAPE_INTERVAL = "5s"
EVALUATION_INTERVAL = "10s"
# How far behind "now" a query stops (VictoriaMetrics's default is 30 s; vmalert's delay
# matches it so a rule never reads a point that may still change).
LATENCY_OFFSET = "5s"
# Zipkin keeps spans in memory, at most this many (the traces of the last ~1,500 posts or
# a few seconds of a load run): a bounded heap, so the whole stack stays within 4 GiB.
ZIPKIN_MAX_SPANS = 20_000

MINIMAL_RULES = """\
# Recording and alerting rules (Prometheus rule-group format), loaded by the local vmalert.
groups: []
"""


def zipkin_url() -> str:
    return f"http://{HOST}:{ports().zipkin}"


def zipkin_spans_endpoint() -> str:
    """Where the services post their spans (OTEL_EXPORTER_ZIPKIN_ENDPOINT's default)."""
    return f"{zipkin_url()}/api/v2/spans"


def victoriametrics_url() -> str:
    return f"http://{HOST}:{ports().victoriametrics}"


def vmalert_url() -> str:
    return f"http://{HOST}:{ports().vmalert}"


def tracing_defaults() -> dict[str, str]:
    """The OTEL_* settings every service process gets unless its `up` recorded others."""
    return {"OTEL_TRACES_EXPORTER": "zipkin",
            "OTEL_EXPORTER_ZIPKIN_ENDPOINT": zipkin_spans_endpoint()}


def zipkin_command(java: str) -> tuple[str, dict[str, str]]:
    """Zipkin's command line and environment (in-memory storage, loopback only)."""
    heap = config.env("MURMUR_ZIPKIN_HEAP", "128m")
    jar = sorted((paths().cache / "jars/zipkin").glob("zipkin-server-*-exec.jar"))
    jar_path = jar[-1] if jar else paths().cache / "jars/zipkin/zipkin-server-exec.jar"
    # C1 only and the serial collector: a viewer on a two-core machine starts in seconds
    # and stays small; its peak speed does not matter here.
    command = (f"{java} -Xms32m -Xmx{heap} -XX:+UseSerialGC -XX:TieredStopAtLevel=1 "
               "-XX:ReservedCodeCacheSize=32m -XX:MaxMetaspaceSize=128m -Xss512k "
               "-XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true "
               f"-jar {jar_path} --armeria.ports[0].port={ports().zipkin} "
               f"--armeria.ports[0].ip={HOST}")
    env = {"STORAGE_TYPE": "mem",
           "MEM_MAX_SPANS": str(config.env_int("MURMUR_ZIPKIN_MAX_SPANS", ZIPKIN_MAX_SPANS)),
           "SELF_TRACING_ENABLED": "false"}
    return command, env


def victoriametrics_command() -> str:
    p = paths()
    return (f"{p.cache}/bin/victoria-metrics -httpListenAddr={HOST}:{ports().victoriametrics} "
            f"-storageDataPath={p.home}/victoriametrics -retentionPeriod=7d "
            f"-promscrape.config={p.etc}/{SCRAPE_CONFIG} -promscrape.configCheckInterval=5s "
            f"-search.latencyOffset={LATENCY_OFFSET} -memory.allowedBytes=128MiB "
            f"-vmui.customDashboardsPath={DASHBOARDS} -loggerLevel=WARN")


def vmalert_command() -> str:
    vm = victoriametrics_url()
    return (f"{paths().cache}/bin/vmalert -httpListenAddr={HOST}:{ports().vmalert} "
            f"-rule={RULES} -configCheckInterval=10s -evaluationInterval={EVALUATION_INTERVAL} "
            f"-rule.evalDelay={LATENCY_OFFSET} -datasource.url={vm} -remoteWrite.url={vm} "
            f"-remoteRead.url={vm} -notifier.blackhole -external.url={vmalert_url()} "
            "-loggerLevel=WARN")


def ready_zipkin() -> None:
    readiness.http_get(f"{zipkin_url()}/health")


def ready_victoriametrics() -> None:
    readiness.http_get(f"{victoriametrics_url()}/health")


def ready_vmalert() -> None:
    readiness.http_get(f"{vmalert_url()}/health")


def prepare_observability() -> None:
    """The rules file vmalert needs to start, when the repository has none yet, and the
    data folder of VictoriaMetrics."""
    (paths().home / "victoriametrics").mkdir(parents=True, exist_ok=True)
    if not RULES.exists():
        RULES.parent.mkdir(parents=True, exist_ok=True)
        RULES.write_text(MINIMAL_RULES)
    DASHBOARDS.mkdir(parents=True, exist_ok=True)


def scrape_targets() -> list[dict[str, object]]:
    """One scrape job per kind of process, both profiles' processes whose code is present.

    `job` is the kind (both gateways are `gateway`), `instance` the process name
    (`test-gateway-1`), `profile` dev or test: the labels every dashboard and rule
    aggregates by, the same the chart's ServiceMonitor gives on Kubernetes.
    """
    from .components import SERVICES, service_port

    jobs: dict[str, list[dict[str, object]]] = {}
    for profile in config.PROFILES:
        for svc in SERVICES:
            if not (REPO / "services" / svc.module_file).exists():
                continue
            kind = "gateway" if svc.name.startswith("gateway") else svc.name
            jobs.setdefault(kind, []).append({
                "targets": [f"{HOST}:{service_port(svc.port_key, profile)}"],
                "labels": {"instance": prefix(profile) + svc.name, "profile": profile}})
    scrape = [{"job_name": kind, "static_configs": targets} for kind, targets in jobs.items()]
    port = ports()
    scrape += [
        {"job_name": "zipkin", "metrics_path": "/prometheus",
         "static_configs": [{"targets": [f"{HOST}:{port.zipkin}"],
                             "labels": {"instance": "zipkin"}}]},
        {"job_name": "victoriametrics", "static_configs": [{
            "targets": [f"{HOST}:{port.victoriametrics}"],
            "labels": {"instance": "victoriametrics"}}]},
        {"job_name": "vmalert", "static_configs": [{
            "targets": [f"{HOST}:{port.vmalert}"], "labels": {"instance": "vmalert"}}]},
    ]
    return scrape


def render_scrape_config() -> tuple[Path, bool]:
    """Write VictoriaMetrics's scrape configuration; (its path, whether it changed)."""
    dest = paths().etc / SCRAPE_CONFIG
    document = {"global": {"scrape_interval": SCRAPE_INTERVAL, "scrape_timeout": "4s"},
                "scrape_configs": scrape_targets()}
    return dest, write_if_changed(dest, json.dumps(document, indent=2) + "\n")
