"""The timeline's use cases: post, delete and show tweets, pages of them, and keep the
copy of authors' profiles current. Each takes a command or plain values and the ports."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Sequence

from common import rules
from timeline.domain.commands import (DeleteTweet, PostTweet, ProjectAuthor,
                                      ProjectCelebrityStatus)
from timeline.domain.errors import (AuthorNotFound, DependencyUnavailable, IdempotencyConflict,
                                    NotTheAuthor, TweetNotFound)
from timeline.domain.events import TweetDeleted, TweetPosted
from timeline.domain.model import (ABANDONED, AUTHORS_UNAVAILABLE, CELEBRITY_MERGE_UNAVAILABLE,
                                   DONE, HOME_REBUILT, PENDING, SEED_VERSION, Author,
                                   AuthoredTweet, CelebrityStatus, IdempotencyRecord, Page,
                                   Tweet, created_at_of, fans_out, fingerprint, merge_timeline,
                                   seed_author)
from timeline.service_layer.ports import Ports, ProjectionPorts

log = logging.getLogger("murmur.timeline")


# ---------------------------------------------------------------------------- writing


def post_tweet(cmd: PostTweet, ports: Ports) -> AuthoredTweet:
    """Store a tweet with its TweetPosted event and show it to its author at once.

    Nothing after the store's batch can fail the post: the Redis side and the author's
    name are best effort, so a client never sees an error for a tweet that was stored.
    Whether followers get it by fan-out or by the read-time merge is decided here, from
    the author's celebrity status in the projection (`fans_out`), and stored with it.
    """
    text = rules.tweet_text(cmd.text)
    key = cmd.idempotency_key
    claim = None
    tweet_id = None
    if key is not None:
        record = _claim_key(cmd.author_id, key, fingerprint(text), ports)
        if record.state == DONE:
            return _replayed(record, cmd, ports)
        claim, tweet_id = record, record.tweet_id
    tweet_id = tweet_id or ports.ids.next_id()
    author = _projected_author(cmd.author_id, ports)
    tweet = Tweet(tweet_id, cmd.author_id, text, created_at_of(tweet_id), fans_out(author))
    event = TweetPosted(ports.ids.next_id(), tweet.id, tweet.author_id, tweet.created_at,
                        tweet.fan_out)
    try:
        ports.tweets.save_posted(tweet, event, cmd.event_headers)
    except Exception:
        if claim is not None:
            _abandon(cmd.author_id, key, claim, ports)
        raise
    finished = (cmd.author_id, key, replace(claim, state=DONE)) if claim is not None else None
    try:
        ports.home.record_post(tweet, finished)
    except DependencyUnavailable as exc:
        # The batch is the source of truth and the relay polls the outbox anyway: the
        # tweet is accepted. The author's own timeline entry and the cache fill are lost;
        # fan-out and the store make up for them. A PENDING key goes stale, and a retry
        # takes it over with the same tweet id.
        log.warning("tweet %d accepted without its Redis side: %s", tweet.id, exc,
                    extra={"fields": {"tweet_id": str(tweet.id)}})
    return AuthoredTweet(tweet, _poster(cmd, author, ports))


def _projected_author(author_id: int, ports: Ports) -> Author | None:
    """The projection's copy of an author, or None if it holds none or does not answer."""
    try:
        return ports.authors.get_many([author_id]).get(author_id)
    except DependencyUnavailable as exc:
        log.info("author of a post not looked up: %s", exc)
        return None


