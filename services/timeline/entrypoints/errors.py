"""The one mapping from the timeline's errors to problem+json answers.

Handed to `common.web.create_base_app(errors=...)`; invalid input and bad cursors are
answered by the shared mapping (422). Nothing below the entrypoints knows a status code.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from common import outages, resilience
from common.problems import Problem, not_found, unavailable
from timeline.domain.errors import (AuthorNotFound, DependencyUnavailable, IdempotencyConflict,
                                    NotTheAuthor, TweetNotFound)

log = logging.getLogger("murmur.timeline")

# A store that does not answer in time is a 503 with Retry-After, never a 500. Most reach
# here as DependencyUnavailable; the outages of these stores (`common.outages`) are what a
# call outside the adapters' guards (the first connect, preparing a statement, leasing a
# worker id) may raise.
STORES: tuple[outages.Kind, ...] = ("cassandra", "redis")


def _conflict(exc: IdempotencyConflict) -> Problem:
    headers = {"Retry-After": str(exc.retry_in)} if exc.retry_in is not None else None
    return Problem(409, exc.detail, headers=headers)


def _dependency_down(exc: DependencyUnavailable) -> Problem:
    # Logged at info: while a breaker is open this answers every request, fast.
    log.info("dependency unavailable: %s", exc)
    return unavailable("A dependency is not answering; try again.", exc.retry_in)


def _store_down(exc: Exception) -> Problem:
    log.warning("store unavailable: %s: %s", type(exc).__name__, exc)
    return unavailable("A data store is not answering; try again.")


def _store_error(kind: outages.Kind) -> Callable[[Exception], Problem]:
    """The problem for an error of a `kind` store: a 503 for an outage; anything else is
    the store answering (an invalid query, a wrong Redis command), a bug: a 500."""

    def to_problem(exc: Exception) -> Problem:
        if outages.is_outage(kind, exc):
            return _store_down(exc)
        log.error("%s answered with an error: %s: %s", kind, type(exc).__name__, exc,
                  exc_info=exc)
        return Problem(500, "An unexpected error occurred.")

    return to_problem


ERRORS: dict[type, Callable[[Any], Problem]] = {
    TweetNotFound: lambda exc: not_found(str(exc)),
    AuthorNotFound: lambda exc: not_found(str(exc)),
    NotTheAuthor: lambda exc: Problem(403, str(exc)),
    IdempotencyConflict: _conflict,
    DependencyUnavailable: _dependency_down,
    resilience.DeadlineExceeded: lambda exc: unavailable("The request ran out of time; try again."),
    resilience.CircuitBreakerError: _store_down,
    **{error: _store_error(kind) for kind in STORES for error in outages.exceptions(kind)},
}
