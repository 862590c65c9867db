"""The users outbox relay: `python -m users.entrypoints.relay`.

Publishes the users outbox (follows.v1 and users.v1 events) to Kafka with the shared relay
(`common.outbox`): rows are marked published only once the broker acknowledged them, so
Kafka being down only delays an event, and a relay dying between the publish and the mark
publishes it again (consumers dedupe). Postgres keeps relays apart (`FOR UPDATE SKIP
LOCKED`), wakes the relay with NOTIFY, and published rows are pruned after
`outbox_retention` seconds (adapters/postgres_outbox.py).
"""

from __future__ import annotations

from typing import Any

from common.outbox import Relay, RelaySettings
from common.outbox_kafka import KafkaPublisher
from common.outbox_process import run
from common.service import Service
from users import config as users_config
from users.adapters.postgres import create_pool
from users.adapters.postgres_outbox import PostgresOutbox, PostgresWakeups

PROCESS = "users-relay"


def wire(config: users_config.UsersConfig | None = None) -> Service[Any, Relay]:
    """The relay on the users Postgres outbox; its ports are the `Relay`."""
    cfg = config or users_config.load()
    # Two connections: the claim's transaction, and the backlog count or the prune.
    pool = create_pool(cfg.stores.pg_conninfo, min_size=1, max_size=2,
                       timeout=cfg.pg_pool_timeout,
                       statement_timeout_ms=cfg.pg_statement_timeout_ms, name=cfg.process,
                       reconnect_timeout=cfg.pg_reconnect_timeout)
    publisher = KafkaPublisher.to(cfg.stores.kafka_bootstrap, cfg.process,
                                  request_timeout_ms=cfg.kafka_request_timeout_ms,
                                  delivery_timeout_ms=cfg.kafka_delivery_timeout_ms,
                                  max_block_ms=cfg.kafka_max_block_ms)
    settings = RelaySettings(batch=cfg.relay_batch_size, idle_poll=cfg.relay_poll_interval,
                             # No NOTIFY within a poll interval: look anyway.
                             sweep_interval=cfg.relay_poll_interval,
                             retry_backoff=cfg.relay_retry_backoff,
                             prune_interval=cfg.outbox_prune_interval,
                             prune_batch=cfg.outbox_prune_batch)
    relay = Relay("users", PostgresOutbox(pool, retention=cfg.outbox_retention), publisher,
                  wakeups=PostgresWakeups(cfg.stores.pg_conninfo), settings=settings)
    return Service(PROCESS, cfg, relay, closers=[pool.close])


def main() -> None:
    """Relay until SIGTERM or SIGINT."""
    run(PROCESS, wire)


if __name__ == "__main__":
    main()
