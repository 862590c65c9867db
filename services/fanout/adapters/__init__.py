"""Drivers behind fan-out's ports: users and timeline over HTTP, Redis, Kafka."""
