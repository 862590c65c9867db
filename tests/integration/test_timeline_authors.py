"""The author projection process against the test profile's real Kafka and Cassandra:
a UserRegistered produced on users.v1 becomes the author timeline shows."""

from __future__ import annotations

import random
import threading
import uuid

import pytest
from kafka import KafkaProducer
from kafka.structs import OffsetAndMetadata, TopicPartition

from common import events, topics
from conftest import wait_until
from timeline.adapters import kafka_users
from timeline.bootstrap import bootstrap_projection
from timeline.domain.model import Author
from timeline.entrypoints.authors import Projector


@pytest.fixture(scope="module")
def projection(timeline_cfg):
    service = bootstrap_projection(timeline_cfg)
    yield service
    service.close()


def start_at_the_end(consumer, topic: str) -> None:
    """Commit the group's offsets at the end of every partition, before it subscribes.

    A new group reads from the oldest event, and the test profile's users.v1 holds every
    user the tests ever made: replaying all of them would take longer than a test waits,
    and the running stack's own projection would pass the checks in the meantime.
    """
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.commit({tp: OffsetAndMetadata(offset, "", -1)
                     for tp, offset in consumer.end_offsets(partitions).items()})


@pytest.fixture
def running(timeline_cfg, projection):
    """The consumer loop on a thread, in a group of its own, from the topic's end."""
    consumer = kafka_users.consumer(timeline_cfg.stores,
                                    f"{timeline_cfg.authors_group_id}-it-{uuid.uuid4().hex[:8]}",
                                    "timeline-authors-it")
    topic = kafka_users.users_topic(timeline_cfg.stores)
    start_at_the_end(consumer, topic)
    projector = Projector(consumer, projection.ports, topic, poll_timeout_ms=200)
    projector.subscribe()
    thread = threading.Thread(target=projector.run, daemon=True)
    thread.start()
    yield projector
    projector.stop()
    thread.join(timeout=10)
    consumer.close(autocommit=False)
    assert not thread.is_alive()


@pytest.fixture(scope="module")
def producer(timeline_cfg):
    producer = KafkaProducer(bootstrap_servers=timeline_cfg.stores.kafka_bootstrap, acks="all")
    yield producer
    producer.close(timeout=5)


def publish(producer, topic: str, kind: str, user_id: int, username: str, display_name: str,
            version: int) -> None:
    event = events.Event(event_id=str(random.randrange(1 << 40)), type=kind, payload={
        "user_id": str(user_id), "username": username, "display_name": display_name,
        "version": version})
    producer.send(topic, key=str(user_id).encode(), value=event.to_json()).get(timeout=10)


def test_a_registered_user_appears_in_the_projection_and_a_later_profile_wins(
        timeline_cfg, projection, running, producer):
    topic = timeline_cfg.stores.topic(topics.USERS)
    user_id = random.randrange(1 << 40, 1 << 62)
    name = f"proj_{uuid.uuid4().hex[:8]}"
    authors = projection.ports.authors
    publish(producer, topic, events.USER_REGISTERED, user_id, name, name, 1)
    wait_until(lambda: authors.get_many([user_id]), timeout=60,
               message="the registered user in the projection")
    assert authors.get_many([user_id])[user_id] == Author(user_id, name, name, 1)
    assert authors.id_by_username(name) == user_id
    # A profile change, then a stale redelivery of the registration, then poison: the
    # newest version stays and the loop goes on.
    publish(producer, topic, events.PROFILE_CHANGED, user_id, name, "Proj Ection", 2)
    publish(producer, topic, events.USER_REGISTERED, user_id, name, name, 1)
    producer.send(topic, key=str(user_id).encode(), value=b"not json").get(timeout=10)
    publish(producer, topic, events.PROFILE_CHANGED, user_id, name, "Proj Ection 3", 3)
    wait_until(lambda: authors.get_many([user_id])[user_id].version == 3, timeout=60,
               message="version 3 in the projection")
    assert authors.get_many([user_id])[user_id].display_name == "Proj Ection 3"
    assert running.alive() is None