def _poster(cmd: PostTweet, found: Author | None, ports: Ports) -> Author:
    """The author of a post, from the projection; seeded from the caller's name if absent.

    A user who registered a moment ago may post before users' UserRegistered reaches the
    projection: the name they were authenticated as fills the gap (at the lowest version,
    so users' event replaces it), and their own tweets always carry a username.
    """
    if found is not None and found.known:
        return found
    if not cmd.author_username:
        return found or Author(cmd.author_id)
    seed = seed_author(cmd.author_id, cmd.author_username)
    try:
        ports.authors.record(seed)
    except DependencyUnavailable as exc:
        log.info("author of a post not seeded: %s", exc)
    return seed


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
    Redis the key cannot be checked: DependencyUnavailable rather than a possible
    duplicate, while posts without a key are still accepted.
    """
    mine = IdempotencyRecord(ports.ids.next_id(), digest, PENDING, int(ports.clock() * 1000))
    deadline = ports.clock() + ports.idempotency_wait
    while True:
        existing = ports.idempotency.claim(author_id, key, mine)
        if existing is None:
            return mine
        if existing.fingerprint != digest:
            raise rules.InvalidInput([rules.field_error(
                "Idempotency-Key", "was used for a different tweet")])
        if existing.state == DONE:
            return existing
        stale = ports.clock() * 1000 - existing.since_ms > ports.idempotency_wait * 1000
        if existing.state == ABANDONED or stale:
            takeover = replace(existing, state=PENDING, since_ms=int(ports.clock() * 1000))
            if ports.idempotency.replace(author_id, key, existing, takeover):
                return takeover
            continue
        if ports.clock() >= deadline:
            raise IdempotencyConflict(
                "A request with this Idempotency-Key is still in progress.", retry_in=1)
        ports.sleep(0.01)


def _replayed(record: IdempotencyRecord, cmd: PostTweet, ports: Ports) -> AuthoredTweet:
    found = _hydrate([record.tweet_id], ports)
    if not found:
        raise IdempotencyConflict("The tweet made with this Idempotency-Key has been deleted.")
    return AuthoredTweet(found[0], _poster(cmd, _projected_author(cmd.author_id, ports), ports))


def delete_tweet(cmd: DeleteTweet, ports: Ports) -> bool:
    """Delete a tweet with its TweetDeleted event and drop it from its author's timeline.

    True if this call deleted it; False if its author had deleted it already (a repeat).
    """
    found = ports.tweets.get_many([cmd.tweet_id]).get(cmd.tweet_id)
    if found is None:
        # DELETE is idempotent in effect (RFC 9110): the author repeating it, as a retry
        # after a lost answer does, gets the first answer again, and no second event.
        # Anyone else learns only that no such tweet exists.
        if ports.tweets.deleted_author(cmd.tweet_id) == cmd.requester_id:
            return False
        raise TweetNotFound(cmd.tweet_id)
    if found.author_id != cmd.requester_id:
        raise NotTheAuthor(cmd.tweet_id, cmd.requester_id)
    # The post's own decision, not today's status: a tweet fanned out leaves followers'
    # timelines even if its author has become a celebrity since, and the other way round.
    event = TweetDeleted(ports.ids.next_id(), found.id, found.author_id, found.fan_out)
    ports.tweets.delete(found, event, cmd.event_headers)
    try:
        ports.home.record_delete(found)
    except DependencyUnavailable as exc:
        # The delete stands; fan-out still retracts it from followers' timelines. Only
        # the cached copy and the author's own entry outlive it, until they expire.
        log.warning("tweet %d deleted without its Redis side: %s", found.id, exc,
                    extra={"fields": {"tweet_id": str(found.id)}})
    return True


# ---------------------------------------------------------------------------- reading


def show_tweet(tweet_id: int, ports: Ports) -> AuthoredTweet:
    """One tweet with its author, from the cache or the store."""
    found = _hydrate([tweet_id], ports)
    if not found:
        raise TweetNotFound(tweet_id)
    [item], _degraded = _with_authors(found, ports)
    return item


def list_user_tweets(author_id: int, limit: int, before: int | None, ports: Ports) -> Page:
    """One page of an author's tweets, newest first, below `before`."""
    tweet_ids = ports.tweets.author_tweet_ids(author_id, before, limit + 1)
    page = tweet_ids[:limit]
    items, degraded = _with_authors(_hydrate(page, ports), ports)
    return Page(items, page[-1] if len(tweet_ids) > limit else None, degraded)


def find_author_named(username: str, ports: Ports) -> int:
    """The id of the author named `username`.

    The name is looked up in the timeline's own copy of users' profiles, never in users:
    a name the copy does not hold is AuthorNotFound (so is, for the moment it takes their
    UserRegistered to arrive, a user who registered and has not posted yet).
    """
    author_id = ports.authors.id_by_username(username) if rules.is_username(username) else None
    if author_id is None:
        raise AuthorNotFound(username)
    return author_id


def list_tweets_by_username(username: str, limit: int, before: int | None,
                            ports: Ports) -> Page:
    """One page of the tweets of the author named `username` (`find_author_named`), as
    `list_user_tweets`."""
    return list_user_tweets(find_author_named(username, ports), limit, before, ports)


def list_author_tweet_ids(author_id: int, limit: int, ports: Ports) -> list[int]:
    """The author's newest tweet ids (backfill of a new follower's timeline)."""
    return ports.tweets.author_tweet_ids(author_id, None, limit)


