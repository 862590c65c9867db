"""The follow graph through nginx: follow, unfollow, lists, and counts under concurrency."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests


def test_following_is_idempotent_and_counted_once(api) -> None:
    ada, bob = api.sign_up(), api.sign_up()
    api.follow(ada, bob)
    api.follow(ada, bob)
    assert api.user(bob.username)["followers_count"] == 1
    assert api.user(ada.username)["following_count"] == 1


def test_unfollowing_is_idempotent(api) -> None:
    ada, bob = api.sign_up(), api.sign_up()
    api.follow(ada, bob)
    api.unfollow(ada, bob)
    api.unfollow(ada, bob)
    assert api.user(bob.username)["followers_count"] == 0
    assert api.user(ada.username)["following_count"] == 0


def test_following_or_unfollowing_an_unknown_user_is_a_404(api, problem) -> None:
    ada = api.sign_up()
    ghost = api.unique_name("ghost")
    problem(api.put(f"/users/me/following/{ghost}", headers=ada.auth), 404)
    problem(api.delete(f"/users/me/following/{ghost}", headers=ada.auth), 404)


def test_following_yourself_is_a_422(api, problem) -> None:
    ada = api.sign_up()
    problem(api.put(f"/users/me/following/{ada.username}", headers=ada.auth), 422)


def test_following_needs_a_token(api, problem) -> None:
    bob = api.sign_up()
    problem(api.put(f"/users/me/following/{bob.username}"), 401)
    problem(api.delete(f"/users/me/following/{bob.username}"), 401)


def test_follower_and_following_lists_page_through_everyone_once(api) -> None:
    star = api.sign_up("star")
    fans = [api.sign_up("fan") for _ in range(3)]
    for fan in fans:
        api.follow(fan, star)
    seen, cursor = [], None
    while True:
        resp = api.get(f"/users/{star.username}/followers",
                       params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert resp.status_code == 200, resp.text
        page = resp.json()
        assert len(page["items"]) <= 2
        seen += [u["username"] for u in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(f.username for f in fans)
    following = api.get(f"/users/{fans[0].username}/following").json()
    assert [u["username"] for u in following["items"]] == [star.username]
    assert following["next_cursor"] is None


def test_lists_of_an_unknown_user_are_404(api, problem) -> None:
    ghost = api.unique_name("ghost")
    problem(api.get(f"/users/{ghost}/followers"), 404)
    problem(api.get(f"/users/{ghost}/following"), 404)


def test_bad_page_parameters_are_422(api, problem) -> None:
    star = api.sign_up()
    for params, field in [({"limit": 0}, "limit"), ({"limit": 101}, "limit"),
                          ({"limit": "ten"}, "limit"), ({"cursor": "not-a-real-cursor"}, "cursor"),
                          ({"cursor": "bad cursor!"}, "cursor")]:
        errors = problem(api.get(f"/users/{star.username}/followers", params=params),
                         422)["errors"]
        assert field in [e["field"] for e in errors], (params, errors)


def test_concurrent_follows_leave_exact_counts(api) -> None:
    star = api.sign_up("star")
    fans = [api.sign_up("fan") for _ in range(8)]

    def follow(fan) -> int:
        # Each fan follows twice at once and unfollow never runs: the count must be 8.
        with requests.Session() as http:
            return http.put(f"{api.base}/users/me/following/{star.username}",
                            headers=fan.auth, timeout=10).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(follow, fans + fans))
    assert statuses == [204] * 16
    assert api.user(star.username)["followers_count"] == 8
    assert all(api.user(f.username)["following_count"] == 1 for f in fans)
    listed = api.get(f"/users/{star.username}/followers", params={"limit": 100}).json()
    assert sorted(u["username"] for u in listed["items"]) == sorted(f.username for f in fans)
