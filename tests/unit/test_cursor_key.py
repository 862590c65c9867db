"""The page cursor key: one secret, read like the others, without which users and
timeline do not start, and with which any replica continues another's pages."""

from __future__ import annotations

from dataclasses import replace

import pytest

from unit import _timeline_fakes, _users_fakes
from common import config
from common.cursors import MissingCursorKey
from common.service import Service
from timeline import config as timeline_config
from timeline.entrypoints.app import create_app as timeline_app
from users import config as users_config
from users.entrypoints.app import create_app as users_app


def test_the_key_comes_from_its_variable_else_from_the_generated_secret(monkeypatch, tmp_path):
    monkeypatch.delenv("MURMUR_CURSOR_KEY", raising=False)
    monkeypatch.setenv("MURMUR_SECRETS_DIR", str(tmp_path))
    assert users_config.load().cursor_key == timeline_config.load().cursor_key == ""
    (tmp_path / "cursor-key").write_text("generated-at-first-start\n")
    assert users_config.load().cursor_key == "generated-at-first-start"
    assert timeline_config.load().cursor_key == "generated-at-first-start"
    monkeypatch.setenv("MURMUR_CURSOR_KEY", "set-by-the-deployment")
    users = users_config.load()
    assert users.cursor_key == "set-by-the-deployment"
    assert "set-by-the-deployment" not in repr(users)
    assert config.CURSOR_KEY.secret_file == "cursor-key"


def timeline_fakes() -> dict:
    ports = _timeline_fakes.memory_ports()
    return dict(tweets=ports.tweets, cache=ports.cache, home=ports.home,
                idempotency=ports.idempotency, followees=ports.followees,
                authors=ports.authors, ids=ports.ids)


@pytest.mark.parametrize("key", ["", "too short"])
def test_users_does_not_start_without_a_key(key):
    cfg = replace(users_config.load(), cursor_key=key)
    with pytest.raises(MissingCursorKey, match="MURMUR_CURSOR_KEY"):
        users_app(service=Service("users", cfg, _users_fakes.memory_ports()))


@pytest.mark.parametrize("key", ["", "too short"])
def test_timeline_does_not_start_without_a_key(key):
    cfg = replace(timeline_config.load(), cursor_key=key)
    with pytest.raises(MissingCursorKey, match="MURMUR_CURSOR_KEY"):
        timeline_app(cfg, **timeline_fakes())


def test_a_replica_with_the_same_key_continues_another_replicas_page():
    fakes = timeline_fakes()
    one, two = (timeline_app(timeline_config.load(), **fakes) for _ in range(2))
    other_key = timeline_app(replace(timeline_config.load(), cursor_key="x" * 32), **fakes)
    try:
        for i in range(3):
            assert one.test_client().post("/tweets", json={"text": f"t{i}"},
                                          headers={"X-User-Id": "7"}).status_code == 201
        first = one.test_client().get("/authors/7/tweets?limit=2").json
        query = f"/authors/7/tweets?limit=2&cursor={first['next_cursor']}"
        assert len(two.test_client().get(query).json["items"]) == 1
        refused = other_key.test_client().get(query)
        assert refused.status_code == 422 and refused.json["errors"][0]["field"] == "cursor"
    finally:
        for app in (one, two, other_key):
            app.extensions["timeline"].close()
