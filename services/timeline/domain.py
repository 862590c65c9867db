"""The timeline's rules: commands, events and handlers, free of Flask and of any driver.

Handlers talk to the stores through the small ports below; `timeline.bootstrap` wires the
real adapters, unit tests pass fakes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import time
import zlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Callable, Iterable, Protocol, Sequence

from common import events, ids
from common.problems import Problem, not_found, validation_failed

MAX_TEXT_LENGTH = 280
MAX_ID = (1 << 63) - 1
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_BACKFILL_IDS = 800
MAX_IDEMPOTENCY_KEY_LENGTH = 255
REBUILT = "home-timeline-rebuilt"  # Murmur-Degraded of a home timeline read without Redis

log = logging.getLogger("murmur.timeline")


# ------------------------------------------------------------------------------ model


@dataclass(frozen=True)
class Tweet:
    """A tweet as stored: its created_at is the instant encoded in its snowflake id."""

    id: int
    author_id: int
    text: str
    created_at: datetime


def created_at_of(tweet_id: int) -> datetime:
    """The UTC instant a snowflake id was issued, at millisecond precision."""
    return datetime.fromtimestamp(ids.timestamp_ms(tweet_id) / 1000, tz=timezone.utc)


def iso(instant: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a Z suffix."""
    return instant.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


@dataclass(frozen=True)
class Page:
    """One page of tweets, newest first; `degraded` names a part left out on failure."""

    items: list[Tweet]
    next_cursor: str | None
    degraded: str | None = None


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class PostTweet:
    """Publish `text` as `author_id`; a repeated `idempotency_key` yields the same tweet."""

    author_id: int
    text: object
    idempotency_key: str | None = None
    request_id: str = ""


@dataclass(frozen=True)
class DeleteTweet:
    """Remove a tweet on behalf of `requester_id`, who must be its author."""

    tweet_id: int
    requester_id: int


# ----------------------------------------------------------------------------- events


@dataclass(frozen=True)
class TweetPosted:
    """A tweet was accepted and stored."""

    tweet_id: int
    author_id: int
    created_at: datetime
    type: str = field(default=events.TWEET_POSTED, init=False)

    def payload(self) -> dict[str, str]:
        """The event payload of docs/internal-api.md."""
        return {"tweet_id": str(self.tweet_id), "author_id": str(self.author_id),
                "created_at": iso(self.created_at)}


@dataclass(frozen=True)
class TweetDeleted:
    """A tweet was removed by its author."""

    tweet_id: int
    author_id: int
    type: str = field(default=events.TWEET_DELETED, init=False)

    def payload(self) -> dict[str, str]:
        """The event payload of docs/internal-api.md."""
        return {"tweet_id": str(self.tweet_id), "author_id": str(self.author_id)}


@dataclass(frozen=True)
class OutboxMessage:
    """An event waiting in the outbox, written in the same batch as the change it reports."""

    bucket: int
    event_id: int
    topic: str
    key: str
    payload: bytes
    headers: dict[str, str]


def outbox_bucket(author_id: int, buckets: int) -> int:
    """The outbox bucket of an author: all of one author's events share a bucket, in order.

    A hash rather than `author_id % buckets`, because the low bits of snowflake ids are
    mostly sequence zeros and would crowd a few buckets.
    """
    return zlib.crc32(str(author_id).encode()) % buckets


def to_outbox(event: TweetPosted | TweetDeleted, event_id: int, topic: str, buckets: int,
              headers: dict[str, str] | None = None) -> OutboxMessage:
    """Wrap an event in the shared envelope, keyed by its author."""
    envelope = events.Event(event_id=str(event_id), type=event.type, payload=event.payload())
    return OutboxMessage(bucket=outbox_bucket(event.author_id, buckets), event_id=event_id,
                         topic=topic, key=str(event.author_id), payload=envelope.to_json(),
                         headers=dict(headers or {}))


# ------------------------------------------------------------------------- validation


def validate_text(text: object) -> str:
    """The tweet text stripped of surrounding blanks; 422 unless 1–280 characters remain."""
    if not isinstance(text, str):
        raise validation_failed([{"field": "text", "message": "must be a string"}])
    stripped = text.strip()
    if not 1 <= len(stripped) <= MAX_TEXT_LENGTH:
        raise validation_failed([{"field": "text", "message":
                                  f"must be 1 to {MAX_TEXT_LENGTH} characters"}])
    return stripped


def validate_idempotency_key(key: str | None) -> str | None:
    """The Idempotency-Key header, if any; 422 when empty or overlong."""
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH or not key.isprintable():
        raise validation_failed([{"field": "Idempotency-Key", "message":
                                  f"must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable "
                                  "characters"}])
    return key


