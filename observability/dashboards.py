"""Murmur's dashboards, defined once, and the files generated from them.

Three dashboards: the golden signals of every service, the fan-out pipeline, and
resilience. From this one definition come

- observability/vmui/<slug>.json: VictoriaMetrics's vmui custom dashboards (the local
  VictoriaMetrics loads the folder with `-vmui.customDashboardsPath`);
- helm/murmur/files/grafana/<slug>.json: Grafana dashboards for kind/minikube users, which
  the chart puts in ConfigMaps labelled for Grafana's dashboard sidecar;
- helm/murmur/files/rules/murmur.rules.yml: a copy of observability/rules.yml, which the
  chart's PrometheusRule carries.

`python observability/dashboards.py` (`make dashboards`) writes them; `--check` only says
which are stale (tests/unit/test_observability.py fails on a stale file). Expressions
aggregate `by (job)` (plus `profile` locally), so they read the same on the local stack and
on Kubernetes, where the chart's PodMonitor gives `job` the same values.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "observability" / "rules.yml"
VMUI_DIR = REPO / "observability" / "vmui"
GRAFANA_DIR = REPO / "helm" / "murmur" / "files" / "grafana"
CHART_RULES = REPO / "helm" / "murmur" / "files" / "rules" / "murmur.rules.yml"

# Requests that are not traffic: the probes and the scrapes themselves.
NOT_TRAFFIC = 'route!~"/healthz|/readyz|/metrics"'


@dataclass(frozen=True)
class Query:
    """One expression of a panel and the legend of its series (Grafana's legendFormat)."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    """A time-series chart.

    `on_event` marks a panel whose metric gets its first sample only when the thing it
    counts happens (a breaker opening, a retry, a dead letter): on a healthy stack it is
    empty, and the dashboards check proves instead that the metric is declared by the
    services and its process is scraped.
    """

    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"  # Grafana unit id; vmui shows unit_label()
    width: int = 6  # of 12 columns
    on_event: bool = False

    def unit_label(self) -> str:
        """The Y-axis caption vmui shows."""
        return {"s": "seconds", "percentunit": "ratio", "reqps": "req/s", "ops": "ops/s",
                "short": ""}.get(self.unit, self.unit)


@dataclass(frozen=True)
class Row:
    """A titled group of panels."""

    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Dashboard:
    """One dashboard: its file name (slug), stable Grafana uid, title and rows."""

    slug: str
    uid: str
    title: str
    description: str
    rows: tuple[Row, ...] = field(default_factory=tuple)

    def panels(self) -> list[Panel]:
        """Every panel, row by row."""
        return [p for row in self.rows for p in row.panels]


def _quantiles(metric: str, window: str) -> tuple[Query, ...]:
    return tuple(Query(f"job:{metric}:p{q}_rate{window}", f"{{{{job}}}} p{q}")
                 for q in (50, 95, 99))


GOLDEN = Dashboard(
    slug="murmur-golden-signals",
    uid="murmur-golden-signals",
    title="Murmur: golden signals",
    description="Traffic, errors, latency and saturation of every Murmur process, by job.",
    rows=(
        Row("Traffic and errors", (
            Panel("Request rate", "Requests served per second by each service (probes and "
                  "scrapes left out).",
                  (Query("job:murmur_http_requests:rate1m", "{{job}}"),), unit="reqps"),
            Panel("Error ratio (5xx)", "Share of answers that are 5xx; the SLO is 0.1 %.",
                  (Query("job:murmur_http_requests_errors:ratio_rate1m", "{{job}}"),),
                  unit="percentunit"),
            Panel("Gateway answers by status", "Every status the gateway answers with: 4xx "
                  "are the clients', 503 a dependency down without a fallback.",
                  (Query(f'sum by (status) (rate(murmur_http_requests_total{{job="gateway", '
                         f'{NOT_TRAFFIC}}}[1m]))', "{{status}}"),), unit="reqps"),
            Panel("Gateway request rate by route", "Public operations, as the gateway routes "
                  "them.",
                  (Query("job_route:murmur_http_requests:rate5m", "{{route}}"),), unit="reqps"),
        )),
        Row("Latency", (
            Panel("Latency p50 / p95 / p99 by service", "Server-side request duration "
                  "quantiles (histogram buckets up to 5 s).",
                  _quantiles("murmur_http_request_duration_seconds", "1m"), unit="s",
                  width=12),
            Panel("Gateway p99 by route", "The SLO is p99 <= 1 s and p95 <= 500 ms on the "
                  "main routes.",
                  (Query("job_route:murmur_http_request_duration_seconds:p99_rate5m",
                         "{{route}}"),), unit="s"),
            Panel("Downstream call p99", "Calls between Murmur services, as the caller times "
                  "them (timeouts and breakers included).",
                  (Query("histogram_quantile(0.99, sum by (job, downstream, le) "
                         "(rate(murmur_downstream_request_duration_seconds_bucket[1m])))",
                         "{{job}} -> {{downstream}}"),), unit="s"),
        )),
        Row("Saturation", (
            Panel("Pool use", "Connections in use over the pool's size, per dependency "
                  "(the busiest worker): 1 means the bulkhead is full.",
                  (Query("max by (job, dependency) (murmur_pool_in_use) / "
                         "max by (job, dependency) (murmur_pool_size)",
                         "{{job}} {{dependency}}"),), unit="percentunit"),
            Panel("Calls waiting for a connection", "Calls queued on a full pool.",
                  (Query("max by (job, dependency) (murmur_pool_waiting)",
                         "{{job}} {{dependency}}"),)),
            Panel("Cache hit ratio", "Hits over lookups per cache; a lookup the cache could "
                  "not answer counts as a miss.",
                  (Query('(sum by (job, cache) (rate(murmur_cache_requests_total{result="hit"}'
                         '[5m])) or sum by (job, cache) (rate(murmur_cache_requests_total[5m]))'
                         ' * 0) / sum by (job, cache) (rate(murmur_cache_requests_total[5m]))',
                         "{{job}} {{cache}}"),), unit="percentunit"),
            Panel("Scrape health", "1 when the process answered its last scrape.",
                  (Query('up{job=~"gateway|users|timeline|fanout|users-relay|timeline-relay|'
                         'timeline-authors"}', "{{instance}}"),)),
        )),
    ),
)

PIPELINE = Dashboard(
    slug="murmur-fanout-pipeline",
    uid="murmur-fanout-pipeline",
    title="Murmur: fan-out pipeline",
    description="A post's way from the API through the outbox and Kafka into followers' "
                "home timelines.",
    rows=(
        Row("Into Kafka", (
            Panel("Posts accepted", "POST /api/v1/tweets answered 201 by the gateways.",
                  (Query("profile:murmur_posts_accepted:rate1m", "{{profile}}"),), unit="ops"),
            Panel("Outbox backlog", "Rows written with their tweet or follow, not yet "
                  "published to Kafka by the relay.",
                  (Query("outbox:murmur_outbox_backlog:max", "{{outbox}}"),)),
            Panel("Fanout consumer lag", "Messages of each topic not yet processed by the "
                  "fanout group (end offset - committed offset).",
                  (Query("topic:murmur_fanout_consumer_lag:sum", "{{topic}}"),)),
            Panel("Author projection consumer lag", "users.v1 messages fetched but not yet "
                  "applied to timeline's author projection.",
                  (Query("profile:murmur_timeline_author_consumer_lag:sum", "{{profile}}"),)),
        )),
        Row("Fan-out", (
            Panel("Deliveries", "Follower home-timeline writes per second.",
                  (Query("job:murmur_fanout_deliveries:rate1m", "{{job}}"),), unit="ops"),
            Panel("Freshness: fan-out lag p50 / p95 / p99", "From a post's occurred_at to "
                  "its last follower write; the SLO is p95 <= 5 s.",
                  _quantiles("murmur_fanout_lag_seconds", "5m"), unit="s"),
            Panel("Events handled", "Events by type and outcome (processed, dead_lettered, "
                  "retry_later, failed).",
                  (Query("sum by (type, outcome) (rate(murmur_fanout_events_total[1m]))",
                         "{{type}} {{outcome}}"),), unit="ops"),
            Panel("Offset commits", "Commits after the Redis writes, by result.",
                  (Query("sum by (result) (rate(murmur_fanout_commits_total[1m]))",
                         "{{result}}"),), unit="ops"),
            Panel("Batch duration p99", "Time to process one poll's records of a partition.",
                  (Query("histogram_quantile(0.99, sum by (topic, le) "
                         "(rate(murmur_fanout_batch_duration_seconds_bucket[1m])))",
                         "{{topic}}"),), unit="s"),
            Panel("Author projection events", "users.v1 events by type and outcome.",
                  (Query("sum by (type, outcome) "
                         "(rate(murmur_timeline_author_events_total[5m]))",
                         "{{type}} {{outcome}}"),), unit="ops"),
        )),
        Row("Held and dead-lettered", (
            Panel("Partition held", "How long a partition has waited behind one record "
                  "(an outage or a failure); 0 once it gets past.",
                  (Query("max by (topic, partition) (murmur_fanout_held_seconds)",
                         "{{topic}}/{{partition}}"),), unit="s"),
            Panel("Dead-lettered", "Poison messages sent to the dead-letter topic, by reason.",
                  (Query("sum by (reason) (rate(murmur_fanout_dead_lettered_total[5m]))",
                         "{{reason}}"),), unit="ops"),
        )),
    ),
)

RESILIENCE = Dashboard(
    slug="murmur-resilience",
    uid="murmur-resilience",
    title="Murmur: resilience",
    description="Circuit breakers, retries, bulkheads and load shedding.",
    rows=(
        Row("Circuit breakers", (
            Panel("Breaker state", "0 closed, 1 half-open, 2 open; the highest over a "
                  "process's workers.",
                  (Query("max by (job, breaker) (murmur_breaker_state)", "{{breaker}}"),),
                  width=12),
            Panel("Breaker transitions", "Transitions per second, by the state entered.",
                  (Query("sum by (job, breaker, to) "
                         "(rate(murmur_breaker_transitions_total[1m]))",
                         "{{breaker}} -> {{to}}"),), unit="ops"),
            Panel("Calls refused by an open breaker", "Failed fast without calling the "
                  "dependency.",
                  (Query("sum by (job, breaker) (rate(murmur_breaker_rejections_total[1m]))",
                         "{{breaker}}"),), unit="ops"),
        )),
        Row("Retries and outcomes", (
            Panel("Retries", "Repeated idempotent calls, by dependency and operation.",
                  (Query("sum by (job, dependency, operation) "
                         "(rate(murmur_retries_total[1m]))",
                         "{{job}} {{dependency}} {{operation}}"),), unit="ops"),
            Panel("Downstream calls by outcome", "Calls between services, by how they ended.",
                  (Query("sum by (job, downstream, outcome) "
                         "(rate(murmur_downstream_request_duration_seconds_count[1m]))",
                         "{{job}} -> {{downstream}} {{outcome}}"),), unit="ops"),
            Panel("Degraded answers", "Answers served from a fallback (Murmur-Degraded), by "
                  "reason, as each service answered them; the gateway's are what clients saw.",
                  (Query("sum by (job, reason) (rate(murmur_degraded_responses_total[1m]))",
                         "{{job}} {{reason}}"),), unit="ops", on_event=True),
            Panel("Sign-ups and sign-ins shed", "Refused at once because every "
                  "password-hashing slot was busy (users' load shedding).",
                  (Query("sum by (job) "
                         "(rate(murmur_users_password_work_refused_total[1m]))",
                         "{{job}}"),), unit="ops"),
            Panel("Gateway 503 and 429 share", "Answers that told the client to come back "
                  "later (Retry-After), over all answers.",
                  (Query(f'(sum by (job) (rate(murmur_http_requests_total{{job="gateway", '
                         f'{NOT_TRAFFIC}, status=~"503|429"}}[1m])) or sum by (job) '
                         f'(rate(murmur_http_requests_total{{job="gateway", {NOT_TRAFFIC}}}'
                         f'[1m])) * 0) / sum by (job) (rate(murmur_http_requests_total'
                         f'{{job="gateway", {NOT_TRAFFIC}}}[1m]))', "{{job}}"),),
                  unit="percentunit"),
        )),
    ),
)

DASHBOARDS = (GOLDEN, PIPELINE, RESILIENCE)


# ------------------------------------------------------------------------------ formats


def vmui(dashboard: Dashboard) -> dict:
    """The dashboard in vmui's custom dashboard format (title, rows of panels with expr)."""
    return {
        "title": dashboard.title,
        "rows": [{
            "title": row.title,
            "panels": [{
                "title": p.title,
                "description": p.description,
                "unit": p.unit_label(),
                "width": p.width,
                "expr": [q.expr for q in p.queries],
            } for p in row.panels],
        } for row in dashboard.rows],
    }


def grafana(dashboard: Dashboard) -> dict:
    """The dashboard as Grafana dashboard JSON, its data source chosen by a variable."""
    datasource = {"type": "prometheus", "uid": "${datasource}"}
    panels: list[dict] = []
    y, next_id = 0, 1
    for row in dashboard.rows:
        panels.append({"type": "row", "id": next_id, "title": row.title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        next_id, y, x = next_id + 1, y + 1, 0
        for p in row.panels:
            w = p.width * 2
            if x + w > 24:
                x, y = 0, y + 8
            panels.append({
                "type": "timeseries",
                "id": next_id,
                "title": p.title,
                "description": p.description,
                "datasource": datasource,
                "gridPos": {"h": 8, "w": w, "x": x, "y": y},
                "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom",
                                       "showLegend": True},
                            "tooltip": {"mode": "multi", "sort": "desc"}},
                "targets": [{"refId": chr(ord("A") + i), "datasource": datasource,
                             "expr": q.expr, "legendFormat": q.legend or "__auto"}
                            for i, q in enumerate(p.queries)],
            })
            next_id, x = next_id + 1, x + w
        y += 8
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["murmur"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "10s",
        "time": {"from": "now-30m", "to": "now"},
        "timezone": "browser",
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": [{
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
            "refresh": 1,
            "regex": "",
            "includeAll": False,
            "multi": False,
        }]},
        "panels": panels,
    }


