"""What callers ask the timeline to do."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class PostTweet:
    """Publish `text` as `author_id`; a repeated `idempotency_key` yields the same tweet.

    `author_username` is the name the caller was authenticated as (the gateway passes it
    on from the verified token): it lets the timeline name a brand-new author before users'
    event about them arrives. `event_headers` (request id, trace context) are stored with
    the TweetPosted event, so that its publication continues the request's trace.
    """

    author_id: int
    text: object
    idempotency_key: str | None = None
    author_username: str | None = None
    event_headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeleteTweet:
    """Remove a tweet on behalf of `requester_id`, who must be its author."""

    tweet_id: int
    requester_id: int
    event_headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProjectCelebrityStatus:
    """Bring the copy of an author's celebrity status up to users' `version` of it."""

    user_id: int
    celebrity: bool
    version: int


@dataclass(frozen=True)
class ProjectAuthor:
    """Bring the timeline's copy of an author's profile up to `version` (users' events)."""

    user_id: int
    username: str
    display_name: str
    version: int
