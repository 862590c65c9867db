"""A profile's entity tag moves with everything its body shows; an edit is conditional on
the profile version the tag names, not on the follower counts."""

from __future__ import annotations

import pytest

from common.service import Service
from unit._users_fakes import memory_ports
from users import config as users_config
from users.entrypoints.app import create_app


@pytest.fixture
def client():
    return create_app(service=Service("users", users_config.load(), memory_ports())).test_client()


def sign_up(client, name: str) -> dict:
    return client.post("/users", json={"username": name, "password": "correct horse"}).json


def etag(client, name: str) -> str:
    return client.get(f"/users/{name}").headers["ETag"]


def test_the_etag_is_strong_and_the_same_while_the_profile_is_unchanged(client):
    sign_up(client, "alice")
    first = etag(client, "alice")
    assert first.startswith('"') and first.endswith('"') and not first.startswith("W/")
    assert etag(client, "alice") == first


def test_the_etag_changes_when_the_counts_change(client):
    sign_up(client, "alice")
    bob = sign_up(client, "bob")
    before = etag(client, "alice")
    client.put(f"/users/{bob['id']}/following/alice", headers={"X-User-Id": bob["id"]})
    assert client.get("/users/alice").json["followers_count"] == 1
    assert etag(client, "alice") != before


def test_an_edit_from_before_a_follow_still_goes_through(client):
    alice, bob = sign_up(client, "alice"), sign_up(client, "bob")
    read = etag(client, "alice")
    client.put(f"/users/{bob['id']}/following/alice", headers={"X-User-Id": bob["id"]})
    resp = client.patch(f"/users/{alice['id']}", json={"bio": "hello"},
                        headers={"X-User-Id": alice["id"], "If-Match": read})
    assert resp.status_code == 200
    assert resp.headers["ETag"] == etag(client, "alice") != read
    stale = client.patch(f"/users/{alice['id']}", json={"bio": "again"},
                         headers={"X-User-Id": alice["id"], "If-Match": read})
    assert stale.status_code == 412
