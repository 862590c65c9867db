"""One URL per resource and one media type per body: the gateway refuses the rest before
any peer is called (non-canonical ids and `me` as a followee: 422; bodies not sent as
JSON: 415)."""

from __future__ import annotations

import pytest

from gateway.adapters.tokens import TokenVerifier
from gateway.entrypoints.app import create_app
from gateway.entrypoints.views import PREFIX
from unit._gateway_tokens import PUBLIC, bearer
from unit.test_gateway_api import FakeTimeline, FakeUsers, config


@pytest.fixture()
def peers():
    return FakeUsers(), FakeTimeline()


@pytest.fixture()
def client(peers):
    users, timeline = peers
    return create_app(config(), users=users, timeline=timeline,
                      tokens=TokenVerifier(PUBLIC)).test_client()


def problem(resp, status: int) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"
    return resp.get_json()


@pytest.mark.parametrize("raw", ["01", "+1", "1.0", "%201", "1%20", "1e3", "0x1", "-1", "0",
                                 "9223372036854775808", "%EF%BC%91",  # a fullwidth 1
                                 "1_000"])
def test_a_tweet_id_not_in_canonical_decimal_is_a_422_naming_the_id(client, peers, raw):
    for resp in (client.get(f"{PREFIX}/tweets/{raw}"),
                 client.delete(f"{PREFIX}/tweets/{raw}", headers=bearer())):
        assert [e["field"] for e in problem(resp, 422)["errors"]] == ["id"]
    assert peers[1].calls == []


@pytest.mark.parametrize("raw", ["1", "97", "9223372036854775807"])
def test_a_canonical_tweet_id_reaches_timeline_as_written(client, peers, raw):
    assert client.get(f"{PREFIX}/tweets/{raw}").status_code == 200
    assert peers[1].calls == [("tweet", raw)]


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_me_as_the_user_to_follow_is_a_422_naming_the_username(client, peers, method):
    resp = client.open(f"{PREFIX}/users/me/following/me", method=method, headers=bearer())
    errors = problem(resp, 422)["errors"]
    assert [e["field"] for e in errors] == ["username"]
    assert "yourself" in errors[0]["message"]
    assert peers[0].calls == []


@pytest.mark.parametrize("method,path,header", [
    ("POST", "/users", "Accept-Post"), ("POST", "/sessions", "Accept-Post"),
    ("POST", "/tweets", "Accept-Post"), ("PATCH", "/users/me", "Accept-Patch"),
])
@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "application/jsonx", "application/problem+json"])
def test_a_body_not_sent_as_json_is_a_415_naming_the_type(client, peers, method, path, header,
                                                          content_type):
    headers = {**bearer(), "If-Match": '"3"'}
    if content_type:
        headers["Content-Type"] = content_type
    resp = client.open(PREFIX + path, method=method, data='{"text": "hi"}', headers=headers)
    body = problem(resp, 415)
    assert "application/json" in body["detail"]
    assert resp.headers[header] == "application/json"
    assert peers[0].calls == [] and peers[1].calls == []


def test_json_with_parameters_or_in_capitals_is_json(client, peers):
    for content_type in ("application/json; charset=utf-8", "Application/JSON"):
        resp = client.post(f"{PREFIX}/tweets", data='{"text": "hi"}',
                           headers={**bearer(), "Content-Type": content_type})
        assert resp.status_code == 201, resp.get_data(as_text=True)


def test_without_a_token_a_body_of_any_type_is_a_401_first(client):
    resp = client.post(f"{PREFIX}/tweets", data="hi", headers={"Content-Type": "text/plain"})
    problem(resp, 401)


def test_routes_without_a_body_take_any_content_type(client):
    resp = client.get(f"{PREFIX}/users/ada", headers={"Content-Type": "text/plain"})
    assert resp.status_code == 200
    resp = client.put(f"{PREFIX}/users/me/following/bob", data="x",
                      headers={**bearer(), "Content-Type": "text/plain"})
    assert resp.status_code == 204


def test_the_document_names_what_a_route_answers_to_bad_ids_and_media_types(client):
    doc = client.get(f"{PREFIX}/openapi.json").get_json()
    for path, method in [("/tweets", "post"), ("/users", "post"), ("/sessions", "post"),
                         ("/users/me", "patch")]:
        assert "415" in doc["paths"][PREFIX + path][method]["responses"]
    for method in ("get", "delete"):
        responses = doc["paths"][PREFIX + "/tweets/{id}"][method]["responses"]
        assert "422" in responses
    for path in ("/tweets", "/timeline", "/users/{username}"):
        for operation in doc["paths"][PREFIX + path].values():
            assert "431" in operation["responses"]
    query = doc["paths"][PREFIX + "/timeline"]["get"]["parameters"]
    cursor = next(p for p in query if p["name"] == "cursor")
    assert "bound to the list" in cursor["description"]
    assert cursor["schema"]["maxLength"] == 128