def parse_limit(raw: str | None, default: int = DEFAULT_PAGE_SIZE,
                maximum: int = MAX_PAGE_SIZE) -> int:
    """A page size from the query string; 422 unless an integer within 1..maximum."""
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= maximum:
        raise validation_failed([{"field": "limit", "message": f"must be 1 to {maximum}"}])
    return value


def parse_id(raw: str) -> int | None:
    """A positive 64-bit id from a path or header, or None if it cannot be one."""
    if not raw.isascii() or not raw.isdigit():
        return None
    value = int(raw)
    return value if 0 < value <= MAX_ID else None


def encode_cursor(last_id: int) -> str:
    """An opaque cursor pointing just past `last_id` (the last tweet of a page)."""
    return base64.urlsafe_b64encode(last_id.to_bytes(8, "big")).rstrip(b"=").decode()


def decode_cursor(cursor: str | None) -> int | None:
    """The tweet id a cursor points past, None for the first page; 422 if malformed."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    value = int.from_bytes(raw, "big") if len(raw) == 8 else 0
    if not 0 < value <= MAX_ID or encode_cursor(value) != cursor:
        raise validation_failed([{"field": "cursor", "message": "is not a cursor of this list"}])
    return value


def merge_timeline(home_ids: Iterable[int], celebrity_ids: Iterable[int],
                   limit: int) -> tuple[list[int], int | None]:
    """Newest-first union of both sources cut to `limit`, and the id to continue after.

    Each source must hold up to `limit + 1` ids below the same cursor, so that an id past
    the cut proves that a further page exists.
    """
    merged = sorted(set(home_ids) | set(celebrity_ids), reverse=True)
    page = merged[:limit]
    return page, (page[-1] if len(merged) > limit and page else None)


def fingerprint(text: str) -> str:
    """A short digest of a request, to tell a retry from a reuse of its key."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# ------------------------------------------------------------------------------ ports


class DependencyUnavailable(Exception):
    """A collaborator did not answer in time; callers may degrade instead of failing.

    Without a fallback it is a 503, with `retry_after` seconds as Retry-After.
    """

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class IdempotencyRecord:
    """What an Idempotency-Key stands for: the tweet it made, or is making."""

    tweet_id: int
    fingerprint: str
    state: str  # PENDING, DONE or ABANDONED
    since_ms: int


PENDING, DONE, ABANDONED = "pending", "done", "abandoned"


class TweetRepository(Protocol):
    def save_posted(self, tweet: Tweet, message: OutboxMessage) -> None: ...

    def delete(self, tweet: Tweet, message: OutboxMessage) -> None: ...

    def get_many(self, tweet_ids: Sequence[int]) -> dict[int, Tweet]: ...

    def author_tweet_ids(self, author_id: int, before: int | None, limit: int) -> list[int]: ...

    def recent_tweet_ids(self, author_ids: Sequence[int], before: int | None,
                         limit: int) -> list[int]: ...


class TweetCache(Protocol):
    def get_many(self, tweet_ids: Sequence[int]) -> dict[int, Tweet | None]:
        """Cached tweets; None marks an id known to be deleted."""

    def put_many(self, tweets: Sequence[Tweet]) -> None: ...


class HomeState(Protocol):
    """The Redis side of a post or delete, done in one round trip."""

    def record_post(self, tweet: Tweet, bucket: int,
                    idempotency: tuple[int, str, IdempotencyRecord] | None) -> None: ...

    def record_delete(self, tweet: Tweet, bucket: int) -> None: ...

    def page(self, user_id: int, before: int | None, limit: int) -> list[int]: ...


class IdempotencyStore(Protocol):
    def claim(self, author_id: int, key: str,
              record: IdempotencyRecord) -> IdempotencyRecord | None: ...

    def replace(self, author_id: int, key: str, expected: IdempotencyRecord,
                new: IdempotencyRecord) -> bool: ...


class Followees(Protocol):
    def celebrities(self, user_id: int) -> list[int]: ...

    def followees(self, user_id: int, limit: int) -> list[int]: ...


class IdSource(Protocol):
    def next_id(self) -> int: ...


@dataclass
class Ports:
    """Everything the handlers need, wired by `timeline.bootstrap`."""

    tweets: TweetRepository
    cache: TweetCache
    home: HomeState
    idempotency: IdempotencyStore
    followees: Followees
    ids: IdSource
    tweets_topic: str
    outbox_buckets: int = 16
    idempotency_wait: float = 3.0
    celebrity_authors_max: int = 200
    rebuild_followees_max: int = 200  # authors read when a home timeline is rebuilt
    # Off only when a chaos experiment turns the fallback off on purpose (docs/chaos.md).
    rebuild_without_redis: bool = True
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    # The current request's trace context, stored with each event so that the relay's
    # publish continues the request's trace (bootstrap wires OpenTelemetry's propagator).
    trace_context: Callable[[], dict[str, str]] = dict


