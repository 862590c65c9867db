"""The system's state as a public summary: what the gateway reads from each process, and
the one way those readings become the summary (`summarize`).

Everything here is pure: the adapters read `/readyz` and `/metrics`, the service layer
keeps the earlier readings, and this module turns them into states and numbers. A summary
never carries what a reading may hold besides states and numbers (addresses, messages of
errors): only names it knows, and figures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

UP, DEGRADED, DOWN, UNKNOWN = "up", "degraded", "down", "unknown"
OK = "ok"

# The shape of DESIGN §1: every component, what kind it is, in the order a diagram reads.
COMPONENTS: tuple[tuple[str, str], ...] = (
    ("nginx", "edge"), ("gateway", "service"), ("users", "service"),
    ("timeline", "service"), ("fanout", "worker"), ("users-relay", "worker"),
    ("timeline-relay", "worker"), ("timeline-authors", "worker"),
    ("postgres", "store"), ("redis", "store"), ("cassandra", "store"), ("kafka", "store"))
STORES = tuple(name for name, kind in COMPONENTS if kind == "store")
# The processes the gateway reads over HTTP (itself it reads in-process).
SOURCES = ("users", "timeline", "fanout", "users-relay", "timeline-relay", "timeline-authors")

# Who calls whom, or where data flows (a consumer is fed by Kafka): the arrows of DESIGN §1.
EDGES: tuple[tuple[str, str], ...] = (
    ("nginx", "gateway"), ("gateway", "users"), ("gateway", "timeline"),
    ("users", "postgres"), ("users", "redis"), ("users-relay", "postgres"),
    ("users-relay", "kafka"), ("timeline", "cassandra"), ("timeline", "redis"),
    ("timeline", "users"), ("timeline-relay", "cassandra"), ("timeline-relay", "redis"),
    ("timeline-relay", "kafka"), ("kafka", "timeline-authors"),
    ("timeline-authors", "cassandra"), ("kafka", "fanout"), ("fanout", "users"),
    ("fanout", "timeline"), ("fanout", "redis"))

# The readiness checks that reach a store, by check name (a consumer loop that stopped
# polling is the sign of Kafka the workers give).
CHECKED_STORES = {"postgres": "postgres", "redis": "redis", "cassandra": "cassandra",
                  "consumer": "kafka"}
# A breaker's dependency part that is not a component's own name.
BREAKER_TARGETS = {"users_sign_in": "users"}
BREAKER_STATES = {0: "closed", 1: "half_open", 2: "open"}
# The service a process's caches belong to (a relay or projection is part of its service).
OWNER = {"users-relay": "users", "timeline-relay": "timeline", "timeline-authors": "timeline"}

# What a name read from a process may look like before it is shown: a check, a breaker or
# a cache is named in lowercase words; anything else (an address, a message) is dropped.
SAFE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}(\.[a-z][a-z0-9_]{0,39})?$")

# Seconds of earlier readings the recent figures (fan-out lag, cache hit ratios) cover.
WINDOW = 60.0

FANOUT_LAG = "murmur_fanout_lag_seconds"


@dataclass(frozen=True)
class Sample:
    """One sample of a process's metrics: its name, labels and value."""

    name: str
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Reading:
    """What one process showed: whether it answered, its readiness, its metric samples.

    `ready` is None when its readiness did not answer (in time); `passing` and `failing`
    name its readiness checks (a failing answer names only the failing ones).
    `observed` is False for a process the gateway is not configured to read.
    """

    process: str
    answered: bool
    ready: bool | None = None
    passing: tuple[str, ...] = ()
    failing: tuple[str, ...] = ()
    samples: tuple[Sample, ...] = ()
    observed: bool = True

    def values(self, name: str) -> list[tuple[Mapping[str, str], float]]:
        """The (labels, value) of each sample called `name`."""
        return [(s.labels, s.value) for s in self.samples if s.name == name]


def unobserved(process: str) -> Reading:
    """The reading of a process the gateway does not read."""
    return Reading(process, answered=False, observed=False)


