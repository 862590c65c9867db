"""Fixtures of the timeline integration tests: its config, its store clients and a stand-in
users service."""

from __future__ import annotations

import pytest

from timeline import config as timeline_config
from timeline.adapters import cassandra_store, redis_store


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


@pytest.fixture(scope="module")
def db(timeline_cfg) -> cassandra_store.CassandraSession:
    """A session on the test keyspace (users' tests define their own `db`)."""
    session = cassandra_store.CassandraSession(timeline_cfg.stores,
                                               timeline_cfg.cassandra_timeout)
    yield session
    session.shutdown()


@pytest.fixture(scope="module")
def rds(timeline_cfg):
    """A Redis client on the test profile's database."""
    client = redis_store.connect(timeline_cfg.stores)
    yield client
    client.close()