# --------------------------------------------------------------------------- handlers


def post_tweet(cmd: PostTweet, ports: Ports) -> Tweet:
    """Store a tweet with its TweetPosted event and show it to its author at once."""
    text = validate_text(cmd.text)
    key = validate_idempotency_key(cmd.idempotency_key)
    claim = None
    tweet_id = None
    if key is not None:
        record = _claim_key(cmd.author_id, key, fingerprint(text), ports)
        if record.state == DONE:
            return _replayed(record, ports)
        claim, tweet_id = record, record.tweet_id
    tweet_id = tweet_id or ports.ids.next_id()
    tweet = Tweet(tweet_id, cmd.author_id, text, created_at_of(tweet_id))
    message = to_outbox(TweetPosted(tweet.id, tweet.author_id, tweet.created_at),
                        ports.ids.next_id(), ports.tweets_topic, ports.outbox_buckets,
                        {**({"request_id": cmd.request_id} if cmd.request_id else {}),
                         **ports.trace_context()})
    try:
        ports.tweets.save_posted(tweet, message)
    except Exception:
        if claim is not None:
            _abandon(cmd.author_id, key, claim, ports)
        raise
    done = (cmd.author_id, key, replace(claim, state=DONE)) if claim is not None else None
    try:
        ports.home.record_post(tweet, message.bucket, done)
    except DependencyUnavailable as exc:
        # The batch is the source of truth and the relay polls the outbox anyway: the
        # tweet is accepted. The author's own timeline entry and the cache fill are lost;
        # fan-out and the store make up for them. A PENDING key goes stale, and a retry
        # takes it over with the same tweet id.
        log.warning("tweet %d accepted without its Redis side: %s", tweet.id, exc,
                    extra={"fields": {"tweet_id": str(tweet.id)}})
    return tweet


def _abandon(author_id: int, key: str, claim: IdempotencyRecord, ports: Ports) -> None:
    """Hand the key over to a retry after a failed batch (best effort)."""
    # Whether the batch landed is unknown; a retry takes over with the same tweet id, so
    # writing it again is an upsert and never a second tweet. If Redis is gone too, the
    # claim goes stale and is taken over the same way.
    try:
        ports.idempotency.replace(author_id, key, claim, replace(claim, state=ABANDONED))
    except DependencyUnavailable as exc:
        log.warning("idempotency claim left pending: %s", exc)


def _claim_key(author_id: int, key: str, digest: str, ports: Ports) -> IdempotencyRecord:
    """Our claim on `key` (PENDING), or the finished record of an earlier request (DONE).

    Two requests with one key race on a SET NX: the loser waits for the winner to finish,
    and takes over (keeping the tweet id) if the winner failed or went quiet. Without
    Redis the key cannot be checked: DependencyUnavailable (503) rather than a possible
    duplicate, while posts without a key are still accepted.
    """
    mine = IdempotencyRecord(ports.ids.next_id(), digest, PENDING, int(ports.clock() * 1000))
    deadline = ports.clock() + ports.idempotency_wait
    while True:
        existing = ports.idempotency.claim(author_id, key, mine)
        if existing is None:
            return mine
        if existing.fingerprint != digest:
            raise validation_failed(
                [{"field": "Idempotency-Key", "message": "was used for a different tweet"}])
        if existing.state == DONE:
            return existing
        stale = ports.clock() * 1000 - existing.since_ms > ports.idempotency_wait * 1000
        if existing.state == ABANDONED or stale:
            takeover = replace(existing, state=PENDING, since_ms=int(ports.clock() * 1000))
            if ports.idempotency.replace(author_id, key, existing, takeover):
                return takeover
            continue
        if ports.clock() >= deadline:
            raise Problem(409, "A request with this Idempotency-Key is still in progress.",
                          headers={"Retry-After": "1"})
        ports.sleep(0.01)


def _replayed(record: IdempotencyRecord, ports: Ports) -> Tweet:
    tweet = hydrate([record.tweet_id], ports)
    if not tweet:
        raise Problem(409, "The tweet made with this Idempotency-Key has been deleted.")
    return tweet[0]


