"""The timeline outbox relay: `python -m timeline.entrypoints.relay`.

A tweet and its event are written in one logged batch; this process moves the event on to
Kafka with the shared relay (`common.outbox`): per bucket, pending rows in event order,
published with acks=all (key = author id), and only the acknowledged prefix deleted. A
crash or a Kafka outage therefore delays events but never loses one; an event may be
published twice (a crash after the ack, before the delete), which consumers absorb.

Buckets are leased in Redis so two relays never publish the same rows side by side, the
timeline service nudges the relay on Redis pub/sub after each write, and every owned
bucket is swept every `relay_sweep_interval` for whatever a lost nudge missed
(adapters/redis_outbox.py); tombstones and late writes are handled by the Cassandra
adapter (adapters/cassandra_outbox.py).
"""

from __future__ import annotations

from typing import Any

from common.ids import owner_name
from common.outbox import Relay, RelaySettings
from common.outbox_kafka import KafkaPublisher
from common.outbox_process import run
from common.service import Service
from timeline import config as timeline_config
from timeline.adapters import redis_store
from timeline.adapters.cassandra_outbox import CassandraOutbox
from timeline.adapters.cassandra_store import CassandraSession
from timeline.adapters.redis_outbox import RedisBucketLeases, RedisWakeups

PROCESS = "timeline-relay"


def wire(config: timeline_config.Config | None = None) -> Service[Any, Relay]:
    """The relay on the timeline Cassandra outbox; its ports are the `Relay`."""
    cfg = config or timeline_config.load()
    owner = owner_name(cfg.process_name)
    client = redis_store.connect(cfg.stores, max_connections=4)
    db = CassandraSession(cfg.stores, cfg.cassandra_timeout)
    publisher = KafkaPublisher.to(cfg.stores.kafka_bootstrap, owner,
                                  request_timeout_ms=cfg.kafka_timeout_ms,
                                  delivery_timeout_ms=cfg.kafka_timeout_ms * 2,
                                  max_block_ms=cfg.kafka_timeout_ms)
    settings = RelaySettings(batch=cfg.relay_batch, idle_poll=cfg.relay_idle_poll,
                             sweep_interval=cfg.relay_sweep_interval,
                             lease_renewal=cfg.relay_lease_ttl / 3,
                             retry_backoff=cfg.relay_idle_poll)
    relay = Relay("timeline", CassandraOutbox(db), publisher,
                  leases=RedisBucketLeases(client, owner, cfg.outbox_buckets,
                                           cfg.relay_lease_ttl),
                  wakeups=RedisWakeups(client, cfg.wakeup_channel), settings=settings)
    return Service(PROCESS, cfg, relay, closers=[client.close, db.shutdown])


def main() -> None:
    """Relay until SIGTERM or SIGINT."""
    run(PROCESS, wire)


if __name__ == "__main__":
    main()
