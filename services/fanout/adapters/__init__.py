"""Drivers behind the fanout domain's ports: users and timeline HTTP, Redis, Kafka."""