def delete_tweet(cmd: DeleteTweet, ports: Ports) -> Tweet:
    """Delete a tweet with its TweetDeleted event and drop it from its author's timeline."""
    found = ports.tweets.get_many([cmd.tweet_id]).get(cmd.tweet_id)
    if found is None:
        raise not_found(f"Tweet {cmd.tweet_id} does not exist.")
    if found.author_id != cmd.requester_id:
        raise Problem(403, "Only the author may delete a tweet.")
    message = to_outbox(TweetDeleted(found.id, found.author_id), ports.ids.next_id(),
                        ports.tweets_topic, ports.outbox_buckets,
                        ports.trace_context())
    ports.tweets.delete(found, message)
    try:
        ports.home.record_delete(found, message.bucket)
    except DependencyUnavailable as exc:
        # The delete stands; fan-out still retracts it from followers' timelines. Only
        # the cached copy and the author's own entry outlive it, until they expire.
        log.warning("tweet %d deleted without its Redis side: %s", found.id, exc,
                    extra={"fields": {"tweet_id": str(found.id)}})
    return found


def get_tweet(tweet_id: int, ports: Ports) -> Tweet:
    """One tweet, from the cache or the store; 404 if unknown."""
    found = hydrate([tweet_id], ports)
    if not found:
        raise not_found(f"Tweet {tweet_id} does not exist.")
    return found[0]


def hydrate(tweet_ids: Sequence[int], ports: Ports, use_cache: bool = True) -> list[Tweet]:
    """Tweets for ids in the given order: cache first, the store for misses; gone ids dropped.

    The cache is an optimisation: when it does not answer, the store serves every id.
    """
    if not tweet_ids:
        return []
    found: dict[int, Tweet | None] = {}
    if use_cache:
        try:
            found.update(ports.cache.get_many(tweet_ids))
        except DependencyUnavailable:
            use_cache = False
    missing = [t for t in tweet_ids if t not in found]
    if missing:
        loaded = ports.tweets.get_many(missing)
        if loaded and use_cache:
            try:
                ports.cache.put_many(list(loaded.values()))
            except DependencyUnavailable:
                pass  # the next read loads them again
        found.update(loaded)
    return [tweet for t in tweet_ids if (tweet := found.get(t)) is not None]


def read_author_tweets(author_id: int, limit: int, before: int | None, ports: Ports) -> Page:
    """One page of an author's tweets, newest first."""
    tweet_ids = ports.tweets.author_tweet_ids(author_id, before, limit + 1)
    page = tweet_ids[:limit]
    more = len(tweet_ids) > limit
    return Page(hydrate(page, ports), encode_cursor(page[-1]) if more else None)


def author_tweet_ids(author_id: int, limit: int, ports: Ports) -> list[int]:
    """The author's newest tweet ids (backfill of a new follower's timeline)."""
    return ports.tweets.author_tweet_ids(author_id, None, limit)


def read_home_timeline(user_id: int, limit: int, before: int | None, ports: Ports) -> Page:
    """A page of the home timeline: fanned-out ids merged with celebrities' recent tweets.

    Without an answer from users the page holds the fanned-out part only and says so;
    without Redis the page is rebuilt from the store (`rebuild_home_timeline`).
    """
    try:
        home_ids = ports.home.page(user_id, before, limit + 1)
    except DependencyUnavailable as exc:
        if not ports.rebuild_without_redis:
            raise
        log.warning("home timeline of %d rebuilt from the store: %s", user_id, exc)
        return rebuild_home_timeline(user_id, limit, before, ports)
    degraded = None
    try:
        celebrities = ports.followees.celebrities(user_id)[:ports.celebrity_authors_max]
    except DependencyUnavailable:
        celebrities, degraded = [], "celebrity-merge-unavailable"
    celebrity_ids = (ports.tweets.recent_tweet_ids(celebrities, before, limit + 1)
                     if celebrities else [])
    page, last = merge_timeline(home_ids, celebrity_ids, limit)
    return Page(hydrate(page, ports), encode_cursor(last) if last else None, degraded)


def rebuild_home_timeline(user_id: int, limit: int, before: int | None, ports: Ports) -> Page:
    """A page of the home timeline without Redis: the newest tweets of the user and of
    whom they follow, merged from the authors' timelines in the store, marked degraded.

    Bounded: at most `rebuild_followees_max` followees, `limit + 1` ids of each. Nothing
    is written back (Redis is what is missing); fan-out fills the real timeline again.
    """
    authors = [user_id, *ports.followees.followees(user_id, ports.rebuild_followees_max)]
    tweet_ids = ports.tweets.recent_tweet_ids(
        list(dict.fromkeys(authors))[:ports.rebuild_followees_max + 1], before, limit + 1)
    page, last = merge_timeline(tweet_ids, [], limit)
    return Page(hydrate(page, ports, use_cache=False), encode_cursor(last) if last else None,
                REBUILT)
