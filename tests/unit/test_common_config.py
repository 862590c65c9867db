"""Settings from the environment: one declaration each, local defaults, container overrides."""

from __future__ import annotations

import ast
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common import config
from fanout import config as fanout_config
from gateway import config as gateway_config
from timeline import config as timeline_config
from users import config as users_config

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


# ------------------------------------------------- one declaration per setting

SERVICES = Path(__file__).resolve().parents[2] / "services"
CONFIG_MODULES = {"common": SERVICES / "common/config.py", "users": SERVICES / "users/config.py",
                  "timeline": SERVICES / "timeline/config.py",
                  "fanout": SERVICES / "fanout/config.py",
                  "gateway": SERVICES / "gateway/config.py"}
PREFIXES = ("MURMUR_", "GATEWAY_", "USERS_", "TIMELINE_", "FANOUT_", "GUNICORN_",
            "CELEBRITY_THRESHOLD", "HOME_TIMELINE_CAP")


@pytest.fixture()
def empty_env(monkeypatch, tmp_path):
    """An environment that sets none of Murmur's variables (secrets folder empty)."""
    for name in list(os.environ):
        if name.startswith(PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MURMUR_HOME", str(tmp_path))
    return monkeypatch


def loaders():
    """Each settings class, with how to load it and how to build it from its declarations."""
    stores = config.stores
    return {
        "Stores": (config.stores, lambda: config.Stores(profile=config.profile())),
        "UsersConfig": (users_config.load, lambda: users_config.UsersConfig(stores=stores())),
        "timeline.Config": (timeline_config.load, lambda: timeline_config.Config(
            stores=stores(), users_url=config.service_url("users"))),
        "FanoutConfig": (fanout_config.load, lambda: fanout_config.FanoutConfig(
            stores=stores(), users_url=config.service_url("users"),
            timeline_url=config.service_url("timeline"))),
        "DownstreamConfig": (
            lambda: config.load(gateway_config.DownstreamConfig, name="timeline", base_url="u"),
            lambda: gateway_config.DownstreamConfig("timeline", "u")),
    }


def every_setting():
    """(class, field, Setting) of every setting a config class reads from a variable."""
    classes = (config.Profile, config.Stores, users_config.UsersConfig, timeline_config.Config,
               fanout_config.FanoutConfig, gateway_config.DownstreamConfig,
               gateway_config.GatewayConfig)
    return [(cls, name, declared) for cls in classes
            for name, declared in config.settings(cls).items()]


@pytest.mark.parametrize("name", ["Stores", "UsersConfig", "timeline.Config", "FanoutConfig",
                                  "DownstreamConfig"])
def test_loading_an_empty_environment_gives_the_declared_defaults(empty_env, name):
    load, declared = loaders()[name]
    assert load() == declared()


def test_the_declared_defaults_are_the_local_platform_defaults(empty_env):
    users, fanout = users_config.load(), fanout_config.load()
    timeline, gateway = timeline_config.load(), gateway_config.GatewayConfig.load()
    assert (users.pg_pool_max, users.argon2_memory_kib, users.process) == (8, 65536, "users")
    assert users.max_follower_ids_page == 10_000 and users.jwt_private_key == ""
    assert (timeline.users_timeout, timeline.tweet_cache_ttl) == (0.5, 24 * 3600)
    assert (timeline.celebrity_threshold, timeline.home_timeline_cap) == (2000, 800)
    assert timeline.authors_probe_port == 18203
    assert (fanout.group_id, fanout.port, fanout.bind_host) == ("fanout", 18301, "127.0.0.1")
    assert fanout.topics == ("tweets.v1", "follows.v1") and fanout.dlq_topic == "fanout.dlq.v1"
    assert (gateway.users.read_timeout, gateway.timeline.read_timeout) == (2.0, 2.0)
    assert (gateway.users_sign_in.name, gateway.users_sign_in.read_timeout) == ("users_sign_in", 3.0)
    assert gateway.users_sign_in.base_url == gateway.users.base_url
    assert gateway.users.connect_timeout == gateway.timeline.connect_timeout == 0.5
    assert gateway.users.pool_size == 8 and gateway.request_budget == 5.0
    assert gateway.users.base_url == "http://127.0.0.1:18101"
    assert gateway.jwt_public_keys_file == config.secrets_dir() / "jwt" / "dev" / "jwks.json"
    assert users.jwt_private_key_file == config.secrets_dir() / "jwt" / "dev" / "private.pem"
    assert (users.jwt_issuer, users.jwt_audience) == (gateway.jwt_issuer, gateway.jwt_audience)


SAMPLES = {int: ("7", 7), float: ("0.25", 0.25), str: ("sample-value", "sample-value"),
           Path: ("/some/where", Path("/some/where")),
           config.comma_list: ("h1, h2", ("h1", "h2"))}
SPECIAL = {"MURMUR_KAFKA_BOOTSTRAP": ("k1, k2:9093", "k1,k2:9093")}


@pytest.mark.parametrize("cls,field,declared", every_setting(),
                         ids=lambda v: getattr(v, "__name__", None) or
                         (v.env[0] if isinstance(v, config.Setting) else str(v)))
def test_each_variable_overrides_exactly_its_own_setting(empty_env, cls, field, declared):
    variable = declared.variables(NAME="TIMELINE")[0]
    raw, expected = SPECIAL.get(variable) or SAMPLES[declared.parse]
    before = load_instance(cls)
    empty_env.setenv(variable, raw)
    after = load_instance(cls)
    changed = {f.name for f in dataclasses.fields(cls)
               if getattr(before, f.name) != getattr(after, f.name)}
    assert getattr(after, field) == expected
    # Defaults computed from this setting follow it (a store's host follows MURMUR_STORE_HOST).
    followers = {"host": {"pg_host", "redis_host", "cassandra_hosts"},
                 "group_id": {"redrive_group_id"}}.get(field, set())
    assert changed - followers == {field}


def load_instance(cls):
    if cls is config.Profile:
        return config.profile()
    if cls is gateway_config.DownstreamConfig:
        return config.load(cls, name="timeline", base_url="u")
    if cls is gateway_config.GatewayConfig:
        return cls.load()
    return config.load(cls)


@pytest.mark.parametrize("cls,field,declared",
                         [s for s in every_setting() if s[2].parse in (int, float)],
                         ids=lambda v: v.env[0] if isinstance(v, config.Setting) else None)
def test_a_value_that_cannot_be_read_names_its_variable(empty_env, cls, field, declared):
    variable = declared.variables(NAME="TIMELINE")[0]
    empty_env.setenv(variable, "lots")
    with pytest.raises(config.SettingError, match=f"^{variable}='lots': "):
        load_instance(cls)


def test_no_config_module_reads_a_variable_outside_a_declaration():
    readers = {"env", "env_int", "env_float", "env_bool", "env_list", "getenv"}
    for service, path in CONFIG_MODULES.items():
        if service == "common":
            continue  # where the readers are defined
        tree = ast.parse(path.read_text())
        calls = [node.func for node in ast.walk(tree) if isinstance(node, ast.Call)]
        names = {getattr(f, "attr", None) or getattr(f, "id", None) for f in calls}
        assert not names & readers, f"{service}/config.py reads {names & readers} directly"
        assert "os.environ" not in path.read_text()


def test_a_class_declares_each_variable_once():
    for cls in {cls for cls, _, _ in every_setting()}:
        variables = [v for d in config.settings(cls).values() for v in d.env]
        assert len(variables) == len(set(variables)), cls.__name__


def test_a_downstream_variable_wins_over_the_gateway_wide_one_and_threads_size_the_pool(
        empty_env):
    empty_env.setenv("GATEWAY_CONNECT_TIMEOUT", "0.7")
    empty_env.setenv("GATEWAY_USERS_CONNECT_TIMEOUT", "0.9")
    empty_env.setenv("GUNICORN_THREADS", "4")
    gateway = gateway_config.GatewayConfig.load()
    assert (gateway.users.connect_timeout, gateway.timeline.connect_timeout) == (0.9, 0.7)
    assert gateway.users.pool_size == gateway.timeline.pool_size == 4
    empty_env.setenv("GATEWAY_POOL_SIZE", "3")
    assert gateway_config.GatewayConfig.load().users.pool_size == 3


def test_a_downstream_is_a_peer_whose_every_setting_the_gateway_reads(empty_env):
    downstream = gateway_config.DownstreamConfig
    peer_fields = [(f.name, f.type) for f in dataclasses.fields(config.PeerConfig)]
    assert issubclass(downstream, config.PeerConfig)
    assert [(f.name, f.type) for f in dataclasses.fields(downstream)] == peer_fields
    own = {"name", "base_url"}  # the downstream's, given to `load`
    assert set(config.settings(downstream)) == {name for name, _ in peer_fields} - own
    assert downstream("users", "u").pool_size == config.GUNICORN_THREADS.default


def test_defaults_computed_from_other_settings_follow_them(empty_env):
    empty_env.setenv("MURMUR_PG_POOL_SIZE", "5")
    assert users_config.load().pg_pool_max == 5
    empty_env.setenv("USERS_PG_POOL_MAX", "2")
    assert users_config.load().pg_pool_max == 2
    empty_env.setenv("MURMUR_PROFILE", "test")
    fanout = fanout_config.load()
    assert (fanout.group_id, fanout.celebrity_threshold, fanout.port) == ("test.fanout", 5, 18311)
    assert fanout.topics == ("test.tweets.v1", "test.follows.v1")
    assert timeline_config.load().authors_probe_port == 18213
    empty_env.setenv("CELEBRITY_THRESHOLD", "9")
    assert timeline_config.load().celebrity_threshold == 9


def test_a_secret_comes_from_its_variable_else_from_the_secrets_folder_and_is_not_shown(
        empty_env):
    secrets = config.secrets_dir()
    secrets.mkdir(parents=True)
    (secrets / "postgres-password").write_text("pw-from-file\n")
    empty_env.setenv("MURMUR_JWT_PRIVATE_KEY", "PEM FROM ENV")
    users = users_config.load()
    assert users.stores.pg_password == "pw-from-file"
    assert users.jwt_private_key == "PEM FROM ENV"
    assert "PEM FROM ENV" not in repr(users) and "pw-from-file" not in repr(users)


def test_an_unknown_profile_or_safeguard_names_its_variable(empty_env):
    empty_env.setenv("MURMUR_PROFILE", "prod")
    with pytest.raises(config.SettingError, match="^MURMUR_PROFILE='prod': unknown profile"):
        config.profile()
    empty_env.setenv("MURMUR_DISABLE_SAFEGUARDS", "breakers,seatbelts")
    with pytest.raises(config.SettingError, match="^MURMUR_DISABLE_SAFEGUARDS=.*seatbelts"):
        config.disabled_safeguards()


def test_load_refuses_defaults_for_fields_a_class_does_not_have(empty_env):
    with pytest.raises(TypeError):
        config.load(gateway_config.DownstreamConfig, name="users", base_url="u",
                    defaults={"read_timeot": 1.0})


def test_replacing_a_field_keeps_the_others_as_loaded(empty_env):
    empty_env.setenv("MURMUR_STORE_HOST", "stores.example")
    stores = dataclasses.replace(config.stores(), pg_port=1)
    assert (stores.pg_port, stores.pg_host) == (1, "stores.example")


def test_importing_a_config_module_reads_nothing():
    script = ("import os\n"
              "class Spy(dict):\n"
              "    def get(self, *a):\n"
              "        raise AssertionError(f'read {a[0]} at import')\n"
              "    __getitem__ = get\n"
              "os.environ = Spy(os.environ)\n"
              "import common.config, users.config, timeline.config, fanout.config, "
              "gateway.config\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={"PYTHONPATH": str(SERVICES), "PATH": os.environ["PATH"]},
                            timeout=60)
    assert result.returncode == 0, result.stderr
