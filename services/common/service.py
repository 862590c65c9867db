"""The one shape of a wired service: what every `bootstrap()` returns.

Each service's `bootstrap(config=None, **overrides)` builds its adapters, hands them to
its handlers as a `ports` object, and returns a `Service`. Overrides replace adapters by
name (tests pass fakes or fresh breakers); whatever bootstrap made itself, it closes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Mapping, TypeVar

log = logging.getLogger(__name__)

C = TypeVar("C")
P = TypeVar("P")
T = TypeVar("T")


@dataclass
class Service(Generic[C, P]):
    """A wired service: its config, the ports its handlers use, readiness checks, closers."""

    name: str
    config: C
    ports: P
    checks: dict[str, Callable[[], Any]] = field(default_factory=dict)
    closers: list[Callable[[], Any]] = field(default_factory=list)

    def close(self) -> None:
        """Close what bootstrap made, newest first; one failing does not stop the rest."""
        for close in reversed(self.closers):
            try:
                close()
            except Exception:  # noqa: BLE001 - best effort at shutdown
                log.warning("closing %s failed", getattr(close, "__qualname__", close),
                            exc_info=True)
        self.closers.clear()


class Overrides:
    """The `**overrides` of a bootstrap call: each name used once, unknown names refused."""

    def __init__(self, allowed: set[str], given: Mapping[str, Any]) -> None:
        unknown = set(given) - allowed
        if unknown:
            raise TypeError(f"unknown overrides {sorted(unknown)}; allowed: {sorted(allowed)}")
        self._given = dict(given)

    def has(self, name: str) -> bool:
        """Whether the caller supplied `name`."""
        return name in self._given

    def get(self, name: str, make: Callable[[], T], closers: list[Callable[[], Any]] | None = None,
            close: Callable[[T], Any] | None = None) -> T:
        """The caller's `name`, else `make()`; a made one's `close` is added to `closers`."""
        if name in self._given and self._given[name] is not None:
            return self._given[name]
        made = make()
        if closers is not None:
            closer = close or getattr(made, "close", None)
            if closer is not None:
                closers.append((lambda: closer(made)) if close else closer)
        return made
