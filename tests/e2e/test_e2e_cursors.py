"""Page cursors through nginx: opaque, and good on the one list that issued them only.

A cursor of one list is a 422 naming `cursor` on another user's list of the same kind
and on another kind of list; so is a cursor that was altered, cut or made up. Paging
with the cursors the API gives still reaches every item once.
"""

from __future__ import annotations

import base64
import string

import pytest

from e2e.conftest import Client, Member


def page(api: Client, path: str, member: Member | None = None, **params) -> dict:
    resp = api.get(path, params=params, headers=member.auth if member else {})
    assert resp.status_code == 200, resp.text
    return resp.json()


def refused(api: Client, problem, path: str, cursor: str, member: Member | None = None) -> None:
    resp = api.get(path, params={"cursor": cursor}, headers=member.auth if member else {})
    errors = problem(resp, 422)["errors"]
    assert [e["field"] for e in errors] == ["cursor"], (path, errors)


@pytest.fixture()
def two_stars(api: Client) -> tuple[Member, Member]:
    """Two users, each followed by the same two fans, following one of them, and with
    three tweets each: every list of each has a second page at limit=1."""
    ada, eve = api.sign_up("ada"), api.sign_up("eve")
    fans = [api.sign_up("fan") for _ in range(2)]
    for fan in fans:
        api.follow(fan, ada)
        api.follow(fan, eve)
        api.follow(ada, fan)
        api.follow(eve, fan)
    for star in (ada, eve):
        for i in range(3):
            api.tweet(star, f"{star.username} {i}")
    return ada, eve


def test_a_cursor_says_nothing_readable(api, two_stars) -> None:
    ada, _ = two_stars
    cursor = page(api, f"/users/{ada.username}/followers", limit=1)["next_cursor"]
    assert set(cursor) <= set(string.ascii_letters + string.digits + "-_")
    decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    assert b"followers" not in decoded and b":" not in decoded


def test_a_follow_list_cursor_is_refused_on_another_users_list_and_on_other_lists(
        api, problem, two_stars) -> None:
    ada, eve = two_stars
    cursor = page(api, f"/users/{ada.username}/followers", limit=1)["next_cursor"]
    assert cursor
    for path in (f"/users/{eve.username}/followers", f"/users/{ada.username}/following",
                 f"/users/{eve.username}/following", f"/users/{ada.username}/tweets"):
        refused(api, problem, path, cursor)
    refused(api, problem, "/timeline", cursor, ada)
    assert page(api, f"/users/{ada.username}/followers", limit=1, cursor=cursor)["items"]


def test_a_tweet_list_cursor_is_refused_on_another_users_list_and_on_other_lists(
        api, problem, two_stars) -> None:
    ada, eve = two_stars
    tweets = page(api, f"/users/{ada.username}/tweets", limit=1)["next_cursor"]
    home = page(api, "/timeline", ada, limit=1)["next_cursor"]
    assert tweets and home
    refused(api, problem, f"/users/{eve.username}/tweets", tweets)
    refused(api, problem, "/timeline", tweets, ada)
    refused(api, problem, f"/users/{ada.username}/followers", tweets)
    # A home timeline's cursor is its owner's: not another user's, nor an author's list.
    refused(api, problem, "/timeline", home, eve)
    refused(api, problem, f"/users/{ada.username}/tweets", home)


def test_an_altered_cut_or_made_up_cursor_is_refused(api, problem, two_stars) -> None:
    ada, _ = two_stars
    path = f"/users/{ada.username}/followers"
    cursor = page(api, path, limit=1)["next_cursor"]
    middle = len(cursor) // 2
    altered = cursor[:middle] + ("A" if cursor[middle] != "A" else "B") + cursor[middle + 1:]
    made_up = base64.urlsafe_b64encode(b"c1:followers:1:1").rstrip(b"=").decode()
    for bad in (altered, cursor[:-1], cursor[:-4], cursor + "A", made_up, "A" * len(cursor)):
        refused(api, problem, path, bad)
    # What cannot be a cursor at all is refused by the gateway, the same way.
    for bad in ("not a cursor!", "x" * 129, "é"):
        refused(api, problem, path, bad)


def test_paging_with_the_cursors_given_reaches_every_item_once(api, two_stars) -> None:
    ada, _ = two_stars

    def walk(path: str, member: Member | None = None) -> list[str]:
        seen, params = [], {"limit": 1}
        for _ in range(20):
            body = page(api, path, member, **params)
            seen += [item.get("username") or item["id"] for item in body["items"]]
            if body["next_cursor"] is None:
                return seen
            params = {"limit": 1, "cursor": body["next_cursor"]}
        raise AssertionError(f"{path} did not end")

    assert len(walk(f"/users/{ada.username}/followers")) == 2
    assert len(walk(f"/users/{ada.username}/following")) == 2
    tweets = walk(f"/users/{ada.username}/tweets")
    assert len(tweets) == 3 and len(set(tweets)) == 3
    assert set(tweets) <= set(walk("/timeline", ada))
