"""Create what the services need in one profile's namespace; every step is idempotent.

- Postgres: the profile's database, then the users service's versioned migrations (yoyo).
- Cassandra: the profile's keyspace (replication from config), then the timeline schema.
- Kafka: the profile's topics, with the configured partition count.

The steps themselves live with the services that own the data (`users.entrypoints.migrate`,
`timeline.entrypoints.migrate`, `common.topics`), which the container images run as set-up
Jobs; here they run once each, without waiting, since the local platform starts the stores
first.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "services"))

from common import config, topics  # noqa: E402
from timeline.entrypoints import migrate as timeline_migrate  # noqa: E402
from users.entrypoints import migrate as users_migrate  # noqa: E402


def run(profile: str) -> None:
    """Bootstrap every store for `profile` and report what changed."""
    import os

    os.environ["MURMUR_PROFILE"] = profile
    stores = config.stores()
    t0 = time.monotonic()
    changes = {
        f"postgres {stores.pg_database}": users_migrate.migrate(stores),
        f"cassandra {stores.keyspace}": timeline_migrate.migrate(stores),
        f"kafka {stores.topic_prefix or '(no prefix)'}": topics.create(stores),
    }
    summary = ", ".join(f"{k}: {v} new" for k, v in changes.items())
    print(f"  schema ({time.monotonic() - t0:.1f}s): {summary}", flush=True)


if __name__ == "__main__":
    run(sys.argv[1] if len(sys.argv) > 1 else config.env("MURMUR_PROFILE", "dev"))
