"""The gateway's one mapping from what can go wrong to problem+json answers.

- A peer's own refusal (`Rejected`: a 4xx, or a deliberate 503 with Retry-After) passes
  through unchanged, with the headers a client should see.
- A peer without an answer (`PeerUnavailable`) or with a garbled one (`BadAnswer`) is a 503
  with Retry-After; an open breaker says to come back when it will try the peer again.
- A caller without a valid token is a 401 naming the scheme to use (RFC 6750).
"""

from __future__ import annotations

import math
from typing import Callable

from common.client import BadAnswer, BreakerOpen, OutOfTime, PeerUnavailable, Rejected
from common.problems import Problem, unavailable

from gateway.domain.errors import Unauthenticated

# Headers of a peer's answer the gateway hands on to its client.
PASSED_HEADERS = ("ETag", "Retry-After", "Murmur-Degraded")
# Every 401 names the scheme that authenticates (RFC 9110 §15.5.2), a peer's too: users'
# refused sign-in says how this API authenticates, with a token that signing in gives.
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="murmur"'}


def passed_problem(exc: Rejected) -> Problem:
    """The peer's problem, as it answered it."""
    body = exc.problem
    errors = body.get("errors")
    return Problem(
        exc.status,
        str(body.get("detail") or ""),
        title=body.get("title") or None,
        type_=str(body.get("type") or "about:blank"),
        errors=errors if isinstance(errors, list) else None,
        headers={**(CHALLENGE if exc.status == 401 else {}),
                 **{k: exc.headers[k] for k in PASSED_HEADERS if k in exc.headers}},
    )


def mapping(retry_after: int) -> dict[type[Exception], Callable[[Exception], Problem]]:
    """The error handlers of the gateway's app; `retry_after`: the least Retry-After sent."""

    def peer_unavailable(exc: PeerUnavailable) -> Problem:
        if isinstance(exc, OutOfTime):
            return unavailable(f"The {exc.peer} service did not answer within the request's "
                               "time budget.", retry_after)
        wait = retry_after
        if isinstance(exc, BreakerOpen):
            # Come back when the breaker will let a trial call through, not sooner.
            wait = max(retry_after, math.ceil(exc.retry_after or 0))
        return unavailable(f"The {exc.peer} service is unavailable.", wait)

    def bad_answer(exc: BadAnswer) -> Problem:
        return unavailable(f"The {exc.peer} service is unavailable.", retry_after)

    def unauthenticated(exc: Unauthenticated) -> Problem:
        return Problem(401, str(exc), headers=CHALLENGE)

    return {Rejected: passed_problem, PeerUnavailable: peer_unavailable,  # type: ignore[dict-item]
            BadAnswer: bad_answer, Unauthenticated: unauthenticated}
