"""Kafka clients of the fanout worker: the group consumer, the dead-letter producer and
the admin client that reads the group's offsets (for the consumer-lag gauge); and the
redrive's consumer of the dead-letter topic."""

from __future__ import annotations

import logging
import socket
import time
from typing import Any, Callable, Iterable

from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError
from kafka.structs import TopicPartition

from fanout.config import FanoutConfig
from fanout.domain.errors import Unavailable
from fanout.service_layer.ports import Message

log = logging.getLogger("murmur.fanout.kafka")


def consumer(config: FanoutConfig) -> KafkaConsumer:
    """A consumer in the fanout group that commits only when told to (at-least-once)."""
    return KafkaConsumer(
        bootstrap_servers=config.stores.kafka_bootstrap,
        group_id=config.group_id,
        client_id=f"{config.process_name}-{socket.gethostname()}",
        enable_auto_commit=False,
        auto_offset_reset=config.offset_reset,
        max_poll_records=config.max_poll_records,
        request_timeout_ms=config.kafka_request_timeout_ms + 30_000,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=3_000,
        max_poll_interval_ms=300_000,
    )


def dead_letter_consumer(config: FanoutConfig) -> KafkaConsumer:
    """A consumer of the dead-letter topic in the redrive's own group, committing only when
    told (after each dead letter is handled); a new group starts at the oldest."""
    return KafkaConsumer(
        bootstrap_servers=config.stores.kafka_bootstrap,
        group_id=config.redrive_group_id,
        client_id=f"{config.process_name}-redrive-{socket.gethostname()}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=config.kafka_request_timeout_ms + 30_000,
    )


def header(message: Message, name: str) -> str | None:
    """A record header as text (None if absent)."""
    for key, value in message.headers or ():
        if key == name and value is not None:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return None


def offsets(config: FanoutConfig) -> "KafkaOffsets":
    """The group's offsets, read by an admin client of its own (connects on first use)."""

    def admin() -> KafkaAdminClient:
        return KafkaAdminClient(bootstrap_servers=config.stores.kafka_bootstrap,
                                client_id=f"{config.process_name}-lag",
                                request_timeout_ms=config.kafka_request_timeout_ms)

    return KafkaOffsets(admin, config.group_id, config.topics)


class KafkaOffsets:
    """Reads end, start and committed offsets with one admin client (made on first use).

    It never touches the worker's consumer, which is not thread-safe, and it covers every
    member of the group.
    """

    def __init__(self, make_admin: Callable[[], Any], group_id: str,
                 topics: Iterable[str]) -> None:
        self.make_admin, self.group_id, self.topics = make_admin, group_id, list(topics)
        self._admin: Any = None

    def read(self) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int],
                            dict[TopicPartition, int]]:
        """(end, committed, start) offsets of every partition of the topics."""
        from kafka.admin import OffsetSpec

        if self._admin is None:
            self._admin = self.make_admin()
        admin = self._admin
        partitions = [TopicPartition(t["name"], p["partition_index"])
                      for t in admin.describe_topics(self.topics) for p in t["partitions"]]
        end = {tp: o.offset for tp, o in admin.list_partition_offsets(
            {tp: OffsetSpec.LATEST for tp in partitions}).items()}
        group = admin.list_group_offsets({self.group_id: None}).get(self.group_id, {})
        committed = {tp: meta.offset for tp, meta in group.items() if meta.offset >= 0}
        missing = [tp for tp in partitions if tp not in committed]
        start = {tp: o.offset for tp, o in admin.list_partition_offsets(
            {tp: OffsetSpec.EARLIEST for tp in missing}).items()} if missing else {}
        return end, committed, start

    def close(self) -> None:
        """Close the admin client."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None


class RevocationListener(ConsumerRebalanceListener):
    """Lets the worker commit what it processed before a partition moves elsewhere."""

    def __init__(self, on_revoked: Callable[[Iterable[TopicPartition]], None],
                 on_assigned: Callable[[Iterable[TopicPartition]], None]) -> None:
        self._on_revoked, self._on_assigned = on_revoked, on_assigned

    def on_partitions_revoked(self, revoked):
        self._on_revoked(revoked)

    def on_partitions_assigned(self, assigned):
        self._on_assigned(assigned)


class KafkaDeadLetters:
    """Sends poison messages, byte for byte, to the dead-letter topic with error headers."""

    def __init__(self, producer: KafkaProducer, topic: str, group_id: str,
                 timeout: float = 10.0) -> None:
        self.producer, self.topic, self.group_id, self.timeout = producer, topic, group_id, timeout

    @classmethod
    def create(cls, config: FanoutConfig) -> "KafkaDeadLetters":
        """A producer with acks from all replicas: a dead letter must not be lost."""
        producer = KafkaProducer(
            bootstrap_servers=config.stores.kafka_bootstrap,
            client_id=f"{config.process_name}-dlq",
            acks="all",
            linger_ms=0,
            max_block_ms=config.kafka_request_timeout_ms,
            request_timeout_ms=config.kafka_request_timeout_ms,
        )
        return cls(producer, config.dlq_topic, config.group_id,
                   timeout=config.kafka_request_timeout_ms / 1000)

    def send(self, message: Message, error: BaseException, attempts: int) -> None:
        """Produce and wait for the acknowledgement; Unavailable if Kafka does not take it."""
        headers = [(k, v) for k, v in (message.headers or ()) if not k.startswith("dlq.")]
        headers += [
            ("dlq.error.class", type(error).__name__.encode()),
            ("dlq.error.message", str(error)[:1000].encode("utf-8", "replace")),
            ("dlq.original.topic", message.topic.encode()),
            ("dlq.original.partition", str(message.partition).encode()),
            ("dlq.original.offset", str(message.offset).encode()),
            ("dlq.consumer.group", self.group_id.encode()),
            ("dlq.attempts", str(attempts).encode()),
            ("dlq.failed.at", str(int(time.time() * 1000)).encode()),
        ]
        try:
            self.producer.send(self.topic, value=message.value, key=message.key,
                               headers=headers).get(timeout=self.timeout)
        except KafkaError as exc:
            raise Unavailable(f"dead-letter topic: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        """Flush and close the producer."""
        self.producer.close(timeout=self.timeout)