def _json(document: dict) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def outputs() -> dict[Path, str]:
    """Every generated file and the text it must hold."""
    files = {}
    for d in DASHBOARDS:
        files[VMUI_DIR / f"{d.slug}.json"] = _json(vmui(d))
        files[GRAFANA_DIR / f"{d.slug}.json"] = _json(grafana(d))
    files[CHART_RULES] = RULES.read_text()
    return files


# ------------------------------------------------------------------------- what exists


def expressions() -> list[tuple[str, Panel, str]]:
    """(dashboard slug, panel, expression) of every panel query."""
    return [(d.slug, p, q.expr) for d in DASHBOARDS for p in d.panels() for q in p.queries]


_DECLARATION = re.compile(r'\b(Counter|Gauge|Histogram|Summary)\(\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"')
# Series a scraper adds itself (not declared by the services).
SCRAPE_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})


def declared_metrics(root: Path = REPO / "services") -> dict[str, str]:
    """Series names the services' code can expose, mapped to the metric they belong to.

    Read from the prometheus_client declarations in the source: a Counter `x` exposes
    `x_total`, a Histogram `x` exposes `x_bucket`, `x_count` and `x_sum`.
    """
    series: dict[str, str] = {}
    for path in sorted(root.rglob("*.py")):
        for kind, name in _DECLARATION.findall(path.read_text()):
            if kind == "Counter":
                base = name[:-len("_total")] if name.endswith("_total") else name
                series[f"{base}_total"] = name
            elif kind in ("Histogram", "Summary"):
                for suffix in ("_bucket", "_count", "_sum"):
                    series[name + suffix] = name
            else:
                series[name] = name
    return series


def metric_names(expr: str) -> set[str]:
    """Names of every series an expression selects (vector and range selectors)."""
    import promql_parser  # only the checks need it, not the generator

    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            names.add(node.name)
        elif isinstance(node, promql_parser.MatrixSelector):
            names.add(node.vector_selector.name)

    promql_parser.walk(promql_parser.parse(expr), pre_visit=visit)
    return names


def declaring_packages(series: str, root: Path = REPO / "services") -> set[str]:
    """The service packages (common, gateway, users, timeline, fanout) declaring `series`."""
    metric = declared_metrics(root)[series]
    return {path.relative_to(root).parts[0] for path in root.rglob("*.py")
            if f'"{metric}"' in path.read_text() and _DECLARATION.search(path.read_text())}


def main(argv: list[str]) -> int:
    """Write the generated files, or with --check list the stale ones (exit 1)."""
    stale = [path for path, text in outputs().items()
             if not path.exists() or path.read_text() != text]
    if "--check" in argv:
        for path in stale:
            shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
            print(f"stale: {shown} (run `make dashboards`)")
        return 1 if stale else 0
    for path, text in outputs().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(f"wrote {len(outputs())} files ({len(stale)} changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