def show_home_timeline(user_id: int, limit: int, before: int | None, ports: Ports) -> Page:
    """A page of the home timeline: fanned-out ids merged with celebrities' recent tweets.

    Without an answer from users the page holds the fanned-out part only and says so;
    without Redis the page is rebuilt from the store (`_rebuilt_home_timeline`).
    """
    try:
        home_ids = ports.home.page(user_id, before, limit + 1)
    except DependencyUnavailable as exc:
        if not ports.rebuild_without_redis:
            raise
        log.warning("home timeline of %d rebuilt from the store: %s", user_id, exc)
        return _rebuilt_home_timeline(user_id, limit, before, ports)
    degraded: tuple[str, ...] = ()
    try:
        celebrities = ports.followees.celebrities(user_id)[:ports.celebrity_authors_max]
    except DependencyUnavailable as exc:
        log.info("home timeline of %d served without the celebrity merge: %s", user_id, exc)
        celebrities, degraded = [], (CELEBRITY_MERGE_UNAVAILABLE,)
    celebrity_ids = (ports.tweets.recent_tweet_ids(celebrities, before, limit + 1)
                     if celebrities else [])
    page, last = merge_timeline(home_ids, celebrity_ids, limit)
    items, missing = _with_authors(_hydrate(page, ports), ports)
    return Page(items, last, degraded + missing)


def _rebuilt_home_timeline(user_id: int, limit: int, before: int | None,
                           ports: Ports) -> Page:
    """A page of the home timeline without Redis: the newest tweets of the user and of
    whom they follow, merged from the authors' timelines in the store, marked degraded.

    Bounded: at most `rebuild_followees_max` followees, `limit + 1` ids of each. Nothing
    is written back (Redis is what is missing); fan-out fills the real timeline again.
    Without users as well there is nothing to rebuild from: DependencyUnavailable.
    """
    authors = [user_id, *ports.followees.followees(user_id, ports.rebuild_followees_max)]
    tweet_ids = ports.tweets.recent_tweet_ids(
        list(dict.fromkeys(authors))[:ports.rebuild_followees_max + 1], before, limit + 1)
    page, last = merge_timeline(tweet_ids, [], limit)
    items, missing = _with_authors(_hydrate(page, ports, use_cache=False), ports)
    return Page(items, last, (HOME_REBUILT, *missing))


def _hydrate(tweet_ids: Sequence[int], ports: Ports, use_cache: bool = True) -> list[Tweet]:
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


def _with_authors(tweets: Sequence[Tweet],
                  ports: Ports) -> tuple[list[AuthoredTweet], tuple[str, ...]]:
    """Each tweet with its author from the projection, in one lookup for the whole list.

    Never a call to users: an author the projection does not hold yet shows by id only,
    and if the projection does not answer, every author does (the read still succeeds).
    """
    author_ids = list(dict.fromkeys(t.author_id for t in tweets))
    degraded: tuple[str, ...] = ()
    try:
        found = ports.authors.get_many(author_ids) if author_ids else {}
    except DependencyUnavailable as exc:
        log.info("tweets served without their authors' names: %s", exc)
        found, degraded = {}, (AUTHORS_UNAVAILABLE,)
    return [AuthoredTweet(t, found.get(t.author_id) or Author(t.author_id))
            for t in tweets], degraded


# ---------------------------------------------------------------------- the projection


def project_author(cmd: ProjectAuthor, ports: ProjectionPorts) -> Author:
    """Apply users' UserRegistered or ProfileChanged to the copy of the author's profile.

    The copy keeps the highest version it has seen, so events may come twice or out of
    order (a replay of the compacted topic, a redelivery after a crash) without harm.
    """
    errors = []
    if rules.parse_id(cmd.user_id) is None:
        errors.append(rules.field_error("user_id", "must be a user id"))
    if not isinstance(cmd.username, str) or not cmd.username:
        errors.append(rules.field_error("username", "must be a non-empty string"))
    if not isinstance(cmd.display_name, str):
        errors.append(rules.field_error("display_name", "must be a string"))
    if not isinstance(cmd.version, int) or isinstance(cmd.version, bool) \
            or cmd.version <= SEED_VERSION:
        errors.append(rules.field_error("version", f"must be an integer above {SEED_VERSION}"))
    if errors:
        raise rules.InvalidInput(errors, "The profile event is invalid.")
    author = Author(cmd.user_id, cmd.username, cmd.display_name, cmd.version)
    ports.authors.record(author)
    return author


def project_celebrity_status(cmd: ProjectCelebrityStatus,
                             ports: ProjectionPorts) -> CelebrityStatus:
    """Apply users' CelebrityStatusChanged to the copy of the author's status.

    The copy keeps the status of the highest version it has seen, as for profiles.
    """
    errors = []
    if rules.parse_id(cmd.user_id) is None:
        errors.append(rules.field_error("user_id", "must be a user id"))
    if not isinstance(cmd.celebrity, bool):
        errors.append(rules.field_error("celebrity", "must be true or false"))
    if not isinstance(cmd.version, int) or isinstance(cmd.version, bool) or cmd.version < 1:
        errors.append(rules.field_error("version", "must be an integer above 0"))
    if errors:
        raise rules.InvalidInput(errors, "The celebrity status event is invalid.")
    status = CelebrityStatus(cmd.user_id, cmd.celebrity, cmd.version)
    ports.authors.record_status(status)
    return status
