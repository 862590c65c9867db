"""Service-level objectives of a load run: read them from a TOML file, judge a run by them.

An SLO file is a list of `[[slo]]` tables, each naming one objective:

    [[slo]]
    route = "GET /timeline"   # "<METHOD> <route template>" as Locust names it, or "*" for all
    metric = "p95"            # p50 p95 p99 (ms), error_ratio, throttled_ratio,
    max = 500                 #   unavailable_ratio (0..1), rps (requests/s)
                              # "max" for latencies and ratios, "min" for rps

Failures are split three ways, because they mean different things:
- `throttled`: 429 answers (nginx's rate limiter: the load generator was throttled);
- `unavailable`: 503 answers carrying Retry-After (a dependency down, the service said so);
- errors: every other failure (wrong status, timeout, connection refused, not visible).

`evaluate` is pure: it takes `RouteStats` (a count histogram of response times, as Locust
keeps one) and the objectives, and returns one `Result` per objective.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

LATENCY_METRICS = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99, "p999": 0.999}
RATIO_METRICS = {"error_ratio", "throttled_ratio", "unavailable_ratio"}
METRICS = set(LATENCY_METRICS) | RATIO_METRICS | {"rps"}
ALL = "*"


class SLOFileError(ValueError):
    """The SLO file is not what this module reads."""


@dataclass(frozen=True)
class Objective:
    route: str
    metric: str
    max: float | None = None
    min: float | None = None
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or f"{self.route} {self.metric}"

    @property
    def threshold(self) -> str:
        unit = " ms" if self.metric in LATENCY_METRICS else (" /s" if self.metric == "rps" else "")
        if self.max is not None:
            value = f"{self.max:.2%}" if self.metric in RATIO_METRICS else f"{self.max:g}{unit}"
            return f"<= {value}"
        return f">= {self.min:g}{unit}"


@dataclass
class RouteStats:
    """What a run (or a window of it) measured on one route, `<METHOD> <name>`."""

    route: str
    requests: int = 0
    failures: int = 0  # every failure Locust counted, throttled and unavailable included
    throttled: int = 0
    unavailable: int = 0
    histogram: dict[int, int] = field(default_factory=dict)  # rounded ms -> count
    seconds: float = 0.0  # how long the run or window lasted (for rps)

    @property
    def errors(self) -> int:
        return max(0, self.failures - self.throttled - self.unavailable)

    def percentile(self, q: float) -> float | None:
        return percentile(self.histogram, q)

    def minus(self, earlier: "RouteStats") -> "RouteStats":
        """What happened between `earlier` and this snapshot of the same route."""
        hist = {ms: n - earlier.histogram.get(ms, 0) for ms, n in self.histogram.items()}
        return RouteStats(self.route, self.requests - earlier.requests,
                          self.failures - earlier.failures, self.throttled - earlier.throttled,
                          self.unavailable - earlier.unavailable,
                          {ms: n for ms, n in hist.items() if n > 0},
                          self.seconds - earlier.seconds)


def percentile(histogram: Mapping[int, int], q: float) -> float | None:
    """The smallest recorded time with at least a fraction `q` of samples at or below it."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for ms in sorted(histogram):
        seen += histogram[ms]
        if seen >= rank:
            return float(ms)
    return float(max(histogram))


def combine(stats: Iterable[RouteStats], route: str = ALL) -> RouteStats:
    """All routes as one (rps over the longest of their durations)."""
    total = RouteStats(route)
    for s in stats:
        total.requests += s.requests
        total.failures += s.failures
        total.throttled += s.throttled
        total.unavailable += s.unavailable
        total.seconds = max(total.seconds, s.seconds)
        for ms, n in s.histogram.items():
            total.histogram[ms] = total.histogram.get(ms, 0) + n
    return total


