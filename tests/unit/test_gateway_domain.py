"""What the gateway shows of the services' answers: public users, tweets, pages."""

from __future__ import annotations

from gateway.domain import model
from gateway.domain.model import Result

ADA = {"id": "1", "username": "ada", "display_name": "Ada"}


def tweet(tweet_id: int, author: dict) -> dict:
    return {"id": tweet_id, "author": author, "text": "hi",
            "created_at": "2026-01-01T00:00:00.000Z", "internal": "x"}


def test_a_public_tweet_keeps_its_author_and_only_public_fields() -> None:
    assert model.public_tweet(tweet(10, ADA)) == {
        "id": "10", "author": ADA, "text": "hi", "created_at": "2026-01-01T00:00:00.000Z"}


def test_an_author_not_known_yet_shows_with_empty_names() -> None:
    shown = model.public_tweet(tweet(10, {"id": 9, "username": None, "display_name": None}))
    assert shown["author"] == {"id": "9", "username": "", "display_name": ""}


def test_a_tweet_without_an_author_object_still_shows_unattributed() -> None:
    record = {"id": "10", "author_id": "9", "text": "x", "created_at": "t"}
    assert model.public_tweet(record)["author"] == {"id": "9", "username": "",
                                                    "display_name": ""}


def test_numeric_ids_become_strings() -> None:
    shown = model.public_tweet(tweet(2**62, {**ADA, "id": 1}))
    assert shown["id"] == str(2**62)
    assert shown["author"]["id"] == "1"


def test_a_public_user_shows_only_public_fields() -> None:
    stored = {"id": 7, "username": "ada", "display_name": None, "bio": "b",
              "followers_count": 3, "following_count": 4, "created_at": "t",
              "password_hash": "secret", "version": 2}
    assert model.public_user(stored) == {
        "id": "7", "username": "ada", "display_name": "", "bio": "b", "followers_count": 3,
        "following_count": 4, "created_at": "t"}


def test_pages_show_their_items_in_public_shape() -> None:
    assert model.tweet_page({"items": [tweet(2, ADA), tweet(1, ADA)], "next_cursor": "c"}) == {
        "items": [model.public_tweet(tweet(2, ADA)), model.public_tweet(tweet(1, ADA))],
        "next_cursor": "c"}
    assert model.user_page({"items": [{"id": 7, "username": "ada"}]})["items"][0]["id"] == "7"


def test_a_last_page_has_a_null_cursor() -> None:
    assert model.page([], None) == {"items": [], "next_cursor": None}
    assert model.page([], "") == {"items": [], "next_cursor": None}
    assert model.page([], "abc") == {"items": [], "next_cursor": "abc"}


def test_a_shown_result_keeps_its_version_and_marker() -> None:
    result = Result({"id": 7, "username": "ada"}, version='"2"', degraded="x")
    shown = result.shown(model.public_user)
    assert (shown.body["id"], shown.version, shown.degraded) == ("7", '"2"', "x")