@dataclass(frozen=True)
class Recent:
    """Counters now, and how much they grew over the last `seconds` (None: no earlier
    reading is recent enough, so the figures are since each process started)."""

    totals: Mapping[tuple[str, ...], float]
    growth: Mapping[tuple[str, ...], float] | None = None
    seconds: float | None = None

    def figure(self, key: tuple[str, ...]) -> float:
        """The counter's growth over the window, or its total when there is no window."""
        source = self.growth if self.growth is not None else self.totals
        return source.get(key, 0.0)


def counters(readings: Mapping[str, Reading]) -> dict[tuple[str, ...], float]:
    """The cumulative counters the recent figures are made of, summed by key: the fan-out
    lag histogram's sum and count, and each cache's hits and misses."""
    found: dict[tuple[str, ...], float] = {}

    def add(key: tuple[str, ...], value: float) -> None:
        found[key] = found.get(key, 0.0) + value

    for reading in readings.values():
        for labels, value in reading.values(FANOUT_LAG + "_sum"):
            add(("fanout_lag", "sum"), value)
        for labels, value in reading.values(FANOUT_LAG + "_count"):
            add(("fanout_lag", "count"), value)
        owner = OWNER.get(reading.process, reading.process)
        for labels, value in reading.values("murmur_cache_requests_total"):
            cache, result = labels.get("cache", ""), labels.get("result", "")
            name = f"{owner}.{cache}"
            if SAFE_NAME.match(name) and result in ("hit", "miss"):
                add(("cache", name, result), value)
    return found


def growth(earlier: Mapping[tuple[str, ...], float],
           now: Mapping[tuple[str, ...], float]) -> dict[tuple[str, ...], float]:
    """How much each counter grew; one that went down was reset (its process restarted),
    so all of its value now is growth."""
    return {key: (value - earlier[key] if key in earlier and value >= earlier[key] else value)
            for key, value in now.items()}


def _breaker_target(name: str) -> str | None:
    dependency = name.partition(".")[2]
    return BREAKER_TARGETS.get(dependency, dependency) or None


@dataclass
class _Facts:
    """The readings, indexed the way the summary asks about them."""

    readings: Mapping[str, Reading]
    breakers: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for process, reading in self.readings.items():
            states: dict[str, int] = {}
            for labels, value in reading.values("murmur_breaker_state"):
                name = labels.get("breaker", "")
                if SAFE_NAME.match(name):
                    # One sample per breaker, or one per worker: the worst one counts.
                    states[name] = max(states.get(name, 0), int(value))
            self.breakers += [{"process": process, "name": name,
                               "state": BREAKER_STATES.get(state, "open")}
                              for name, state in sorted(states.items())]

    def not_closed_towards(self, component: str) -> list[str]:
        """The breakers towards `component` that do not let every call through."""
        return [b["name"] for b in self.breakers
                if b["state"] != "closed" and _breaker_target(b["name"]) == component]

    def not_closed_in(self, process: str) -> list[str]:
        """`process`'s own breakers that do not let every call through."""
        return [b["name"] for b in self.breakers
                if b["process"] == process and b["state"] != "closed"]


def _process_component(facts: _Facts, name: str, kind: str) -> dict[str, str]:
    reading = facts.readings.get(name) or unobserved(name)
    if not reading.observed:
        return _component(name, kind, UNKNOWN, "not observed from the gateway")
    if not reading.answered:
        return _component(name, kind, DOWN, "not answering")
    if reading.ready is None:
        return _component(name, kind, DEGRADED, "readiness did not answer in time")
    if not reading.ready:
        failing = [c for c in reading.failing if SAFE_NAME.match(c)]
        return _component(name, kind, DEGRADED,
                          "not ready: " + (", ".join(failing) or "a check fails") + " failing")
    inside = facts.not_closed_in(name)
    if inside:
        return _component(name, kind, DEGRADED, "breaker not closed: " + ", ".join(inside))
    towards = facts.not_closed_towards(name)
    if towards:
        return _component(name, kind, DEGRADED, "breaker to it not closed: " + ", ".join(towards))
    return _component(name, kind, UP, "ready")


