"""Versioned JSON event envelopes carried on Kafka.

Every event is `{"event_id", "type", "version", "occurred_at", "payload"}`; the Kafka key
keeps one aggregate's events in order (author id on tweets.v1, follower id on follows.v1,
user id on users.v1, `<user id>/celebrity` for CelebrityStatusChanged: users.v1 is
compacted by key, so a user's latest profile and latest celebrity status are kept apart).
W3C trace context travels in the message headers, not in the body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

TWEET_POSTED = "TweetPosted"
TWEET_DELETED = "TweetDeleted"
USER_FOLLOWED = "UserFollowed"
USER_UNFOLLOWED = "UserUnfollowed"
USER_REGISTERED = "UserRegistered"
PROFILE_CHANGED = "ProfileChanged"
# A user's follower count crossed the celebrity threshold (`common.rules.is_celebrity`).
CELEBRITY_STATUS_CHANGED = "CelebrityStatusChanged"
KNOWN_TYPES = {TWEET_POSTED, TWEET_DELETED, USER_FOLLOWED, USER_UNFOLLOWED, USER_REGISTERED,
               PROFILE_CHANGED, CELEBRITY_STATUS_CHANGED}
VERSION = 1

# TweetPosted and TweetDeleted carry the fan-out decision timeline made when it accepted
# the post: true, fanout writes the tweet into followers' home timelines (and takes it out
# on delete); false, the author was a celebrity, the tweet is merged at read time and
# fanout writes nothing. Events from before the flag lack it: fanout then decides by the
# author's follower count, as it always did.
FAN_OUT = "fan_out"


class InvalidEvent(ValueError):
    """A message that can never be processed (a poison message)."""


@dataclass(frozen=True)
class Event:
    """One domain event, immutable once made."""

    event_id: str
    type: str
    payload: dict[str, Any]
    occurred_at: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    )
    version: int = VERSION

    def to_json(self) -> bytes:
        """Serialise the envelope as compact UTF-8 JSON."""
        return json.dumps(
            {"event_id": self.event_id, "type": self.type, "version": self.version,
             "occurred_at": self.occurred_at, "payload": self.payload},
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes | str | None) -> "Event":
        """Parse and check an envelope; raises InvalidEvent for anything malformed."""
        try:
            data = json.loads(raw) if raw is not None else None
        except (TypeError, ValueError) as exc:
            raise InvalidEvent(f"not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise InvalidEvent("envelope is not an object")
        missing = {"event_id", "type", "version", "occurred_at", "payload"} - data.keys()
        if missing:
            raise InvalidEvent(f"envelope lacks {sorted(missing)}")
        if data["type"] not in KNOWN_TYPES:
            raise InvalidEvent(f"unknown event type {data['type']!r}")
        if data["version"] != VERSION:
            raise InvalidEvent(f"unsupported version {data['version']!r}")
        if not isinstance(data["payload"], dict):
            raise InvalidEvent("payload is not an object")
        return cls(event_id=str(data["event_id"]), type=data["type"], payload=data["payload"],
                   occurred_at=str(data["occurred_at"]), version=data["version"])

    def require(self, *names: str) -> list[Any]:
        """Payload fields by name; raises InvalidEvent if one is missing."""
        try:
            return [self.payload[name] for name in names]
        except KeyError as exc:
            raise InvalidEvent(f"{self.type} payload lacks {exc.args[0]!r}") from exc
