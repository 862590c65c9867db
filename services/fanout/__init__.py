"""The fanout worker: writes posted tweets into followers' home timelines (Kafka → Redis)."""
