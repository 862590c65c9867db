"""The timeline service: tweets in Cassandra, home timelines in Redis, events via an outbox."""
