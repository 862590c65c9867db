"""What the timeline is about: tweets, their authors, pages of them, idempotency records."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

from common import ids

# Names of the parts a read may leave out when a collaborator does not answer; the edge
# passes them on (Murmur-Degraded) so callers can tell a partial answer from a whole one.
HOME_REBUILT = "home-timeline-rebuilt"  # home timeline rebuilt from the store, without Redis
CELEBRITY_MERGE_UNAVAILABLE = "celebrity-merge-unavailable"  # users did not say whom
AUTHORS_UNAVAILABLE = "authors-unavailable"  # the author projection did not answer


@dataclass(frozen=True)
class Tweet:
    """A tweet as stored: its created_at is the instant encoded in its snowflake id.

    `fan_out` is the decision made when it was posted (`fans_out`): whether fanout wrote
    it into followers' home timelines, so its delete takes it out of them again. None for
    a tweet stored before the decision was kept, and for a copy from the tweet cache,
    which serves reads only.
    """

    id: int
    author_id: int
    text: str
    created_at: datetime
    fan_out: bool | None = None


def created_at_of(tweet_id: int) -> datetime:
    """The UTC instant a snowflake id was issued, at millisecond precision."""
    return datetime.fromtimestamp(ids.timestamp_ms(tweet_id) / 1000, tz=timezone.utc)


def iso(instant: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a Z suffix."""
    return instant.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


# Profiles start at version 1 in users; an author the timeline learnt of from a post alone
# (before users' event arrived) gets version 0, so that any event about them wins.
SEED_VERSION = 0


@dataclass(frozen=True)
class Author:
    """What the timeline shows about a tweet's author: its copy of users' public profile.

    Kept current from users' events (event-carried state transfer); `version` is the
    profile version of the event it came from. An author the copy does not hold yet has
    no username and no display name. `celebrity` is the author's status as users last
    announced it (CelebrityStatusChanged), kept apart from the profile and its version.
    """

    id: int
    username: str | None = None
    display_name: str | None = None
    version: int = SEED_VERSION
    celebrity: bool = False

    @property
    def known(self) -> bool:
        """Whether the copy holds this author's profile (else only the id is known)."""
        return self.username is not None

    def supersedes(self, other: Author | None) -> bool:
        """Whether this copy of the profile replaces `other`: only a newer version does."""
        return other is None or self.version > other.version


@dataclass(frozen=True)
class CelebrityStatus:
    """Whether an author is a celebrity, as of users' `version`-th change of the status."""

    author_id: int
    celebrity: bool
    version: int


def fans_out(author: Author | None) -> bool:
    """Whether a new tweet of `author` goes into each follower's home timeline.

    Decided once, when the post is accepted, from the copy of the author's celebrity
    status, and carried by the tweet's events: a celebrity's tweet is merged at read time
    instead (hybrid fan-out), and its delete touches no follower's timeline either. An
    author the copy does not hold, or a copy that did not answer, is fanned out: that is
    right for any author (the read-time merge only adds what fan-out left out), and only
    costs more for a celebrity.
    """
    return author is None or not author.celebrity


def seed_author(author_id: int, username: str) -> Author:
    """An author known from a post only: the username the caller was authenticated as.

    The display name is users' default (the username) until users' event says otherwise.
    """
    return Author(author_id, username, username, SEED_VERSION)


@dataclass(frozen=True)
class AuthoredTweet:
    """A tweet as the timeline answers it: with its author."""

    tweet: Tweet
    author: Author


@dataclass(frozen=True)
class Page:
    """One page of tweets, newest first.

    `last_id` is the id to continue below (None on the last page); `degraded` names the
    parts left out because a collaborator did not answer.
    """

    items: list[AuthoredTweet]
    last_id: int | None = None
    degraded: tuple[str, ...] = ()


def merge_timeline(home_ids: Iterable[int], celebrity_ids: Iterable[int],
                   limit: int) -> tuple[list[int], int | None]:
    """Newest-first union of both sources cut to `limit`, and the id to continue below.

    Each source must hold up to `limit + 1` ids below the same position, so that an id past
    the cut proves that a further page exists.
    """
    merged = sorted(set(home_ids) | set(celebrity_ids), reverse=True)
    page = merged[:limit]
    return page, (page[-1] if len(merged) > limit and page else None)


# -------------------------------------------------------------------------- idempotency

PENDING, DONE, ABANDONED = "pending", "done", "abandoned"


@dataclass(frozen=True)
class IdempotencyRecord:
    """What an Idempotency-Key stands for: the tweet it made, or is making."""

    tweet_id: int
    fingerprint: str
    state: str  # PENDING, DONE or ABANDONED
    since_ms: int


def fingerprint(text: str) -> str:
    """A short digest of a request, to tell a retry from a reuse of its key."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]
