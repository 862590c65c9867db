"""Fan-out's calls to the other services: `common.client` errors as fan-out's domain errors.

- no answer (down, timing out, 5xx, breaker open, the record's deadline passed, pool
  full), or a deliberate 503/429: `Unavailable`, the same event is tried again later;
- any other 4xx: `Refused`, the event is dead-lettered at once;
- an answer that is not the JSON agreed: `UnexpectedAnswer`, tried a few more times by
  the record processor, then dead-lettered: never retried forever.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from common.client import BadAnswer, HttpClient, PeerUnavailable, Rejected

from fanout.domain.errors import Refused, Unavailable, UnexpectedAnswer


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
        raise Refused(f"{what}: {exc}") from exc
    except (BadAnswer, KeyError, TypeError, ValueError) as exc:
        raise UnexpectedAnswer(f"{what}: unexpected answer: {exc!r}") from exc


def get_object(http: HttpClient, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """GET `path` and return its JSON object, with errors as the domain's."""
    with translated(f"GET {http.name} {path}"):
        return http.get_object(path, params=params)
