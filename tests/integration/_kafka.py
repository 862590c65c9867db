"""Reading what a test published to one of the test profile's Kafka topics."""

from __future__ import annotations

import time
import uuid
from typing import Callable

from kafka import KafkaConsumer, TopicPartition


def consumer_at_end(bootstrap_servers: str, topic: str) -> KafkaConsumer:
    """A consumer of all of `topic`'s partitions, positioned at their current end, so it
    sees only what is published from now on (close it when done)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers,
                             group_id=f"test-{uuid.uuid4().hex}", enable_auto_commit=False,
                             request_timeout_ms=11000)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(partitions)
    consumer.seek_to_end(*partitions)
    for partition in partitions:
        consumer.position(partition)  # resolve the end offsets before anything is published
    return consumer


def first_record(consumer: KafkaConsumer, predicate: Callable, timeout: float = 30.0):
    """The first record `predicate` accepts within `timeout` seconds, else None."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for records in consumer.poll(timeout_ms=200).values():
            for record in records:
                if predicate(record):
                    return record
    return None
