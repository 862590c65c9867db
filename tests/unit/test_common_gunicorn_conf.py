"""The gunicorn settings file reads the shared declarations of common.config."""

from __future__ import annotations

import runpy

import pytest

from common import config
from gateway import config as gateway_config

VARIABLES = ("MURMUR_PORT", "MURMUR_BIND_HOST", "GUNICORN_WORKERS", "GUNICORN_THREADS",
             "GATEWAY_POOL_SIZE")


@pytest.fixture()
def env(monkeypatch):
    """An environment without the variables the settings file reads."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def gunicorn_settings() -> dict:
    """The module-level names gunicorn would read from `-c python:common.gunicorn_conf`."""
    return runpy.run_module("common.gunicorn_conf")


def test_the_defaults_are_the_declared_ones(env):
    conf = gunicorn_settings()
    assert conf["bind"] == "127.0.0.1:0"
    assert (conf["workers"], conf["threads"]) == (2, 8)
    assert (conf["workers"], conf["threads"]) == (config.GUNICORN_WORKERS.default,
                                                  config.GUNICORN_THREADS.default)
    assert conf["worker_class"] == "gthread"


def test_port_host_workers_and_threads_come_from_the_environment(env):
    env.setenv("MURMUR_PORT", "18101")
    env.setenv("MURMUR_BIND_HOST", "0.0.0.0")
    env.setenv("GUNICORN_WORKERS", "3")
    env.setenv("GUNICORN_THREADS", "4")
    conf = gunicorn_settings()
    assert (conf["bind"], conf["workers"], conf["threads"]) == ("0.0.0.0:18101", 3, 4)


def test_an_empty_variable_means_the_default(env):
    env.setenv("GUNICORN_THREADS", "")
    env.setenv("MURMUR_PORT", "")
    conf = gunicorn_settings()
    assert (conf["bind"], conf["threads"]) == ("127.0.0.1:0", 8)


def test_a_value_that_cannot_be_read_names_its_variable(env):
    env.setenv("GUNICORN_THREADS", "lots")
    with pytest.raises(config.SettingError, match="^GUNICORN_THREADS='lots': "):
        gunicorn_settings()


def test_the_gateway_pools_one_connection_per_gunicorn_thread(env):
    assert gateway_config.GatewayConfig.load().users.pool_size == gunicorn_settings()["threads"]
    env.setenv("GUNICORN_THREADS", "4")
    assert gateway_config.GatewayConfig.load().users.pool_size == gunicorn_settings()["threads"]
