"""Create what the services need in one profile's namespace; every step is idempotent.

- Postgres: the profile's database, then the users service's versioned migrations (yoyo).
- Cassandra: the profile's keyspace (replication from config), then the timeline schema.
- Kafka: the profile's topics, with the configured partition count.
"""

from __future__ import annotations

import string
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "services"))

from common import config, topics  # noqa: E402

MIGRATIONS = REPO / "services/users/migrations"
CQL_SCHEMA = REPO / "services/timeline/schema"


def postgres(stores: config.Stores) -> int:
    """Create the database if missing and apply pending migrations; returns how many ran."""
    import psycopg
    from psycopg import sql
    from yoyo import get_backend, read_migrations

    with psycopg.connect(host=stores.host, port=stores.pg_port, dbname="postgres",
                         user=stores.pg_user, password=stores.pg_password, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                              (stores.pg_database,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(stores.pg_database)))
    backend = get_backend(
        f"postgresql+psycopg://{stores.pg_user}:{stores.pg_password}@{stores.host}:"
        f"{stores.pg_port}/{stores.pg_database}"
    )
    migrations = read_migrations(str(MIGRATIONS))
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    return len(pending)


def cql_statements(keyspace: str) -> list[str]:
    """The timeline schema's CQL statements, in file order, for `keyspace`."""
    statements = []
    for path in sorted(CQL_SCHEMA.glob("*.cql")):
        text = string.Template(path.read_text()).substitute(keyspace=keyspace)
        body = "\n".join(line for line in text.splitlines() if not line.strip().startswith("--"))
        statements += [s.strip() for s in body.split(";") if s.strip()]
    return statements


def cassandra(stores: config.Stores) -> int:
    """Create the keyspace and tables if missing; returns how many tables were created."""
    from cassandra.cluster import Cluster

    cluster = Cluster([stores.host], port=stores.cassandra_port, connect_timeout=10)
    try:
        session = cluster.connect()
        session.default_timeout = 30
        session.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {stores.keyspace} WITH replication = "
            f"{{'class': 'SimpleStrategy', 'replication_factor': {stores.cassandra_replication}}}"
        )
        before = set(cluster.metadata.keyspaces[stores.keyspace].tables)
        for statement in cql_statements(stores.keyspace):
            session.execute(statement)
        cluster.refresh_schema_metadata()
        return len(set(cluster.metadata.keyspaces[stores.keyspace].tables) - before)
    finally:
        cluster.shutdown()


def kafka(stores: config.Stores) -> int:
    """Create the profile's topics if missing; returns how many were created."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=stores.kafka_bootstrap, client_id="murmur-bootstrap")
    try:
        existing = set(admin.list_topics())
        wanted = [stores.topic(name) for name in topics.ALL]
        missing = [NewTopic(name, stores.kafka_partitions, 1) for name in wanted if name not in existing]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # a concurrent bootstrap created it first
        return len(missing)
    finally:
        admin.close()


def run(profile: str) -> None:
    """Bootstrap every store for `profile` and report what changed."""
    import os

    os.environ["MURMUR_PROFILE"] = profile
    stores = config.stores()
    t0 = time.monotonic()
    changes = {
        f"postgres {stores.pg_database}": postgres(stores),
        f"cassandra {stores.keyspace}": cassandra(stores),
        f"kafka {stores.topic_prefix or '(no prefix)'}": kafka(stores),
    }
    summary = ", ".join(f"{k}: {v} new" for k, v in changes.items())
    print(f"  schema ({time.monotonic() - t0:.1f}s): {summary}", flush=True)


if __name__ == "__main__":
    run(sys.argv[1] if len(sys.argv) > 1 else config.env("MURMUR_PROFILE", "dev"))
