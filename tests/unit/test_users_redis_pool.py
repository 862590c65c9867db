"""The users service's Redis client has a bounded pool: callers wait briefly, then miss."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
import redis

from common import outages
from users import config as users_config
from users.adapters.redis_cache import RedisProfileCache, close_client, redis_breaker
from users.bootstrap import redis_client


class NoSocket(redis.Connection):
    """A connection that never opens a socket: enough to count what the pool hands out."""

    def connect(self, *args, **kwargs):
        pass

    def can_read(self, *args, **kwargs):
        return False

    def disconnect(self, *args, **kwargs):
        pass


@pytest.fixture
def cfg() -> users_config.UsersConfig:
    return dataclasses.replace(users_config.load(), redis_pool_max=2, redis_pool_timeout=0.2)


@pytest.fixture
def client(cfg):
    client = redis_client(cfg)
    client.connection_pool.connection_class = NoSocket
    yield client
    close_client(client)


def test_the_pool_is_bounded_by_the_setting(cfg):
    client = redis_client(cfg)
    pool = client.connection_pool
    assert isinstance(pool, redis.BlockingConnectionPool)
    assert (pool.max_connections, pool.timeout) == (2, 0.2)
    assert pool.connection_kwargs["socket_timeout"] == cfg.redis_timeout
    assert pool.connection_kwargs["socket_connect_timeout"] == cfg.redis_timeout
    close_client(client)


def test_the_default_bound_is_set():
    assert users_config.load().redis_pool_max > 0


def test_a_caller_finding_every_connection_busy_waits_then_fails_as_an_outage(client):
    pool = client.connection_pool
    held = [pool.get_connection("GET"), pool.get_connection("GET")]
    started = time.perf_counter()
    with pytest.raises(redis.ConnectionError) as exc:
        pool.get_connection("GET")
    waited = time.perf_counter() - started
    assert 0.15 < waited < 1.0, waited
    assert outages.is_outage("redis", exc.value)
    for conn in held:
        pool.release(conn)


def test_a_waiting_caller_gets_the_connection_released_meanwhile(client):
    pool = client.connection_pool
    held = [pool.get_connection("GET"), pool.get_connection("GET")]
    threading.Timer(0.05, pool.release, args=(held[0],)).start()
    assert pool.get_connection("GET") is held[0]
    pool.release(held[0])
    pool.release(held[1])


def test_an_exhausted_pool_is_a_cache_miss_not_an_error(client):
    pool = client.connection_pool
    held = [pool.get_connection("GET"), pool.get_connection("GET")]
    cache = RedisProfileCache(client, ttl=60, breaker=redis_breaker(fail_max=2))
    assert cache.get(1) is None and cache.id_for("alice") is None
    assert cache.breaker.is_open  # two waits in a row that found no connection
    for conn in held:
        pool.release(conn)
