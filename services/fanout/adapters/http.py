"""Fan-out's calls to the other services: `common.client` errors as fan-out's domain errors.

- no answer (down, timing out, 5xx, breaker open, the record's deadline passed, pool
  full), or a deliberate 503/429: `Unavailable`, the same event is tried again later;
- 404 or 410, what the event names does not exist: `Refused`, dead-lettered at once;
- any other 4xx, or an answer that is not the JSON agreed: `UnexpectedAnswer`, the two
  services disagree (a deploy or a configuration to fix), so the event waits with its
  partition held and is tried again: never dead-lettered for it.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from common.client import BadAnswer, HttpClient, PeerUnavailable, Rejected

from fanout.domain.errors import Refused, Unavailable, UnexpectedAnswer

# "No such resource": the only refusal about the event's own data (see Refused).
NOT_FOUND = (404, 410)


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Raise the block's client errors, and shape errors of the answer, as domain errors."""
    try:
        yield
    except PeerUnavailable as exc:
        raise Unavailable(f"{what}: {exc}") from exc
    except Rejected as exc:
        if exc.transient:
            raise Unavailable(f"{what}: {exc}") from exc
        if exc.status in NOT_FOUND:
            raise Refused(f"{what}: {exc}") from exc
        raise UnexpectedAnswer(f"{what}: refused: {exc}") from exc
    except (BadAnswer, KeyError, TypeError, ValueError) as exc:
        raise UnexpectedAnswer(f"{what}: unexpected answer: {exc!r}") from exc


def get_object(http: HttpClient, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """GET `path` and return its JSON object, with errors as the domain's."""
    with translated(f"GET {http.name} {path}"):
        return http.get_object(path, params=params)