def _store_component(facts: _Facts, store: str) -> dict[str, str]:
    checks = [check for check, target in CHECKED_STORES.items() if target == store]
    passing, failing = [], []
    for process, reading in facts.readings.items():
        if not reading.answered:
            continue
        if any(c in reading.failing for c in checks):
            failing.append(process)
        elif any(c in reading.passing for c in checks):
            passing.append(process)
    towards = facts.not_closed_towards(store)
    if failing:
        status = DOWN if not passing else DEGRADED
        return _component(store, "store", status, f"{', '.join(failing)} cannot reach it")
    if towards:
        return _component(store, "store", DEGRADED,
                          "breaker to it not closed: " + ", ".join(towards))
    if passing:
        return _component(store, "store", UP, "reached by " + ", ".join(passing))
    return _component(store, "store", UNKNOWN, "no service that uses it answered")


def _component(name: str, kind: str, status: str, detail: str) -> dict[str, str]:
    return {"name": name, "kind": kind, "status": status, "detail": detail}


def _sum(readings: Iterable[Reading], name: str) -> float | None:
    """The sum of a metric's samples over the processes that export it (None: none does)."""
    values = [value for reading in readings if reading.answered
              for _labels, value in reading.values(name)]
    return sum(values) if values else None


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def pipeline(readings: Mapping[str, Reading], recent: Recent) -> dict[str, Any]:
    """Consumer lags, the recent mean fan-out lag and the outboxes' backlog."""
    count = recent.figure(("fanout_lag", "count"))
    lag = recent.figure(("fanout_lag", "sum")) / count if count > 0 else None
    pick = lambda *names: [readings[n] for n in names if n in readings]  # noqa: E731
    return {
        "consumer_lag": _int(_sum(pick("fanout"), "murmur_fanout_consumer_lag")),
        "fanout_lag_seconds": None if lag is None else round(lag, 4),
        "outbox_backlog": _int(_sum(pick("users-relay", "timeline-relay"),
                                    "murmur_outbox_backlog")),
        "authors_consumer_lag": _int(_sum(pick("timeline-authors"),
                                          "murmur_timeline_author_consumer_lag")),
    }


def caches(recent: Recent) -> list[dict[str, Any]]:
    """Each cache's hit ratio and lookups, over the window (or since its process started)."""
    names = sorted({key[1] for key in recent.totals if key[0] == "cache"})
    shown = []
    for name in names:
        hits = recent.figure(("cache", name, "hit"))
        lookups = hits + recent.figure(("cache", name, "miss"))
        shown.append({"name": name, "hit_ratio": round(hits / lookups, 4) if lookups else None,
                      "requests": int(lookups)})
    return shown


def summarize(readings: Mapping[str, Reading], recent: Recent, at: datetime) -> dict[str, Any]:
    """The public summary of the system from the readings of its processes (the gateway's
    own among them, as `gateway`); nginx is judged per request (`seen_through_edge`)."""
    facts = _Facts(readings)
    kinds = dict(COMPONENTS)
    components = [_process_component(facts, name, kinds[name])
                  for name, _kind in COMPONENTS if name not in STORES and name != "nginx"]
    components += [_store_component(facts, store) for store in STORES]
    by_name = {c["name"]: c for c in components}
    reachable = [service for service in ("users", "timeline")
                 if by_name[service]["status"] != DOWN
                 and f"gateway.{service}" not in facts.not_closed_in("gateway")]
    if not reachable:
        status = DOWN
    elif (any(c["status"] not in (UP, UNKNOWN) for c in components)
          or any(b["state"] != "closed" for b in facts.breakers)):
        status = DEGRADED
    else:
        status = OK
    return {
        "generated_at": at.astimezone(timezone.utc).isoformat(timespec="milliseconds")
                          .replace("+00:00", "Z"),
        "status": status,
        "components": components,
        "edges": [{"from": a, "to": b} for a, b in EDGES],
        "breakers": facts.breakers,
        "pipeline": pipeline(readings, recent),
        "caches": caches(recent),
        "window_seconds": None if recent.seconds is None else round(recent.seconds, 1),
    }


def seen_through_edge(summary: Mapping[str, Any], via_edge: bool) -> dict[str, Any]:
    """The summary with the edge's component: up when this request came through it (its
    answer is the proof), unknown when the gateway was asked directly."""
    edge = (_component("nginx", "edge", UP, "forwarding requests") if via_edge
            else _component("nginx", "edge", UNKNOWN, "asked directly, not through the edge"))
    return {**summary, "components": [edge, *summary["components"]]}
