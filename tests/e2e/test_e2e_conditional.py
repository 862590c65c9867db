"""Conditional requests through nginx (RFC 9110 §13): ETags that move with the body,
304 for If-None-Match, If-Match lists on edits, 412 and 428."""

from __future__ import annotations

import threading

import requests


def etag_of(api, username: str) -> str:
    resp = api.get(f"/users/{username}")
    assert resp.status_code == 200, resp.text
    return resp.headers["ETag"]


def test_a_profiles_etag_changes_when_a_follow_changes_its_counts(api) -> None:
    ada, bob = api.sign_up(), api.sign_up()
    before = etag_of(api, ada.username)
    assert not before.startswith("W/")
    api.follow(bob, ada)
    after = api.get(f"/users/{ada.username}")
    assert after.json()["followers_count"] == 1
    assert after.headers["ETag"] != before


def test_if_none_match_is_a_304_until_the_profile_changes(api) -> None:
    ada, bob = api.sign_up(), api.sign_up()
    etag = etag_of(api, ada.username)
    for method in (api.get, lambda path, **kw: api.request("HEAD", path, **kw)):
        same = method(f"/users/{ada.username}", headers={"If-None-Match": f'"x", {etag}'})
        assert same.status_code == 304
        assert same.headers["ETag"] == etag and same.content == b""
    api.follow(bob, ada)
    changed = api.get(f"/users/{ada.username}", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json()["followers_count"] == 1 and changed.headers["ETag"] != etag


def test_a_tweet_answers_304_to_its_own_etag(api) -> None:
    tweet = api.tweet(api.sign_up())
    etag = api.get(f"/tweets/{tweet['id']}").headers["ETag"]
    again = api.get(f"/tweets/{tweet['id']}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""


def test_an_if_match_list_with_one_current_tag_lets_the_edit_through(api) -> None:
    ada = api.sign_up()
    etag = etag_of(api, ada.username)
    resp = api.patch("/users/me", json={"bio": "listed"},
                     headers={**ada.auth, "If-Match": f'"stale", W/"weak", {etag}'})
    assert resp.status_code == 200, resp.text
    assert resp.json()["bio"] == "listed"


def test_an_edit_read_before_a_follow_still_goes_through(api) -> None:
    ada, bob = api.sign_up(), api.sign_up()
    etag = etag_of(api, ada.username)
    api.follow(bob, ada)
    resp = api.patch("/users/me", json={"bio": "counts moved, the profile did not"},
                     headers={**ada.auth, "If-Match": etag})
    assert resp.status_code == 200, resp.text


def test_entity_tags_compare_as_strings(api, problem) -> None:
    ada = api.sign_up()
    etag = etag_of(api, ada.username)
    padded = '"0' + etag[1:]  # "1-abc..." -> "01-abc...": the same number, another tag
    problem(api.patch("/users/me", json={"bio": "x"}, headers={**ada.auth, "If-Match": padded}),
            412)
    assert api.get(f"/users/{ada.username}",
                   headers={"If-None-Match": padded}).status_code == 200
    assert api.user(ada.username)["bio"] == ""


def test_an_empty_or_malformed_if_match_is_a_428(api, problem) -> None:
    ada = api.sign_up()
    etag = etag_of(api, ada.username)
    for value in ("", etag.strip('"')):
        problem(api.patch("/users/me", json={"bio": "x"},
                          headers={**ada.auth, "If-Match": value}), 428)
    assert api.user(ada.username)["bio"] == ""


def test_two_edits_from_the_same_etag_at_once_one_wins_and_one_is_a_412(api) -> None:
    ada = api.sign_up()
    etag = etag_of(api, ada.username)
    start = threading.Barrier(2)
    answers: dict[str, requests.Response] = {}

    def edit(bio: str) -> None:
        start.wait(timeout=10)
        # A session of its own per thread: a requests.Session is not thread-safe.
        answers[bio] = requests.patch(f"{api.base}/users/me", json={"bio": bio},
                                      headers={**ada.auth, "If-Match": etag}, timeout=10)

    threads = [threading.Thread(target=edit, args=(bio,)) for bio in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(resp.status_code for resp in answers.values()) == [200, 412]
    [winner] = [bio for bio, resp in answers.items() if resp.status_code == 200]
    assert api.user(ada.username)["bio"] == winner
