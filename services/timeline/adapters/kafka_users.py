"""users.v1 as the author projection reads it: a Kafka consumer in its own group."""

from __future__ import annotations

import socket

from kafka import KafkaConsumer

from common import topics
from common.config import Stores


def users_topic(stores: Stores) -> str:
    """The profile's users.v1 topic (with its prefix, e.g. 'test.users.v1')."""
    return stores.topic(topics.USERS)


def consumer(stores: Stores, group_id: str, client_name: str,
             request_timeout_ms: int = 5000) -> KafkaConsumer:
    """A consumer that starts a new group at the oldest event and commits only when told.

    The topic is compacted: from offset 0 a new group reads the latest event of every user,
    so an empty projection fills up on its own. Subscribing is left to the caller.
    """
    return KafkaConsumer(
        bootstrap_servers=stores.kafka_bootstrap,
        group_id=group_id,
        client_id=f"{client_name}-{socket.gethostname()}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=500,
        request_timeout_ms=request_timeout_ms + 30_000,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=3_000,
        max_poll_interval_ms=300_000,
    )
