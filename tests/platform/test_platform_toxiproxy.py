"""Toxiproxy sits between the services and every store, and the fault commands drive it.

`up` leaves one proxy per store and profile, the services of the test profile connect
through the test profile's own (their environment says so, and cutting a proxy really cuts
their store), `make toxic/cut/heal/toxics PROFILE=test` change and show those and never the
dev profile's, `MURMUR_TOXIPROXY=0 make up` takes Toxiproxy out of the path and `make up`
puts it back, and the graceful restart commands replace processes and wait until they are
ready. Each test heals what it broke, pass or fail (the test profile's proxies only).
"""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from pathlib import Path

import pytest
import redis
import requests

from common import config
from conftest import make, service_env, stackctl, wait_until
import stackctl as platform

PROXY = {p.store: p for p in platform.proxies("test")}  # by store: the test profile's own
DEV_PROXIES = {p.name for p in platform.proxies("dev")}
TIMELINE_READYZ = f"http://127.0.0.1:{config.SERVICE_PORTS['timeline'] + 10}/readyz"
SERVICES = ["test-users", "test-timeline", "test-fanout", "test-gateway-1",
            "test-users-relay", "test-timeline-relay", "test-timeline-authors"]


def proxies() -> dict:
    return platform.Toxiproxy().proxies()


def dev_proxies() -> dict:
    """The dev profile's proxies as Toxiproxy has them (the tests must never change them)."""
    return {name: proxy for name, proxy in proxies().items() if name in DEV_PROXIES}


def timeline_readyz() -> int:
    try:
        return requests.get(TIMELINE_READYZ, timeout=3).status_code
    except requests.RequestException:
        return 0


def redis_ping_seconds(port: int) -> float:
    """Time one PING on a fresh connection to `port`."""
    client = redis.Redis(port=port, socket_timeout=5, socket_connect_timeout=5)
    try:
        started = time.monotonic()
        assert client.ping()
        return time.monotonic() - started
    finally:
        client.close()


@pytest.fixture()
def healed():
    """Heal every proxy of the test profile after the test, pass or fail; the dev
    profile's proxies are the same after the test as before it."""
    dev_before = dev_proxies()
    yield
    result = make("heal")
    assert result.returncode == 0, result.stdout + result.stderr
    assert dev_proxies() == dev_before, "a test profile's fault command reached the dev proxies"


def test_up_leaves_one_enabled_proxy_in_front_of_each_store_for_each_profile():
    found = proxies()
    assert set(found) >= {"postgres", "redis", "cassandra", "kafka", "redis-fanout"}
    assert set(found) >= {"test-postgres", "test-redis", "test-cassandra", "test-kafka",
                          "test-redis-fanout"}
    for proxy in PROXY.values():
        assert found[proxy.name]["listen"] == f"127.0.0.1:{proxy.listen}"
        assert found[proxy.name]["upstream"] == f"127.0.0.1:{proxy.upstream}"
        assert found[proxy.name]["enabled"] is True
    # The dev ports plus the test profile's offset (10).
    assert (PROXY["postgres"].listen, PROXY["redis"].listen, PROXY["cassandra"].listen,
            PROXY["kafka"].listen, PROXY["redis-fanout"].listen) == (
        25442, 26389, 29052, 29102, 26390)


@pytest.mark.parametrize("name", SERVICES)
def test_the_services_are_told_to_connect_through_the_proxies(name):
    env = service_env(name)
    # fanout reaches Redis through a proxy of its own (a fault on fan-out writes alone).
    redis = str(PROXY["redis-fanout" if name.endswith("fanout") else "redis"].listen)
    assert {k: env.get(k) for k in ("MURMUR_PG_PORT", "MURMUR_REDIS_PORT",
                                    "MURMUR_CASSANDRA_PORT", "MURMUR_KAFKA_PORT")} == {
        "MURMUR_PG_PORT": "25442", "MURMUR_REDIS_PORT": redis,
        "MURMUR_CASSANDRA_PORT": "29052", "MURMUR_KAFKA_PORT": "29102"}


def test_cutting_the_redis_proxy_makes_the_timeline_unready_until_it_is_healed(healed):
    assert timeline_readyz() == 200
    cut = make("cut", "DEP=redis")
    assert cut.returncode == 0, cut.stdout + cut.stderr
    assert "test-redis: cut" in cut.stdout
    wait_until(lambda: timeline_readyz() == 503, timeout=30, interval=0.2,
               message="test-timeline /readyz answering 503 with its Redis proxy cut")
    assert redis_ping_seconds(platform.ports().redis) < 1, "Redis itself must be untouched"
    assert proxies()["redis"]["enabled"] is True, "the dev profile's Redis proxy must stay"
    listed = make("toxics")
    assert any(line.split()[:1] == ["test-redis"] and " cut " in line
               for line in listed.stdout.splitlines()), listed.stdout
    assert not any(line.split()[:1] == ["redis"] for line in listed.stdout.splitlines()), \
        "make toxics PROFILE=test lists the test profile's proxies only"

    healed_now = make("heal", "DEP=redis")
    assert healed_now.returncode == 0, healed_now.stdout + healed_now.stderr
    wait_until(lambda: timeline_readyz() == 200, timeout=60, interval=0.2,
               message="test-timeline /readyz answering 200 once healed")


