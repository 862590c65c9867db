"""One URL per resource, one media type per body, through nginx: a tweet id only in its
canonical decimal, `me` never as a user to follow, and a JSON body only as JSON."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("spelling", ["{id}.0", "+{id}", "0{id}", "%20{id}", "{id}%20",
                                      "{id}e0", "00{id}"])
def test_a_tweet_id_in_any_other_spelling_is_a_422_naming_the_id(api, problem,
                                                                 spelling) -> None:
    ada = api.sign_up()
    tweet = api.tweet(ada)
    assert api.get(f"/tweets/{tweet['id']}").status_code == 200
    path = "/tweets/" + spelling.format(id=tweet["id"])
    for resp in (api.get(path), api.delete(path, headers=ada.auth)):
        errors = problem(resp, 422)["errors"]
        assert [e["field"] for e in errors] == ["id"], (path, errors)
    assert api.get(f"/tweets/{tweet['id']}").status_code == 200  # not deleted


def test_following_or_unfollowing_me_is_a_422_as_following_yourself_is(api, problem) -> None:
    ada = api.sign_up()
    yourself = problem(api.put(f"/users/me/following/{ada.username}", headers=ada.auth), 422)
    for method in ("PUT", "DELETE"):
        body = problem(api.request(method, "/users/me/following/me", headers=ada.auth), 422)
        assert [e["field"] for e in body["errors"]] == ["username"]
        assert "yourself" in body["errors"][0]["message"]
    assert [e["field"] for e in yourself["errors"]] == ["username"]
    assert api.user(ada.username)["following_count"] == 0


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_json_body_sent_without_its_type_is_a_415(api, problem, content_type) -> None:
    ada = api.sign_up()
    headers = {"Content-Type": content_type} if content_type else {}
    body = '{"text": "hello"}'
    resp = api.post("/tweets", data=body, headers={**ada.auth, **headers})
    assert "application/json" in problem(resp, 415)["detail"]
    assert resp.headers["Accept-Post"] == "application/json"
    resp = api.post("/sessions", data='{"username": "x", "password": "y"}', headers=headers)
    problem(resp, 415)
    profile = api.get(f"/users/{ada.username}")
    resp = api.patch("/users/me", data='{"bio": "hi"}',
                     headers={**ada.auth, **headers, "If-Match": profile.headers["ETag"]})
    problem(resp, 415)
    assert resp.headers["Accept-Patch"] == "application/json"
    assert api.user(ada.username)["bio"] != "hi"
    assert api.post("/tweets", data=body, headers={
        **ada.auth, "Content-Type": "application/json; charset=utf-8"}).status_code == 201
