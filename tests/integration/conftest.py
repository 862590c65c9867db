"""Fixtures of the timeline integration tests: its config and a stand-in users service."""

from __future__ import annotations

import pytest

from timeline import config as timeline_config


class FakeFollowees:
    """Stands in for the users service: whom each reader follows, celebrities apart."""

    def __init__(self) -> None:
        self.following: dict[int, list[int]] = {}
        self.by_user: dict[int, list[int]] = {}  # the celebrities a reader follows

    def celebrities(self, user_id):
        return self.by_user.get(user_id, [])

    def followees(self, user_id, limit):
        return self.following.get(user_id, [])[:limit]


@pytest.fixture(scope="module")
def timeline_cfg() -> timeline_config.Config:
    cfg = timeline_config.load()
    assert cfg.stores.keyspace == "murmur_test", "run with MURMUR_PROFILE=test"
    return cfg


@pytest.fixture(scope="module")
def followees() -> FakeFollowees:
    return FakeFollowees()
