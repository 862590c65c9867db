"""Postgres's failures reach the users breaker: the pool gives up before the caller does."""

from __future__ import annotations

import dataclasses

from gateway.config import downstream_config
from users.config import UsersConfig


def default(cls, name: str):
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    return field.metadata["murmur.setting"].default


def test_the_users_pool_wait_ends_well_before_the_gateways_timeout_on_users(monkeypatch):
    """A wait cut short by the caller's deadline counts for nothing (it is the caller's
    budget, not Postgres), so a pool wait as long as the gateway's timeout would let a
    stopped Postgres fail every write without ever opening the breaker."""
    monkeypatch.delenv("GATEWAY_USERS_READ_TIMEOUT", raising=False)
    gateway_timeout = downstream_config("users").read_timeout
    pool_wait = default(UsersConfig, "pg_pool_timeout")
    assert pool_wait <= gateway_timeout / 2, (pool_wait, gateway_timeout)
