"""Tweets through nginx: posting, reading, deleting, idempotency and pages."""

from __future__ import annotations

import uuid


def test_a_post_answers_the_tweet_with_its_author(api) -> None:
    ada = api.sign_up(display_name="Ada")
    resp = api.post("/tweets", json={"text": "first light"}, headers=ada.auth)
    assert resp.status_code == 201, resp.text
    tweet = resp.json()
    assert tweet["text"] == "first light" and tweet["created_at"]
    assert isinstance(tweet["id"], str) and tweet["id"].isdigit()
    assert tweet["author"] == {"id": ada.id, "username": ada.username, "display_name": "Ada"}
    assert "author_id" not in tweet


def test_a_tweet_can_be_read_by_anyone(api) -> None:
    ada = api.sign_up()
    posted = api.tweet(ada, "readable")
    resp = api.get(f"/tweets/{posted['id']}")
    assert resp.status_code == 200
    assert resp.json() == posted


def test_an_unknown_tweet_is_a_404(api, problem) -> None:
    problem(api.get("/tweets/1"), 404)


def test_a_malformed_tweet_id_is_a_422(api, problem) -> None:
    problem(api.get("/tweets/not-a-number"), 422)


def test_invalid_tweets_are_422(api, problem) -> None:
    ada = api.sign_up()
    for body in ({"text": ""}, {"text": "x" * 281}, {}, {"text": 5}):
        errors = problem(api.post("/tweets", json=body, headers=ada.auth), 422)["errors"]
        assert [e["field"] for e in errors] == ["text"], (body, errors)


def test_a_280_character_tweet_is_accepted(api) -> None:
    ada = api.sign_up()
    assert len(api.tweet(ada, "é" * 280)["text"]) == 280


def test_posting_needs_a_token(api, problem) -> None:
    problem(api.post("/tweets", json={"text": "anonymous"}), 401)


def test_the_same_idempotency_key_gives_one_tweet(api) -> None:
    ada = api.sign_up()
    key = uuid.uuid4().hex
    first = api.tweet(ada, "only once", **{"Idempotency-Key": key})
    second = api.tweet(ada, "only once", **{"Idempotency-Key": key})
    assert second["id"] == first["id"]
    mine = api.get(f"/users/{ada.username}/tweets").json()["items"]
    assert [t["id"] for t in mine] == [first["id"]]


def test_a_users_tweets_come_newest_first_in_pages(api) -> None:
    ada = api.sign_up()
    ids = [api.tweet(ada, f"n{i}")["id"] for i in range(5)]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get(f"/users/{ada.username}/tweets", params=params).json()
        assert all(t["author"]["username"] == ada.username for t in page["items"])
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))


def test_the_tweets_of_an_unknown_user_are_a_404(api, problem) -> None:
    problem(api.get(f"/users/{api.unique_name('ghost')}/tweets"), 404)


def test_only_the_author_may_delete_a_tweet(api, problem) -> None:
    ada, eve = api.sign_up(), api.sign_up()
    tweet = api.tweet(ada)
    problem(api.delete(f"/tweets/{tweet['id']}", headers=eve.auth), 403)
    problem(api.delete(f"/tweets/{tweet['id']}"), 401)
    assert api.delete(f"/tweets/{tweet['id']}", headers=ada.auth).status_code == 204
    problem(api.get(f"/tweets/{tweet['id']}"), 404)


def test_deleting_a_tweet_again_answers_its_author_as_the_first_delete_did(api, problem) -> None:
    ada, eve = api.sign_up(), api.sign_up()
    tweet = api.tweet(ada, "retried")
    first = api.delete(f"/tweets/{tweet['id']}", headers=ada.auth)
    again = api.delete(f"/tweets/{tweet['id']}", headers=ada.auth)
    assert (first.status_code, again.status_code) == (204, 204)
    assert again.content == b""
    problem(api.delete(f"/tweets/{tweet['id']}", headers=eve.auth), 404)
    problem(api.get(f"/tweets/{tweet['id']}"), 404)
    problem(api.delete(f"/tweets/{int(tweet['id']) + 1}", headers=ada.auth), 404)


def test_the_home_timeline_needs_a_token(api, problem) -> None:
    resp = api.get("/timeline")
    problem(resp, 401)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_home_timeline_page_parameters_are_validated(api, problem) -> None:
    ada = api.sign_up()
    for params, field in [({"limit": 0}, "limit"), ({"limit": 101}, "limit"),
                          ({"cursor": "zzzz"}, "cursor")]:
        errors = problem(api.get("/timeline", params=params, headers=ada.auth), 422)["errors"]
        assert field in [e["field"] for e in errors], (params, errors)


def test_the_home_timeline_pages_newest_first(api) -> None:
    ada = api.sign_up()
    ids = [api.tweet(ada, f"t{i}")["id"] for i in range(3)]
    first = api.get("/timeline", params={"limit": 2}, headers=ada.auth).json()
    assert [t["id"] for t in first["items"]] == [ids[2], ids[1]]
    assert first["items"][0]["author"]["username"] == ada.username
    second = api.get("/timeline", params={"limit": 2, "cursor": first["next_cursor"]},
                     headers=ada.auth).json()
    assert [t["id"] for t in second["items"]] == [ids[0]]
    assert second["next_cursor"] is None
