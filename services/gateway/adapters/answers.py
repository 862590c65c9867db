"""A peer's 2xx answer as the gateway's use cases see it."""

from __future__ import annotations

from common.client import Reply

from gateway.domain.model import Result


def as_result(reply: Reply) -> Result:
    """The JSON object a peer answered, with its entity tag and degradation marker."""
    return Result(body=reply.object(), version=reply.headers.get("ETag"),
                  degraded=reply.headers.get("Murmur-Degraded"))
