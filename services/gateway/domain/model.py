"""The caller, the answers the gateway hands on, and what of them the public API shows.

Pure functions over plain dicts: the services answer JSON, and the gateway shows its
clients a fixed subset of it (no password hash, no internal version field, ids as strings).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping


@dataclass(frozen=True)
class Principal:
    """The authenticated caller, as their access token names them."""

    user_id: str
    username: str


@dataclass(frozen=True)
class Result:
    """What a service answered, as the gateway hands it on.

    `version` is the entity tag the peer gave its representation (a profile's, which
    changes with anything its body shows, sent back as If-Match to edit it); `degraded`
    names the fallback an answer was built from, if it was.
    """

    body: Any
    version: str | None = None
    degraded: str | None = None

    def shown(self, render: Callable[[Any], Any]) -> "Result":
        """The same result with its body rendered for the public."""
        return replace(self, body=render(self.body))


USER_FIELDS = ("id", "username", "display_name", "bio", "followers_count", "following_count",
               "created_at")


def public_user(user: Mapping[str, Any]) -> dict[str, Any]:
    """The public profile fields of a user as users answers it (ids as strings)."""
    shown = {name: user.get(name) for name in USER_FIELDS}
    shown["id"] = str(shown["id"])
    for text_field in ("display_name", "bio"):
        shown[text_field] = shown[text_field] or ""
    return shown


def public_author(author: Mapping[str, Any]) -> dict[str, Any]:
    """The `author` of a tweet. One that timeline does not know (yet) still has its id; its
    names are empty, and the tweet shows unattributed rather than not at all."""
    return {"id": str(author["id"]), "username": author.get("username") or "",
            "display_name": author.get("display_name") or ""}


def public_tweet(tweet: Mapping[str, Any]) -> dict[str, Any]:
    """A tweet as timeline answers it, with its author, in the public shape."""
    author = tweet.get("author") or {"id": tweet["author_id"]}
    return {"id": str(tweet["id"]), "author": public_author(author), "text": tweet["text"],
            "created_at": tweet["created_at"]}


def page(items: list[dict[str, Any]], next_cursor: Any) -> dict[str, Any]:
    """The public page shape."""
    return {"items": items, "next_cursor": str(next_cursor) if next_cursor else None}


def user_page(body: Mapping[str, Any]) -> dict[str, Any]:
    """A page of users as users answers it, in the public shape."""
    return page([public_user(u) for u in body.get("items") or []], body.get("next_cursor"))


def tweet_page(body: Mapping[str, Any]) -> dict[str, Any]:
    """A page of tweets with their authors as timeline answers it, in the public shape."""
    return page([public_tweet(t) for t in body.get("items") or []], body.get("next_cursor"))
