"""Every process's own account of itself, as the status summary reads it: `/readyz` and
`/metrics` of each process over HTTP, all at once, and the gateway's own in-process.

These reads have a pool, a thread pool and a timeout of their own and go through no
breaker: a process that is slow to describe itself costs the summary one short timeout,
never a connection or a breaker that the API's calls to users and timeline depend on.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping

import urllib3
from prometheus_client.parser import text_string_to_metric_families

from common.web import metrics_payload

from gateway.domain.status import SOURCES, Reading, Sample, unobserved

log = logging.getLogger("murmur.gateway.status")

# The metrics the summary is made of; every other family is skipped while parsing.
WANTED = frozenset({
    "murmur_breaker_state", "murmur_fanout_consumer_lag", "murmur_fanout_lag_seconds",
    "murmur_outbox_backlog", "murmur_timeline_author_consumer_lag", "murmur_cache_requests",
})
OWN = "gateway"


def samples(text: str, keep: Callable[[Sample], bool] = lambda _s: True) -> tuple[Sample, ...]:
    """The samples of the wanted families of a Prometheus text (none if it does not parse)."""
    try:
        return tuple(
            sample for family in text_string_to_metric_families(text) if family.name in WANTED
            for sample in (Sample(s.name, dict(s.labels), float(s.value)) for s in family.samples)
            if keep(sample))
    except Exception:  # noqa: BLE001 - a text that is not Prometheus's tells nothing
        return ()


def readiness(status: int, body: bytes) -> tuple[bool | None, tuple[str, ...], tuple[str, ...]]:
    """(ready, passing checks, failing checks) of a `/readyz` answer."""
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        parsed = None
    parsed = parsed if isinstance(parsed, dict) else {}
    if status == 200:
        checks = parsed.get("checks")
        return True, tuple(str(c) for c in checks if isinstance(c, str)) if isinstance(
            checks, list) else (), ()
    if status == 503:
        errors = parsed.get("errors")
        failing = tuple(str(e["field"]) for e in errors if isinstance(e, dict) and "field" in e
                        ) if isinstance(errors, list) else ()
        return False, (), failing
    return None, (), ()


class HttpStatusSources:
    """Reads the processes at `urls` (process name: base URL) and the gateway itself."""

    def __init__(self, urls: Mapping[str, str], *, timeout: float = 0.5,
                 own_checks: Mapping[str, Callable[[], Any]] | None = None,
                 own_metrics: Callable[[], bytes] = metrics_payload) -> None:
        self.urls = {name: url.rstrip("/") for name, url in urls.items()}
        self.own_checks = dict(own_checks or {})
        self.own_metrics = own_metrics
        # `total` bounds each read as a whole, however slowly a process trickles its answer.
        self.pool = urllib3.PoolManager(num_pools=max(1, len(self.urls)), maxsize=2, block=False,
                                        retries=False, timeout=urllib3.Timeout(total=timeout))
        # Two reads per process, all at once: the summary takes as long as the slowest one.
        self.executor = ThreadPoolExecutor(max_workers=max(1, 2 * len(self.urls)),
                                           thread_name_prefix="status-read")

    def _get(self, url: str) -> tuple[int, bytes] | None:
        try:
            resp = self.pool.request("GET", url, headers={"Accept": "application/json"},
                                     redirect=False)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            log.debug("status read of %s failed: %s", url, type(exc).__name__)
            return None
        return resp.status, resp.data

    def read(self) -> dict[str, Reading]:
        """One reading per process of `SOURCES` (unobserved if it has no URL) and the gateway."""
        pending = {(name, path): self.executor.submit(self._get, f"{url}/{path}")
                   for name, url in self.urls.items() for path in ("readyz", "metrics")}
        readings = {OWN: self.own_reading()}
        for name in SOURCES:
            if name not in self.urls:
                readings[name] = unobserved(name)
                continue
            ready_answer = pending[(name, "readyz")].result()
            metrics_answer = pending[(name, "metrics")].result()
            ready, passing, failing = (readiness(*ready_answer) if ready_answer
                                       else (None, (), ()))
            found = (samples(metrics_answer[1].decode("utf-8", "replace"))
                     if metrics_answer and metrics_answer[0] == 200 else ())
            readings[name] = Reading(name, answered=bool(ready_answer or metrics_answer),
                                     ready=ready, passing=passing, failing=failing,
                                     samples=found)
        return readings

    def own_reading(self) -> Reading:
        """The gateway's own readiness checks and breakers, read in this process."""
        failing = []
        for check_name, check in self.own_checks.items():
            try:
                check()
            except Exception:  # noqa: BLE001 - any failure means not ready
                failing.append(check_name)
        # Its breakers only (in a test process, other services' metrics share the registry).
        own = samples(self.own_metrics().decode("utf-8", "replace"),
                      lambda s: s.name == "murmur_breaker_state"
                      and s.labels.get("breaker", "").startswith(OWN + "."))
        return Reading(OWN, answered=True, ready=not failing,
                       passing=tuple(c for c in self.own_checks if c not in failing),
                       failing=tuple(failing), samples=own)

    def close(self) -> None:
        """Stop the reading threads and close the pooled connections."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.pool.clear()
