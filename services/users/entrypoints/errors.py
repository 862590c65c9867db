"""The one mapping from the users service's exceptions to problem+json responses.

The domain raises plain exceptions; only this module, at the edge of the service, knows
which HTTP status and headers each one is answered with. `create_app` hands `MAPPING` to
`common.web.create_base_app` (which adds the shared rules' InvalidInput and
InvalidCursor as 422). The problems that only the HTTP layer can detect (a missing
identity, an If-Match header) are made here too, so every answer of the service is
written in this one file.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from common import outages
from common.problems import Problem, unavailable
from common.resilience import DeadlineExceeded
from users.domain.errors import (
    IdempotencyKeyReused,
    InvalidCredentials,
    SignupKeyTaken,
    PasswordWorkBusy,
    TooManyAttempts,
    StoreUnavailable,
    UsernameTaken,
    UserNotFound,
    VersionMismatch,
)

log = logging.getLogger("murmur.users")


def _store_error(kind: outages.Kind) -> Callable[[Exception], Problem]:
    """The problem for an error of a `kind` store that escaped the adapters (they turn
    outages into StoreUnavailable; e.g. the worker-id lease on Redis does not)."""

    def to_problem(exc: Exception) -> Problem:
        if outages.is_outage(kind, exc):
            # A store that does not answer is a 503 the gateway can retry or route around,
            # not a 500 that reads like a bug.
            log.warning("%s unavailable: %s: %s", kind, type(exc).__name__, exc)
            return unavailable("A data store is not answering; try again.")
        # The store answered: a deadlock or a serialization failure (no use case here
        # retries one; follows lock their rows in id order so that none happens), a wrong
        # command. Not an outage, so no 503 that invites retrying it: a bug, logged as one.
        log.error("%s answered with an error: %s: %s", kind, type(exc).__name__, exc,
                  exc_info=exc)
        return Problem(500, "An unexpected error occurred.")

    return to_problem


MAPPING: dict[type, Callable[[Any], Problem]] = {
    UserNotFound: lambda exc: Problem(404, exc.detail),
    UsernameTaken: lambda exc: Problem(409, str(exc),
                                       errors=[{"field": "username", "message": "is taken"}]),
    InvalidCredentials: lambda exc: Problem(401, str(exc)),
    TooManyAttempts: lambda exc: Problem(429, str(exc),
                                         headers={"Retry-After": str(exc.retry_in)}),
    # Deliberate (Retry-After): the service is healthy and busy; no breaker counts it.
    PasswordWorkBusy: lambda exc: unavailable(str(exc), retry_after=exc.retry_in),
    SignupKeyTaken: lambda exc: Problem(
        409, "A sign-up with this Idempotency-Key is under way; repeat it to get the account."),
    IdempotencyKeyReused: lambda exc: Problem(
        422, str(exc), errors=[{"field": "Idempotency-Key",
                                "message": "already created an account with another username"}]),
    VersionMismatch: lambda exc: Problem(412, str(exc)),
    StoreUnavailable: lambda exc: unavailable(
        "The user database is not answering; try again shortly.", retry_after=exc.retry_in),
    # The caller has stopped waiting; say so cheaply instead of finishing the work.
    DeadlineExceeded: lambda exc: unavailable("The request's deadline passed; try again."),
    # Every class a store's outage is raised as; `_store_error` tells the outage (503)
    # from the store's answer under the same class (500).
    **{cls: _store_error(kind) for kind in ("postgres", "redis")
       for cls in outages.exceptions(kind)},
}


# ---------------------------------------------------------- problems of the HTTP layer


def authentication_required() -> Problem:
    """401: no caller identity (X-User-Id, set by the gateway from the token)."""
    return Problem(401, "Authentication is required.", headers={"WWW-Authenticate": "Bearer"})


def not_your_account() -> Problem:
    """403: the caller acts on another user's account."""
    return Problem(403, "You can only act on your own account.")


def if_match_required(detail: str) -> Problem:
    """428: an edit without a usable If-Match could overwrite a change the client never
    saw (`detail`: what was wrong with it)."""
    return Problem(428, detail)


def if_match_unknown() -> Problem:
    """412: If-Match names no version this service issues (a weak or foreign tag)."""
    return Problem(412, "If-Match does not name a version of this profile.")
