"""The system status use case: read every process at most once per `max_age` seconds,
whoever asks and however often, and keep the readings of the last minute for the recent
figures (fan-out lag, cache hit ratios)."""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import datetime, timezone
from typing import Any, Callable

from gateway.domain import status
from gateway.service_layer.ports import StatusSources


class StatusBoard:
    """The summary of the system, assembled one at a time and shared for `max_age` seconds.

    A request that finds the summary fresh gets it at once; one that finds it stale either
    assembles it or, while another request does, waits for that one and shares its result,
    so a flood of status requests costs the sources at most one reading per `max_age`.
    """

    def __init__(self, sources: StatusSources, *, max_age: float = 2.0,
                 window: float = status.WINDOW,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.sources = sources
        self.max_age = max_age
        self.window = window
        self.clock = clock
        self.wall_clock = wall_clock
        self.assemblies = 0
        self._lock = threading.Lock()
        self._latest: tuple[float, dict[str, Any]] | None = None
        self._history: deque[tuple[float, dict[tuple[str, ...], float]]] = deque()

    def _fresh(self) -> dict[str, Any] | None:
        latest = self._latest
        if latest is not None and self.clock() - latest[0] < self.max_age:
            return latest[1]
        return None

    def summary(self) -> dict[str, Any]:
        """The current summary (at most `max_age` seconds old)."""
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        with self._lock:
            fresh = self._fresh()  # assembled by the request this one waited for
            if fresh is not None:
                return fresh
            readings = self.sources.read()
            read_at = self.clock()
            made = status.summarize(readings, self._recent(read_at, status.counters(readings)),
                                    self.wall_clock())
            self.assemblies += 1
            # Fresh from when it was made, not from when the reading began: a slow source
            # never makes the next reading start at once.
            self._latest = (self.clock(), made)
            return made

    def _recent(self, now: float, totals: dict[tuple[str, ...], float]) -> status.Recent:
        while self._history and now - self._history[0][0] > self.window:
            self._history.popleft()
        recent = status.Recent(totals)
        if self._history and now > self._history[0][0]:
            since, earlier = self._history[0]
            recent = status.Recent(totals, status.growth(earlier, totals), now - since)
        self._history.append((now, totals))
        return recent


def system_status(board: StatusBoard, via_edge: bool) -> dict[str, Any]:
    """The public summary of the system; `via_edge`: the request came through the edge."""
    return status.seen_through_edge(board.summary(), via_edge)
