"""What the users service is asked to do.

Commands that change state carry `trace`: the propagation headers of the request that
asked (W3C trace context, request id). They are stored with the event the change emits,
so that publishing the event later continues the request's trace. The domain only
carries them; the entrypoint reads them from the request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

Trace = Mapping[str, str]


@dataclass(frozen=True)
class RegisterUser:
    username: Any
    password: Any
    display_name: Any = None  # None: the username
    trace: Trace = field(default_factory=dict)
    idempotency_key: str | None = None  # a repeat with this key gets the same account


@dataclass(frozen=True)
class StartSession:
    username: Any
    password: Any
    client: str = ""  # the caller's address, for throttling failed attempts


@dataclass(frozen=True)
class UpdateProfile:
    user_id: int
    # The profile versions If-Match named (one matching is enough); None: any will do.
    expected_versions: frozenset[int] | None
    changes: dict[str, Any] = field(default_factory=dict)  # display_name and/or bio
    trace: Trace = field(default_factory=dict)


@dataclass(frozen=True)
class FollowUser:
    follower_id: int
    followee_username: str
    trace: Trace = field(default_factory=dict)


@dataclass(frozen=True)
class UnfollowUser:
    follower_id: int
    followee_username: str
    trace: Trace = field(default_factory=dict)
