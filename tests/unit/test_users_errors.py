"""The users service's one mapping from its exceptions to problem+json, through the app."""

from __future__ import annotations

import logging

import psycopg
import pytest
import redis
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout
from redis._parsers.base import BaseParser

from common.resilience import DeadlineExceeded
from common.rules import InvalidInput
from common.service import Service
from unit._users_fakes import memory_ports
from users import config as users_config
from users.domain import errors as domain_errors
from users.domain.errors import (
    IdempotencyKeyReused,
    PasswordWorkBusy,
    TooManyAttempts,
    InvalidCredentials,
    StoreUnavailable,
    UsernameTaken,
    UserNotFound,
    VersionMismatch,
)
from users.entrypoints import errors
from users.entrypoints.app import create_app

PROBLEM = "application/problem+json"


class Failing:
    """A repository whose database answers every call with `exc` (and is not known down)."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def down_for(self):
        return 0

    def __getattr__(self, name):
        def fail(*_args, **_kwargs):
            raise self.exc
        return fail


def redis_reply(message: str) -> redis.RedisError:
    """The exception redis-py raises for an error reply `message` from the server."""
    return BaseParser.__new__(BaseParser).parse_error(message)


def app_with(ports):
    return create_app(service=Service("users", users_config.load(), ports))


@pytest.fixture
def ports():
    return memory_ports()


@pytest.fixture
def client(ports):
    return app_with(ports).test_client()


@pytest.mark.parametrize("exc,status,headers", [
    (UserNotFound(), 404, {}),
    (UsernameTaken("alice"), 409, {}),
    (InvalidCredentials(), 401, {}),
    (VersionMismatch(3), 412, {}),
    (StoreUnavailable(7), 503, {"Retry-After": "7"}),
    (TooManyAttempts(42), 429, {"Retry-After": "42"}),
    (PasswordWorkBusy(), 503, {"Retry-After": "1"}),
    (IdempotencyKeyReused(), 422, {}),
    (InvalidInput([{"field": "bio", "message": "too long"}]), 422, {}),
    (DeadlineExceeded("late"), 503, {"Retry-After": "1"}),
    (psycopg.OperationalError("connection refused"), 503, {"Retry-After": "1"}),
    (redis.ConnectionError("No connection available."), 503, {"Retry-After": "1"}),
    (redis.TimeoutError("slow"), 503, {"Retry-After": "1"}),
    # Every outage of a store that escapes the adapters is a 503 ...
    (PoolTimeout("couldn't get a connection after 2.00 sec"), 503, {"Retry-After": "1"}),
    (pg_errors.QueryCanceled("canceling statement due to statement timeout"), 503, {}),
    (psycopg.InterfaceError("the connection is lost"), 503, {"Retry-After": "1"}),
    (redis_reply("READONLY You can't write against a read only replica."), 503, {}),
    (redis_reply("OOM command not allowed when used memory > 'maxmemory'."), 503, {}),
    # ... and the store answering is not: no 503 inviting a retry of a bug.
    (pg_errors.DeadlockDetected("deadlock detected"), 500, {}),
    (pg_errors.SerializationFailure("could not serialize access"), 500, {}),
    (pg_errors.UndefinedTable('relation "users" does not exist'), 500, {}),
    (redis_reply("WRONGTYPE Operation against a key holding the wrong kind of value"), 500, {}),
])
def test_each_exception_is_answered_with_its_problem(ports, exc, status, headers):
    ports.users = Failing(exc)
    resp = app_with(ports).test_client().get("/users/by-id/42")
    assert resp.status_code == status
    assert resp.mimetype == PROBLEM
    assert resp.json["status"] == status
    for name, value in headers.items():
        assert resp.headers[name] == value


def test_a_deadlock_is_logged_as_the_error_it_is_not_as_a_store_outage(ports, caplog):
    ports.users = Failing(pg_errors.DeadlockDetected("deadlock detected"))
    with caplog.at_level(logging.WARNING, logger="murmur.users"):
        resp = app_with(ports).test_client().get("/users/by-id/42")
    assert resp.status_code == 500 and "Retry-After" not in resp.headers
    [record] = [r for r in caplog.records if r.name == "murmur.users"]
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert "postgres answered with an error: DeadlockDetected" in record.getMessage()


def test_every_domain_error_has_a_mapping():
    kinds = {obj for obj in vars(domain_errors).values()
             if isinstance(obj, type) and issubclass(obj, domain_errors.UsersError)
             and obj is not domain_errors.UsersError}
    assert kinds and kinds <= errors.MAPPING.keys()


def test_the_problems_carry_what_the_exception_knows():
    taken = errors.MAPPING[UsernameTaken](UsernameTaken("alice"))
    assert taken.errors == [{"field": "username", "message": "is taken"}]
    assert "'alice'" in taken.detail
    assert "version 3" in errors.MAPPING[VersionMismatch](VersionMismatch(3)).detail
    assert errors.MAPPING[StoreUnavailable](StoreUnavailable(9)).headers == {"Retry-After": "9"}


def test_a_missing_or_foreign_identity_is_a_401_or_403(client):
    alice = client.post("/users", json={"username": "alice", "password": "correct horse"}).json
    bob = client.post("/users", json={"username": "bob", "password": "correct horse"}).json
    unauthenticated = client.patch(f"/users/{alice['id']}", json={"bio": "x"},
                                   headers={"If-Match": "*"})
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["WWW-Authenticate"] == "Bearer"
    foreign = client.patch(f"/users/{alice['id']}", json={"bio": "x"},
                           headers={"If-Match": "*", "X-User-Id": bob["id"]})
    assert foreign.status_code == 403 and foreign.mimetype == PROBLEM


@pytest.mark.parametrize("if_match,status", [
    (None, 428), ("", 428), (" , ", 428), ("{opaque}", 428), ("'{opaque}'", 428),
    ("W/{etag}", 412), ('"x"', 412), ('"01-{digest}"', 412), ('"2-{digest}"', 412),
    ('"99999999999-{digest}"', 412),
    ("{etag}", 200), ('"x", W/"y", {etag}', 200), ("*", 200),
    # The version is what an edit is conditional on: counts moved since, it still holds.
    ('"1-000000000000"', 200),
])
def test_if_match_is_required_and_must_name_the_current_version(client, if_match, status):
    alice = client.post("/users", json={"username": "alice", "password": "correct horse"}).json
    etag = client.get("/users/alice").headers["ETag"]
    opaque = etag.strip('"')
    value = None if if_match is None else if_match.format(
        etag=etag, opaque=opaque, digest=opaque.partition("-")[2])
    headers = {"X-User-Id": alice["id"], **({"If-Match": value} if value is not None else {})}
    resp = client.patch(f"/users/{alice['id']}", json={"bio": "x"}, headers=headers)
    assert resp.status_code == status, resp.get_json()


def test_a_cursor_of_the_other_list_is_a_422(client):
    client.post("/users", json={"username": "star", "password": "correct horse"})
    for i in range(3):
        fan = client.post("/users", json={"username": f"fan_{i}", "password": "correct horse"}).json
        client.put(f"/users/{fan['id']}/following/star", headers={"X-User-Id": fan["id"]})
    cursor = client.get("/users/star/followers?limit=1").json["next_cursor"]
    assert client.get(f"/users/star/followers?cursor={cursor}").status_code == 200
    resp = client.get(f"/users/star/following?cursor={cursor}")
    assert resp.status_code == 422 and resp.json["errors"][0]["field"] == "cursor"


def test_ids_must_be_canonical_decimals(client):
    assert client.get("/users/by-id/007").status_code == 404
    assert client.get("/internal/users/007/follower-ids").status_code == 404
    assert client.get("/internal/users/7/follower-ids?after=007").status_code == 422


def test_the_request_id_travels_with_the_events_of_the_request(client, ports):
    client.post("/users", json={"username": "alice", "password": "correct horse"},
                headers={"X-Request-ID": "req-42"})
    (_event, trace), = ports.users.outbox
    assert trace["request_id"] == "req-42"
