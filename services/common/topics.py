"""Kafka topic names, shared by producers, consumers and the set-up step that creates them.

`python -m common.topics` creates every topic of the profile (partitions and replication
factor from config: MURMUR_KAFKA_PARTITIONS, MURMUR_KAFKA_REPLICATION); idempotent.
"""

from __future__ import annotations

import sys

from common import config, provision

TWEETS = "tweets.v1"  # TweetPosted, TweetDeleted; key = author id
FOLLOWS = "follows.v1"  # UserFollowed, UserUnfollowed; key = follower id
# Poison the fanout group set aside (not an event of the schema, or about a user users does
# not know), with the error in the headers; `make redrive` handles them again.
FANOUT_DLQ = "fanout.dlq.v1"
# UserRegistered, ProfileChanged; key = user id. CelebrityStatusChanged; key = user id +
# "/celebrity". Compacted: the latest event of each key is kept forever, so a new consumer
# rebuilds its copy of every profile and status from offset 0.
USERS = "users.v1"

ALL = (TWEETS, FOLLOWS, FANOUT_DLQ, USERS)
COMPACTED = frozenset({USERS})


def topic_configs(name: str) -> dict[str, str]:
    """The topic-level settings a topic is created with (by its unprefixed name)."""
    return {"cleanup.policy": "compact"} if name in COMPACTED else {}


def create_missing(stores: config.Stores) -> int:
    """Create the profile's topics that do not exist yet; returns how many were created."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=stores.kafka_bootstrap,
                             client_id="murmur-bootstrap")
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(stores.topic(name), stores.kafka_partitions,
                            stores.kafka_replication, topic_configs=topic_configs(name))
                   for name in ALL if stores.topic(name) not in existing]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # a concurrent bootstrap created it first
        return len(missing)
    finally:
        admin.close()


def create(stores: config.Stores, timeout: float = 0.0) -> int:
    """Create the missing topics, waiting up to `timeout` s for enough brokers to answer."""
    from kafka.errors import (BrokerNotAvailableError, InvalidReplicationFactorError,
                              RetriableError)

    # A cluster that is starting refuses or times out (RetriableError: kafka-python cannot
    # bootstrap within 30 s, a node is not ready), or, with fewer brokers registered than the
    # replication factor, rejects the factor: all pass once the cluster is up.
    transient = (RetriableError, BrokerNotAvailableError, InvalidReplicationFactorError)
    return provision.retrying("common.topics", lambda: create_missing(stores), transient,
                              timeout)


def run(stores: config.Stores, timeout: float) -> str:
    """The entrypoint's step: create the topics and describe the result."""
    created = create(stores, timeout)
    return (f"{len(ALL)} topics ({stores.topic_prefix or 'no prefix'}; "
            f"{stores.kafka_partitions} partitions, replication factor "
            f"{stores.kafka_replication}) on {stores.kafka_bootstrap}: {created} created")


if __name__ == "__main__":
    sys.exit(provision.main("common.topics", run))
