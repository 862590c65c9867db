"""The gateway's own logic: authors attached to tweets, public users, pages."""

from __future__ import annotations

from gateway import domain


class CountingDirectory:
    def __init__(self, users: dict[str, dict]) -> None:
        self.users, self.calls = users, []

    def authors(self, ids):
        ids = list(ids)
        self.calls.append(ids)
        return {i: self.users[i] for i in ids if i in self.users}


ADA = {"id": "1", "username": "ada", "display_name": "Ada"}
BOB = {"id": "2", "username": "bob", "display_name": "Bob"}


def tweet(tweet_id: int, author_id: int, text: str = "hi") -> dict:
    return {"id": str(tweet_id), "author_id": str(author_id), "text": text,
            "created_at": "2026-01-01T00:00:00.000Z"}


def test_authors_replace_author_ids() -> None:
    [rendered] = domain.hydrate([tweet(10, 1)], CountingDirectory({"1": ADA}))
    assert rendered == {"id": "10", "author": ADA, "text": "hi",
                        "created_at": "2026-01-01T00:00:00.000Z"}
    assert "author_id" not in rendered


def test_one_batch_call_serves_a_whole_page_without_repeating_ids() -> None:
    directory = CountingDirectory({"1": ADA, "2": BOB})
    rendered = domain.hydrate([tweet(13, 1), tweet(12, 2), tweet(11, 1)], directory)
    assert directory.calls == [["1", "2"]]
    assert [t["author"]["username"] for t in rendered] == ["ada", "bob", "ada"]
    assert [t["id"] for t in rendered] == ["13", "12", "11"]


def test_an_empty_page_needs_no_batch_call() -> None:
    directory = CountingDirectory({})
    assert domain.hydrate([], directory) == []
    assert directory.calls == []


def test_an_unknown_author_still_shows_the_tweet_unattributed() -> None:
    [rendered] = domain.hydrate([tweet(10, 9)], CountingDirectory({}))
    assert rendered["author"] == {"id": "9", "username": "", "display_name": ""}


def test_numeric_ids_become_strings() -> None:
    record = {"id": 2**62, "author_id": 1, "text": "x", "created_at": "t"}
    [rendered] = domain.attach_authors([record], {"1": {**ADA, "id": 1}})
    assert rendered["id"] == str(2**62)
    assert rendered["author"]["id"] == "1"


def test_a_public_user_shows_only_public_fields() -> None:
    stored = {"id": 7, "username": "ada", "display_name": None, "bio": "b",
              "followers_count": 3, "following_count": 4, "created_at": "t",
              "password_hash": "secret", "version": 2}
    assert domain.public_user(stored) == {
        "id": "7", "username": "ada", "display_name": "", "bio": "b", "followers_count": 3,
        "following_count": 4, "created_at": "t"}


def test_a_last_page_has_a_null_cursor() -> None:
    assert domain.page([], None) == {"items": [], "next_cursor": None}
    assert domain.page([], "") == {"items": [], "next_cursor": None}
    assert domain.page([], "abc") == {"items": [], "next_cursor": "abc"}
