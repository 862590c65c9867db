"""The users migrations against a scratch database on the test profile's Postgres.

Migration 0004 announces the users that existed before the users events: one
UserRegistered per user, on the profile's users topic, shaped like the events the service
writes itself, and only once however often the migrations run.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import datetime

import psycopg
import pytest
from psycopg import sql as pgsql

from common import config, events, topics
from users.adapters.postgres import outbox_record
from users.domain.events import UserRegistered
from users.entrypoints import migrate

USERS = [(7_100_000_000_000_000_001, "mig_ada", "Ada L.", 1),
         (7_100_000_000_000_000_002, "mig_bob", "", 1),  # loaded without a display name
         (7_100_000_000_000_000_003, "mig_cy", "Cy", 4)]  # edited three times


@pytest.fixture
def scratch():
    """Stores pointing at a fresh database, dropped afterwards."""
    base = config.stores()
    assert base.pg_database == "murmur_test", "run with MURMUR_PROFILE=test"
    stores = dataclasses.replace(base, pg_database=f"murmur_test_mig_{uuid.uuid4().hex[:10]}")
    assert migrate.ensure_database(stores)
    yield stores
    with psycopg.connect(host=base.pg_host, port=base.pg_port, dbname="postgres",
                         user=base.pg_user, password=base.pg_password, autocommit=True) as conn:
        conn.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            pgsql.Identifier(stores.pg_database)))


def apply_before_announcements(stores) -> None:
    from yoyo import get_backend, read_migrations

    backend = get_backend(migrate.backend_uri(stores))
    earlier = read_migrations(str(migrate.MIGRATIONS)).filter(lambda m: m.id < "0004")
    with backend.lock():
        backend.apply_migrations(backend.to_apply(earlier))
    backend.connection.close()


def migration_ids(since: str = "") -> list[str]:
    """The ids of the shipped migrations from `since` on."""
    return sorted(p.name.removesuffix(".sql") for p in migrate.MIGRATIONS.glob("*.sql")
                  if p.name >= since and not p.name.endswith(".rollback.sql"))


def outbox(stores) -> list[tuple]:
    with psycopg.connect(stores.pg_conninfo) as conn:
        return conn.execute("SELECT topic, key, payload, headers FROM outbox ORDER BY id"
                            ).fetchall()


def test_existing_users_are_announced_once_like_the_service_announces_new_ones(scratch):
    apply_before_announcements(scratch)
    with psycopg.connect(scratch.pg_conninfo) as conn:
        for user_id, username, display_name, version in USERS:
            conn.execute("INSERT INTO users (id, username, password_hash, display_name, version)"
                         " VALUES (%s, %s, 'x', %s, %s)", (user_id, username, display_name,
                                                           version))
    assert migrate.migrate(scratch) == len(migration_ids("0004"))

    rows = outbox(scratch)
    assert [(topic, key) for topic, key, _, _ in rows] == [
        (scratch.topic(topics.USERS), str(user_id)) for user_id, *_ in USERS]
    assert scratch.topic(topics.USERS) == "test.users.v1"
    for (_, _, envelope, headers), user in zip(rows, USERS):
        parsed = events.Event.from_json(json.dumps(envelope))
        kind, _, payload = outbox_record(UserRegistered(*user))
        assert (parsed.type, parsed.payload) == (kind, payload)
        # The same envelope as the adapter writes: same fields, same kinds of values.
        written = json.loads(events.Event(event_id=str(uuid.uuid4()), type=kind,
                                          payload=payload).to_json())
        assert {k: type(v) for k, v in envelope.items()} == {k: type(v) for k, v in written.items()}
        assert len(envelope["occurred_at"]) == len(written["occurred_at"])
        datetime.fromisoformat(envelope["occurred_at"])
        uuid.UUID(envelope["event_id"])
        assert headers == {}
    assert len({envelope["event_id"] for _, _, envelope, _ in rows}) == len(USERS)

    assert migrate.migrate(scratch) == 0, "the migrations ran twice"
    assert len(outbox(scratch)) == len(USERS)


def test_the_announcement_can_be_repeated_for_users_loaded_without_the_api(scratch):
    assert migrate.migrate(scratch) == len(migration_ids())  # empty: nobody to announce
    assert outbox(scratch) == []
    with psycopg.connect(scratch.pg_conninfo) as conn:
        conn.execute("INSERT INTO users (id, username, password_hash, display_name) "
                     "VALUES (1, 'seeded_one', 'x', 'One'), (2, 'seeded_two', 'x', 'Two')")
        announced = conn.execute("SELECT users_announce(%s, %s)",
                                 (scratch.topic(topics.USERS), [2])).fetchone()[0]
    assert announced == 1
    (topic, key, envelope, _), = outbox(scratch)
    assert (topic, key, envelope["payload"]["username"]) == ("test.users.v1", "2", "seeded_two")