def load(path: str | Path) -> list[Objective]:
    """The objectives in an SLO file; SLOFileError names what is wrong."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SLOFileError(f"{path}: {exc}") from exc
    entries = data.get("slo")
    if not isinstance(entries, list) or not entries:
        raise SLOFileError(f"{path}: no [[slo]] entries")
    objectives = []
    for n, entry in enumerate(entries, 1):
        where = f"{path}: [[slo]] #{n}"
        unknown = set(entry) - {"route", "metric", "max", "min", "name"}
        if unknown:
            raise SLOFileError(f"{where}: unknown keys {sorted(unknown)}")
        metric, route = entry.get("metric"), entry.get("route")
        if metric not in METRICS:
            raise SLOFileError(f"{where}: metric must be one of {sorted(METRICS)}, not {metric!r}")
        if not isinstance(route, str) or not route:
            raise SLOFileError(f"{where}: route missing")
        has_max, has_min = "max" in entry, "min" in entry
        if metric == "rps" and (not has_min or has_max):
            raise SLOFileError(f"{where}: rps takes a min")
        if metric != "rps" and (not has_max or has_min):
            raise SLOFileError(f"{where}: {metric} takes a max")
        objectives.append(Objective(route, metric, entry.get("max"), entry.get("min"),
                                    entry.get("name", "")))
    return objectives


@dataclass(frozen=True)
class Result:
    objective: Objective
    measured: float | None  # None: no samples to judge
    samples: int
    passed: bool

    @property
    def verdict(self) -> str:
        if self.measured is None:
            return "NO DATA" if not self.passed else "n/a"
        return "PASS" if self.passed else "FAIL"

    @property
    def shown(self) -> str:
        metric = self.objective.metric
        if self.measured is None:
            return f"- ({self.samples} samples)"
        if metric in RATIO_METRICS:
            return f"{self.measured:.2%}"
        if metric == "rps":
            return f"{self.measured:.1f} /s"
        return f"{self.measured:.0f} ms"


def measure(objective: Objective, stats: RouteStats) -> float | None:
    metric = objective.metric
    if metric in LATENCY_METRICS:
        return stats.percentile(LATENCY_METRICS[metric])
    if metric == "rps":
        return stats.requests / stats.seconds if stats.seconds > 0 else None
    if stats.requests == 0:
        return None
    count = {"error_ratio": stats.errors, "throttled_ratio": stats.throttled,
             "unavailable_ratio": stats.unavailable}[metric]
    return count / stats.requests


def evaluate(objectives: Iterable[Objective], stats: Mapping[str, RouteStats],
             min_samples: int = 1, no_data_passes: bool = False,
             skip_metrics: frozenset[str] = frozenset()) -> list[Result]:
    """Judge `stats` (by route) against each objective.

    A route with fewer than `min_samples` requests cannot be judged: that objective fails
    (an SLO nobody could check must not pass silently) unless `no_data_passes`, which the
    ramp uses for rare routes within one short step. `skip_metrics` leaves some out.
    """
    total = combine(s for r, s in stats.items() if not r.startswith(FRESHNESS_PREFIX))
    results = []
    for objective in objectives:
        if objective.metric in skip_metrics:
            continue
        route_stats = total if objective.route == ALL else stats.get(objective.route,
                                                                     RouteStats(objective.route))
        value = measure(objective, route_stats) if route_stats.requests >= min_samples else None
        if value is None:
            results.append(Result(objective, None, route_stats.requests, no_data_passes))
            continue
        ok = value <= objective.max if objective.max is not None else value >= objective.min
        results.append(Result(objective, value, route_stats.requests, ok))
    return results


# Freshness measurements are Locust entries of their own type, not HTTP requests: they are
# judged by their own objectives and left out of the "*" totals.
FRESHNESS_PREFIX = "FRESHNESS "


def breaches(results: Iterable[Result]) -> list[Result]:
    return [r for r in results if not r.passed]


def table(results: Iterable[Result]) -> str:
    """A plain-text table: objective, threshold, measured, samples, verdict."""
    rows = [("objective", "threshold", "measured", "samples", "verdict")]
    rows += [(r.objective.label, r.objective.threshold, r.shown, str(r.samples), r.verdict)
             for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def routes_table(stats: Mapping[str, RouteStats]) -> str:
    """Per route: requests, requests/s, failures and the p50/p95/p99 (ms) of a window."""
    rows = [("route", "requests", "req/s", "failures", "p50", "p95", "p99")]
    for route in sorted(stats, key=lambda r: (r.startswith(FRESHNESS_PREFIX), r.split()[1:], r)):
        s = stats[route]
        if s.requests <= 0:
            continue
        cells = [s.percentile(q) for q in (0.5, 0.95, 0.99)]
        rows.append((route, str(s.requests),
                     f"{s.requests / s.seconds:.1f}" if s.seconds > 0 else "-",
                     str(s.failures), *(f"{c:.0f}" if c is not None else "-" for c in cells)))
    widths = [max(len(r[i]) for r in rows) for i in range(7)]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in
                       enumerate(zip(row, widths))).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def routes_json(stats: Mapping[str, RouteStats]) -> dict[str, dict[str, object]]:
    return {route: {"requests": s.requests, "failures": s.failures, "throttled": s.throttled,
                    "unavailable": s.unavailable, "seconds": round(s.seconds, 1),
                    "p50": s.percentile(0.5), "p95": s.percentile(0.95),
                    "p99": s.percentile(0.99)}
            for route, s in stats.items() if s.requests > 0}


def as_json(results: Iterable[Result]) -> list[dict[str, object]]:
    return [{"objective": r.objective.label, "route": r.objective.route,
             "metric": r.objective.metric, "max": r.objective.max, "min": r.objective.min,
             "measured": r.measured, "samples": r.samples, "verdict": r.verdict}
            for r in results]
