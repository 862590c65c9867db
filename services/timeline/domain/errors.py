"""The timeline's errors: plain exceptions. The service's edge (`entrypoints.errors`) is
the one place that turns them into answers; invalid input is `common.rules.InvalidInput`.
"""

from __future__ import annotations


class TweetNotFound(Exception):
    """No tweet has this id (or it was deleted)."""

    def __init__(self, tweet_id: int) -> None:
        super().__init__(f"Tweet {tweet_id} does not exist.")
        self.tweet_id = tweet_id


class AuthorNotFound(Exception):
    """No author has this username, as far as the timeline's copy of profiles knows."""

    def __init__(self, username: str) -> None:
        super().__init__("No such user.")
        self.username = username


class NotTheAuthor(Exception):
    """Someone other than its author tried to change a tweet."""

    def __init__(self, tweet_id: int, requester_id: int) -> None:
        super().__init__("Only the author may delete a tweet.")
        self.tweet_id, self.requester_id = tweet_id, requester_id


class IdempotencyConflict(Exception):
    """An Idempotency-Key cannot be answered now: its first request is still running
    (`retry_in` seconds is worth waiting), or the tweet it made was deleted since (None)."""

    def __init__(self, detail: str, retry_in: int | None = None) -> None:
        super().__init__(detail)
        self.detail, self.retry_in = detail, retry_in


class DependencyUnavailable(Exception):
    """A store or a peer service did not answer in time; callers may degrade instead.

    `retry_in`: seconds until the dependency is worth asking again (its breaker's trial).
    """

    def __init__(self, message: str, retry_in: int = 1) -> None:
        super().__init__(message)
        self.retry_in = retry_in
