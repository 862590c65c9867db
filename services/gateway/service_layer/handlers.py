"""The gateway's use cases: each asks one service once and shows the public part of its answer.

Reads need no second call: timeline answers tweets with their authors (its own copy of
them), so a page, a tweet or a user's timeline is answered whole by one service, and
users being down does not take reads or posts down with it.
"""

from __future__ import annotations

from typing import Any

from gateway.domain import model
from gateway.domain.model import Principal, Result
from gateway.service_layer.ports import Ports

# ----------------------------------------------------------------------------- callers


def authenticate(ports: Ports, token: str) -> Principal:
    """Who a bearer token names (Unauthenticated if it names nobody)."""
    return ports.tokens.verify(token)


def publish_signing_keys(ports: Ports) -> dict[str, Any]:
    """The public keys that verify access tokens, for anyone to check a token with."""
    return ports.tokens.key_set()


# ---------------------------------------------------------------------------- accounts


def register_user(ports: Ports, fields: dict[str, Any], idempotency_key: str | None = None,
                  client: str | None = None) -> Result:
    """Create an account (or, for a repeated Idempotency-Key, the one it made); its profile."""
    return ports.users.register(fields, idempotency_key, client).shown(model.public_user)


def open_session(ports: Ports, credentials: dict[str, Any], client: str | None = None) -> Result:
    """Exchange a username and password for an access token; `client` is throttled."""
    return ports.users.open_session(credentials, client)


def show_user(ports: Ports, username: str) -> Result:
    """A user's public profile, with its version."""
    return ports.users.profile(username).shown(model.public_user)


def update_profile(ports: Ports, caller: Principal, changes: dict[str, Any],
                   version: str | None) -> Result:
    """Change the caller's profile if it is still at `version`."""
    return ports.users.update_profile(caller.user_id, changes, version).shown(model.public_user)


# ------------------------------------------------------------------------------- graph


def follow(ports: Ports, caller: Principal, username: str) -> None:
    """The caller follows `username` (twice changes nothing)."""
    ports.users.follow(caller.user_id, username)


def unfollow(ports: Ports, caller: Principal, username: str) -> None:
    """The caller stops following `username`."""
    ports.users.unfollow(caller.user_id, username)


def list_relations(ports: Ports, username: str, which: str, limit: int,
                   cursor: str | None) -> Result:
    """A page of a user's followers or followees (`which`)."""
    return ports.users.relations(username, which, limit, cursor).shown(model.user_page)


# ------------------------------------------------------------------------------ tweets


def post_tweet(ports: Ports, caller: Principal, text: str,
               idempotency_key: str | None) -> Result:
    """Post a tweet as the caller; the token names the author, so users is not asked."""
    return ports.timeline.post(caller, text, idempotency_key).shown(model.public_tweet)


def show_tweet(ports: Ports, tweet_id: str) -> Result:
    """One tweet with its author."""
    return ports.timeline.tweet(tweet_id).shown(model.public_tweet)


def delete_tweet(ports: Ports, caller: Principal, tweet_id: str) -> None:
    """Delete one of the caller's tweets."""
    ports.timeline.delete(caller.user_id, tweet_id)


def user_tweets(ports: Ports, username: str, limit: int, cursor: str | None) -> Result:
    """A page of a user's tweets, newest first."""
    return ports.timeline.user_tweets(username, limit, cursor).shown(model.tweet_page)


def home_timeline(ports: Ports, caller: Principal, limit: int, cursor: str | None) -> Result:
    """A page of the caller's home timeline, newest first."""
    return ports.timeline.home(caller.user_id, limit, cursor).shown(model.tweet_page)
