"""What the gateway adds to the services' answers: authors on tweets, pages, principals.

Pure functions over plain dicts; the downstream clients are passed in behind protocols,
so this module needs neither Flask nor HTTP.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Protocol

TweetRecord = Mapping[str, Any]  # {id, author_id, text, created_at} as timeline answers


class AuthorDirectory(Protocol):
    def authors(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]: ...


def author_card(user: Mapping[str, Any]) -> dict[str, Any]:
    """The `author` object of a tweet, from a user or a batch entry."""
    return {"id": str(user["id"]), "username": user.get("username") or "",
            "display_name": user.get("display_name") or ""}


def unknown_author(author_id: str) -> dict[str, Any]:
    """Stand-in for an author users no longer knows: the tweet still shows, unattributed."""
    return {"id": author_id, "username": "", "display_name": ""}


def with_author(tweet: TweetRecord, author: Mapping[str, Any]) -> dict[str, Any]:
    """A public tweet: timeline's record with `author_id` replaced by the author."""
    return {"id": str(tweet["id"]), "author": dict(author), "text": tweet["text"],
            "created_at": tweet["created_at"]}


def attach_authors(tweets: Iterable[TweetRecord],
                   authors: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Public tweets, each with its author from `authors` (keyed by id)."""
    rendered = []
    for tweet in tweets:
        author_id = str(tweet["author_id"])
        known = authors.get(author_id)
        rendered.append(with_author(tweet, author_card(known) if known else
                                    unknown_author(author_id)))
    return rendered


def hydrate(tweets: list[TweetRecord], directory: AuthorDirectory) -> list[dict[str, Any]]:
    """Public tweets with their authors, looked up in one batch for the whole list."""
    ids = list(dict.fromkeys(str(t["author_id"]) for t in tweets))
    authors = directory.authors(ids) if ids else {}
    return attach_authors(tweets, authors)


def page(items: list[dict[str, Any]], next_cursor: Any) -> dict[str, Any]:
    """The public page shape."""
    return {"items": items, "next_cursor": str(next_cursor) if next_cursor else None}


USER_FIELDS = ("id", "username", "display_name", "bio", "followers_count", "following_count",
               "created_at")


def public_user(user: Mapping[str, Any]) -> dict[str, Any]:
    """The public profile fields of a user as users answers it (ids as strings)."""
    shown = {name: user.get(name) for name in USER_FIELDS}
    shown["id"] = str(shown["id"])
    for text_field in ("display_name", "bio"):
        shown[text_field] = shown[text_field] or ""
    return shown
