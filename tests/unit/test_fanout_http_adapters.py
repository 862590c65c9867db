"""The users and timeline HTTP adapters: paging with `after`, and error classes."""

from __future__ import annotations

import pytest
import requests

from fanout.adapters.timeline import TimelineTweetIds
from fanout.adapters.users import UsersFollowerSource
from fanout.domain import Refused, Unavailable


class Response:
    def __init__(self, status: int, body=None) -> None:
        self.status_code, self.body, self.text = status, body, str(body)

    def json(self):
        if self.body is None:
            raise ValueError("no JSON")
        return self.body


class FakeUsers:
    """Answers follower-id pages for user 1 from an ascending list, like the users service."""

    def __init__(self, followers: list[int], fail_with=None) -> None:
        self.followers, self.fail_with, self.requests = followers, fail_with, []

    def get(self, url, params, timeout):
        self.requests.append((url, dict(params), timeout))
        if self.fail_with is not None:
            if isinstance(self.fail_with, Exception):
                raise self.fail_with
            return self.fail_with
        after = int(params.get("after", 0))
        rest = [f for f in self.followers if f > after]
        page = rest[:params["limit"]]
        more = len(rest) > len(page)
        return Response(200, {"ids": [str(i) for i in page],
                              "next_after": str(page[-1]) if more else None,
                              "followers_count": len(self.followers)})


def test_follower_pages_walk_every_page_with_after_and_a_timeout():
    users = FakeUsers(list(range(100, 111)))
    source = UsersFollowerSource("http://users", users, page_size=4, timeout=(0.5, 2.0))
    pages = list(source.follower_pages(1))
    assert [list(p.ids) for p in pages] == [[100, 101, 102, 103], [104, 105, 106, 107],
                                            [108, 109, 110]]
    assert [r[1].get("after") for r in users.requests] == [None, "103", "107"]
    assert all(r[0] == "http://users/internal/users/1/follower-ids" for r in users.requests)
    assert all(r[2] == (0.5, 2.0) for r in users.requests)


def test_the_follower_count_comes_from_a_one_id_page():
    users = FakeUsers(list(range(100, 130)))
    assert UsersFollowerSource("http://users", users).followers_count(1) == 30
    assert users.requests[0][1]["limit"] == 1


@pytest.mark.parametrize("failure", [
    requests.ConnectionError("refused"), requests.Timeout("slow"),
    Response(503, {"title": "down"}), Response(429, {}), Response(200, None),
])
def test_users_outages_are_unavailable(failure):
    source = UsersFollowerSource("http://users", FakeUsers([], fail_with=failure))
    with pytest.raises(Unavailable):
        list(source.follower_pages(1))


def test_an_unknown_user_is_refused():
    source = UsersFollowerSource("http://users", FakeUsers([], fail_with=Response(404, {})))
    with pytest.raises(Refused):
        source.followers_count(1)


def test_recent_tweet_ids_are_read_with_a_bounded_limit():
    class Timeline:
        def get(self, url, params, timeout):
            self.seen = (url, params)
            return Response(200, {"ids": ["9", "8"]})

    session = Timeline()
    assert TimelineTweetIds("http://tl/", session).recent_tweet_ids(7, 5000) == [9, 8]
    assert session.seen == ("http://tl/internal/authors/7/tweet-ids", {"limit": 800})
