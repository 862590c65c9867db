"""Fixtures of the integration tests: the users app on the real stores; timeline's config,
its store clients and a stand-in users service."""

from __future__ import annotations

import dataclasses

import pytest

from timeline import config as timeline_config
from users import config as users_config
from users.entrypoints.app import create_app as create_users_app
from timeline.adapters import cassandra_store, redis_store


@pytest.fixture(scope="module")
def users_app():
    """The users app on the test profile's real Postgres and Redis; argon2 made cheap so
    the tests can register many users quickly."""
    cfg = dataclasses.replace(users_config.load(), argon2_time_cost=1, argon2_memory_kib=8192,
                              argon2_parallelism=1, pg_pool_max=12)
    assert cfg.stores.pg_database == "murmur_test", "run with MURMUR_PROFILE=test"
    application = create_users_app(cfg)
    yield application
    application.extensions["users"].close()


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