def test_make_toxic_adds_latency_and_a_reset_that_make_heal_removes(healed):
    added = make("toxic", "DEP=redis", "TOXIC=latency", "MS=400")
    assert added.returncode == 0, added.stdout + added.stderr
    assert redis_ping_seconds(PROXY["redis"].listen) >= 0.4
    assert "latency" in make("toxics").stdout

    reset = make("toxic", "DEP=redis", "TOXIC=reset")
    assert reset.returncode == 0, reset.stdout + reset.stderr
    with pytest.raises(redis.ConnectionError):
        redis_ping_seconds(PROXY["redis"].listen)

    healed_now = make("heal", "DEP=redis")
    assert healed_now.returncode == 0, healed_now.stdout + healed_now.stderr
    assert redis_ping_seconds(PROXY["redis"].listen) < 0.3
    assert proxies()["test-redis"]["toxics"] == []


def test_a_kafka_client_bootstrapped_through_the_proxy_stays_behind_it(healed):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    topic = "test.platform-probe"
    admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{platform.ports().kafka}")
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()

    proxied = f"127.0.0.1:{PROXY['kafka'].listen}"
    producer = KafkaProducer(bootstrap_servers=proxied, request_timeout_ms=3000,
                             max_block_ms=5000, retries=0)
    try:
        payload = uuid.uuid4().hex.encode()
        sent = producer.send(topic, payload).get(timeout=20)
        # Every broker the client learnt about is the proxy's address, not the broker's.
        brokers = {f"{b.host}:{b.port}" for b in producer._metadata.brokers()}
        assert brokers == {proxied}, brokers

        consumer = KafkaConsumer(bootstrap_servers=proxied, enable_auto_commit=False,
                                 consumer_timeout_ms=10000)
        try:
            partition = TopicPartition(topic, sent.partition)
            consumer.assign([partition])
            consumer.seek(partition, sent.offset)
            assert next(iter(consumer)).value == payload
        finally:
            consumer.close()

        assert make("cut", "DEP=kafka").returncode == 0
        with pytest.raises(KafkaError):
            producer.send(topic, b"through a cut proxy").get(timeout=20)
    finally:
        make("heal", "DEP=kafka")  # so the producer can close without a pending batch
        producer.close(timeout=10)


def test_populate_leaves_a_cut_proxy_cut(healed):
    assert make("cut", "DEP=postgres").returncode == 0
    platform.populate_proxies()  # what `up` and `start toxiproxy` do on a running Toxiproxy
    assert proxies()["test-postgres"]["enabled"] is False


def test_a_toxiproxy_that_crashed_comes_back_with_every_proxy():
    pid = platform.process_info("toxiproxy")["pid"]
    os.kill(pid, signal.SIGKILL)
    every = {p.name for profile in ("dev", "test") for p in platform.proxies(profile)}
    wait_until(lambda: platform.process_info("toxiproxy")["pid"] not in (0, pid)
               and set(proxies()) >= every, timeout=30, interval=0.2,
               message="supervisord restarting Toxiproxy with its proxies")
    wait_until(lambda: timeline_readyz() == 200, timeout=60, interval=0.2,
               message="test-timeline ready again through the new Toxiproxy")


@pytest.mark.parametrize("args, message", [
    (["toxic", "DEP=nosuch", "TOXIC=latency", "MS=10"],
     "unknown dependency 'nosuch': DEP=one of postgres, redis, cassandra, kafka, redis-fanout"),
    (["toxic", "DEP=redis", "TOXIC=slow"], "unknown toxic 'slow': TOXIC=one of latency"),
    (["toxic", "DEP=redis", "TOXIC=latency"], "latency needs a delay: MS="),
    (["cut"], "which dependency? DEP=one of"),
])
def test_a_fault_command_with_bad_arguments_says_what_is_wrong(args, message):
    result = make(*args)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert proxies()["test-redis"]["toxics"] == []


def test_a_fault_command_without_toxiproxy_says_how_to_start_it():
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    result = stackctl("toxic", "list", env={"MURMUR_TOXIPROXY_PORT": str(free)})
    assert result.returncode != 0
    assert f"Toxiproxy is not answering on 127.0.0.1:{free}" in result.stderr
    assert "make start SERVICE=toxiproxy" in result.stderr


def test_the_switch_takes_toxiproxy_out_of_the_path_and_make_up_puts_it_back():
    try:
        off = stackctl("up", env={"MURMUR_TOXIPROXY": "0"}, timeout=240)
        assert off.returncode == 0, off.stdout + off.stderr
        env = service_env("test-timeline")
        assert (env["MURMUR_REDIS_PORT"], env["MURMUR_KAFKA_PORT"]) == (
            str(platform.ports().redis), str(platform.ports().kafka))
    finally:
        on = stackctl("up", env={"MURMUR_TOXIPROXY": ""}, timeout=240)
    assert on.returncode == 0, on.stdout + on.stderr
    for name in SERVICES:
        # fanout's own proxy (test-redis-fanout) for Redis; every other process the
        # profile's general one.
        proxy = PROXY["redis-fanout" if name.endswith("fanout") else "redis"]
        assert service_env(name)["MURMUR_REDIS_PORT"] == str(proxy.listen), name


def test_make_restart_replaces_the_process_and_returns_once_it_is_ready():
    before = platform.process_info("test-users")["pid"]
    result = make("restart", "SERVICE=test-users")
    assert result.returncode == 0, result.stdout + result.stderr
    after = platform.process_info("test-users")
    assert after["statename"] == "RUNNING" and after["pid"] != before
    platform.component("test-users").ready()


def test_make_reload_replaces_every_worker_while_the_socket_stays_open():
    master = platform.process_info("test-timeline")["pid"]
    children = Path(f"/proc/{master}/task/{master}/children")
    old = set(children.read_text().split())
    result = make("reload", "SERVICE=test-timeline")
    assert result.returncode == 0, result.stdout + result.stderr
    assert platform.process_info("test-timeline")["pid"] == master
    new = set(children.read_text().split())
    assert new and not new & old and len(new) == len(old)
    assert timeline_readyz() == 200
