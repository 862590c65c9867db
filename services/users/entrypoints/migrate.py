"""`python -m users.entrypoints.migrate`: the users database (created if missing) and its
migrations.

Idempotent: an up-to-date database is left as it is. yoyo holds a lock while it applies,
so two runs at once (two Jobs, or a Job and `make bootstrap`) do not race.

Migrations run with the profile's users topic in the session setting
`murmur.users_topic`, so a migration that enqueues events (0004, 0007) names the same
topic the service writes to, prefix included, and with its celebrity threshold in
`murmur.celebrity_threshold` (0007 settles each user's celebrity status against it).
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import quote

from common import config, provision, topics

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
TOPIC_SETTING = "murmur.users_topic"
THRESHOLD_SETTING = "murmur.celebrity_threshold"


def ensure_database(stores: config.Stores) -> bool:
    """Create the profile's database if it is missing; True when it was created."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(host=stores.pg_host, port=stores.pg_port, dbname="postgres",
                         user=stores.pg_user, password=stores.pg_password,
                         connect_timeout=max(1, int(stores.connect_timeout)),
                         autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                              (stores.pg_database,)).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(stores.pg_database)))
        return True


def backend_uri(stores: config.Stores) -> str:
    """The yoyo URI of the profile's database, its sessions set up for the migrations."""
    # The password is generated: quote it, it may hold characters a URI reserves. yoyo
    # hands the query string to psycopg.connect, so `options` reaches every connection
    # (yoyo applies each migration on a connection of its own).
    options = quote(f"-c {TOPIC_SETTING}={stores.topic(topics.USERS)} "
                    f"-c {THRESHOLD_SETTING}={stores.profile.celebrity_threshold}", safe="")
    return (f"postgresql+psycopg://{quote(stores.pg_user, safe='')}:"
            f"{quote(stores.pg_password, safe='')}@{stores.pg_host}:{stores.pg_port}/"
            f"{stores.pg_database}?options={options}")


def apply_migrations(stores: config.Stores) -> int:
    """Apply the pending migrations; returns how many ran."""
    from yoyo import get_backend, read_migrations

    backend = get_backend(backend_uri(stores))
    migrations = read_migrations(str(MIGRATIONS))
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    return len(pending)


def migrate(stores: config.Stores, timeout: float = 0.0) -> int:
    """Create the database if missing and apply pending migrations; returns how many ran.

    Waits up to `timeout` seconds for Postgres to accept connections.
    """
    import psycopg

    created = provision.retrying("users.entrypoints.migrate", lambda: ensure_database(stores),
                                 (psycopg.OperationalError,), timeout)
    if created:
        provision.say("users.entrypoints.migrate", f"created database {stores.pg_database}")
    return apply_migrations(stores)


def run(stores: config.Stores, timeout: float) -> str:
    """The entrypoint's step: migrate and describe the result."""
    applied = migrate(stores, timeout)
    return (f"database {stores.pg_database} on {stores.pg_host}:{stores.pg_port}: "
            f"{applied} migration(s) applied")


if __name__ == "__main__":
    sys.exit(provision.main("users.entrypoints.migrate", run))
