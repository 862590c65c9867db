"""Store addresses and bind settings from the environment: local defaults, container overrides."""

from __future__ import annotations

import pytest

from common import config

STORE_VARS = ("MURMUR_STORE_HOST", "MURMUR_PG_HOST", "MURMUR_REDIS_HOST", "MURMUR_KAFKA_BOOTSTRAP",
              "MURMUR_KAFKA_PORT", "MURMUR_KAFKA_REPLICATION", "MURMUR_CASSANDRA_HOSTS",
              "MURMUR_BIND_HOST", "MURMUR_PG_PORT", "MURMUR_REDIS_PORT", "MURMUR_PROFILE")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in STORE_VARS:
        monkeypatch.delenv(name, raising=False)


def test_every_store_is_on_the_local_host_by_default():
    stores = config.stores()
    assert stores.pg_host == stores.redis_host == "127.0.0.1"
    assert stores.cassandra_hosts == ("127.0.0.1",)
    assert stores.kafka_bootstrap == "127.0.0.1:19092"
    assert stores.kafka_replication == 1
    assert "host=127.0.0.1 port=15432 " in stores.pg_conninfo
    assert stores.redis_url == "redis://127.0.0.1:16379/0"


def test_the_store_host_moves_every_store_that_has_no_host_of_its_own(monkeypatch):
    monkeypatch.setenv("MURMUR_STORE_HOST", "stores.example")
    monkeypatch.setenv("MURMUR_REDIS_HOST", "redis.example")
    stores = config.stores()
    assert stores.pg_host == "stores.example"
    assert stores.redis_host == "redis.example"
    assert stores.cassandra_hosts == ("stores.example",)
    assert stores.kafka_bootstrap == "stores.example:19092"
    assert stores.redis_url == "redis://redis.example:16379/0"


def test_each_store_takes_its_own_host(monkeypatch):
    monkeypatch.setenv("MURMUR_PG_HOST", "murmur-postgres")
    monkeypatch.setenv("MURMUR_PG_PORT", "5432")
    monkeypatch.setenv("MURMUR_REDIS_HOST", "murmur-redis")
    monkeypatch.setenv("MURMUR_REDIS_PORT", "6379")
    stores = config.stores()
    assert stores.pg_conninfo.startswith("host=murmur-postgres port=5432 ")
    assert stores.redis_url == "redis://murmur-redis:6379/0"


def test_kafka_bootstrap_list_overrides_host_and_port(monkeypatch):
    monkeypatch.setenv("MURMUR_STORE_HOST", "ignored.example")
    monkeypatch.setenv("MURMUR_KAFKA_BOOTSTRAP", " kafka-0.kafka:9092, kafka-1.kafka:9092 ,")
    assert config.stores().kafka_bootstrap == "kafka-0.kafka:9092,kafka-1.kafka:9092"


def test_a_kafka_server_named_without_a_port_gets_the_kafka_port(monkeypatch):
    monkeypatch.setenv("MURMUR_KAFKA_PORT", "9092")
    monkeypatch.setenv("MURMUR_KAFKA_BOOTSTRAP", "kafka-0.kafka,kafka-1.kafka:9093")
    assert config.stores().kafka_bootstrap == "kafka-0.kafka:9092,kafka-1.kafka:9093"


def test_cassandra_hosts_are_a_comma_list_of_contact_points(monkeypatch):
    monkeypatch.setenv("MURMUR_CASSANDRA_HOSTS", "cassandra-0.cassandra,cassandra-1.cassandra")
    assert config.stores().cassandra_hosts == ("cassandra-0.cassandra", "cassandra-1.cassandra")


def test_kafka_replication_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("MURMUR_KAFKA_REPLICATION", "3")
    assert config.stores().kafka_replication == 3


def test_an_empty_list_variable_falls_back_to_its_default(monkeypatch):
    monkeypatch.setenv("MURMUR_CASSANDRA_HOSTS", "")
    monkeypatch.setenv("MURMUR_STORE_HOST", "stores.example")
    assert config.stores().cassandra_hosts == ("stores.example",)
    assert config.env_list("MURMUR_CASSANDRA_HOSTS", " a, ,b ") == ("a", "b")


def test_services_listen_on_loopback_unless_told_otherwise(monkeypatch):
    assert config.bind_address(8000) == "127.0.0.1:8000"
    monkeypatch.setenv("MURMUR_BIND_HOST", "0.0.0.0")
    assert config.bind_address(8000) == "0.0.0.0:8000"


def test_an_ipv6_bind_host_is_bracketed_for_gunicorn(monkeypatch):
    monkeypatch.setenv("MURMUR_BIND_HOST", "::")
    assert config.bind_address(8000) == "[::]:8000"
