"""`python -m timeline.entrypoints.migrate`: the timeline keyspace and tables.

The keyspace's replication comes from config; the tables from `timeline/schema/*.cql`.

Idempotent: every statement is `CREATE ... IF NOT EXISTS`; the driver waits for schema
agreement after each one, so a multi-node cluster sees the tables before this exits.
"""

from __future__ import annotations

import string
import sys
from pathlib import Path

from common import config, provision

CQL_SCHEMA = Path(__file__).resolve().parents[1] / "schema"  # shipped in the package


def cql_statements(keyspace: str) -> list[str]:
    """The timeline schema's CQL statements, in file order, for `keyspace`."""
    statements = []
    for path in sorted(CQL_SCHEMA.glob("*.cql")):
        text = string.Template(path.read_text()).substitute(keyspace=keyspace)
        body = "\n".join(line for line in text.splitlines() if not line.strip().startswith("--"))
        statements += [s.strip() for s in body.split(";") if s.strip()]
    return statements


def migrate(stores: config.Stores, timeout: float = 0.0) -> int:
    """Create the keyspace and tables if missing; returns how many tables were created.

    Waits up to `timeout` seconds for a contact point to accept connections.
    """
    from cassandra.cluster import Cluster, NoHostAvailable
    from cassandra import OperationTimedOut

    def connect() -> tuple[Cluster, object]:
        # A Cluster whose connect() failed is shut down: each attempt needs a new one.
        cluster = Cluster(list(stores.cassandra_hosts), port=stores.cassandra_port,
                          connect_timeout=10)
        try:
            return cluster, cluster.connect()
        except BaseException:
            cluster.shutdown()
            raise

    cluster, session = provision.retrying("timeline.entrypoints.migrate", connect,
                                          (NoHostAvailable, OperationTimedOut), timeout)
    try:
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


def run(stores: config.Stores, timeout: float) -> str:
    """The entrypoint's step: migrate and describe the result."""
    created = migrate(stores, timeout)
    return (f"keyspace {stores.keyspace} (replication factor {stores.cassandra_replication}) "
            f"on {','.join(stores.cassandra_hosts)}: {created} table(s) created")


if __name__ == "__main__":
    sys.exit(provision.main("timeline.entrypoints.migrate", run))
