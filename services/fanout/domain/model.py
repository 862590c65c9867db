"""Hybrid fan-out: the policy and the values its handlers work with.

A tweet is written into every follower's home timeline, except when the author is a
celebrity (`common.rules.is_celebrity`); those tweets are merged in at read time instead,
so a celebrity post costs no per-follower write. Timeline decides which when it accepts
the post, and TweetPosted and TweetDeleted carry the decision (`fan_out_decision`); only
events from before the decision was carried leave it to fan-out, by the author's follower
count at the time the event is handled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from common import events, rules
from common.events import Event, InvalidEvent


@dataclass(frozen=True)
class FollowerPage:
    """One page of a user's follower ids, ascending, with the user's follower count."""

    ids: Sequence[int]
    followers_count: int


@dataclass(frozen=True)
class Policy:
    """The knobs of hybrid fan-out."""

    celebrity_threshold: int
    backfill_limit: int
    history_limit: int = 800  # how far back an unfollow looks for the followee's tweets

    def is_celebrity(self, followers_count: int) -> bool:
        """Whether an author with this many followers is pulled at read time."""
        return rules.is_celebrity(followers_count, self.celebrity_threshold)


def fan_out_decision(event: Event) -> bool | None:
    """The fan-out decision a tweet event carries (None: an event from before it did);
    InvalidEvent if it carries something else than true or false."""
    decision = event.payload.get(events.FAN_OUT)
    if decision is not None and not isinstance(decision, bool):
        raise InvalidEvent(f"{event.type} carries {events.FAN_OUT}={decision!r}, "
                           f"not true or false")
    return decision


def event_ids(event: Event, *names: str) -> list[int]:
    """The ids an event carries under `names`; InvalidEvent unless each is an id."""
    values = event.require(*names)
    ids = [rules.parse_id(value) for value in values]
    if any(i is None for i in ids):
        raise InvalidEvent(f"{event.type} carries a value that is not an id (1..2^63-1): "
                           f"{values!r}")
    return ids  # type: ignore[return-value]
