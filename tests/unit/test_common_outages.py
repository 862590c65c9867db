"""One definition of "this store is down" per kind of store: outages versus answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import redis
import requests
import urllib3
from cassandra import (InvalidRequest, OperationTimedOut, ReadTimeout, Unavailable,
                       WriteFailure)
from cassandra.cluster import NoHostAvailable
from cassandra.connection import ConnectionShutdown
from cassandra.protocol import SyntaxException
from kafka import errors as kafka_errors
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout
from redis._parsers.base import BaseParser
from urllib3 import exceptions as u3

from common import outages

SERVICES = Path(__file__).resolve().parents[2] / "services"


def redis_reply(message: str) -> redis.RedisError:
    """The exception redis-py raises for an error reply `message` from the server."""
    return BaseParser.__new__(BaseParser).parse_error(message)


OUTAGES = {
    "postgres": [psycopg.OperationalError("server closed the connection unexpectedly"),
                 psycopg.InterfaceError("the connection is lost"),
                 PoolTimeout("couldn't get a connection after 2.00 sec"),
                 pg_errors.QueryCanceled("canceling statement due to statement timeout"),
                 pg_errors.AdminShutdown("terminating connection due to administrator command"),
                 pg_errors.CannotConnectNow("the database system is starting up")],
    "redis": [redis.ConnectionError("Error 111 connecting"), redis.TimeoutError("Timeout"),
              redis_reply("LOADING Redis is loading the dataset in memory"),
              redis_reply("READONLY You can't write against a read only replica."),
              redis_reply("OOM command not allowed when used memory > 'maxmemory'."),
              redis_reply("BUSY Redis is busy running a script."),
              redis_reply("MASTERDOWN Link with MASTER is down"),
              redis_reply("TRYAGAIN Multiple keys request during rehashing of slot"),
              redis_reply("CLUSTERDOWN The cluster is down")],
    "cassandra": [OperationTimedOut("errors={}", None), NoHostAvailable("no host", {}),
                  Unavailable("not enough replicas"), ReadTimeout("replicas did not answer"),
                  WriteFailure("replicas failed"), ConnectionShutdown("closed")],
    "kafka": [kafka_errors.KafkaConnectionError("refused"),
              kafka_errors.KafkaTimeoutError("Failed to update metadata after 5.0 secs"),
              kafka_errors.NodeNotReadyError(1), kafka_errors.LeaderNotAvailableError(),
              kafka_errors.NotLeaderForPartitionError(),
              kafka_errors.NotEnoughReplicasError(), kafka_errors.RequestTimedOutError(),
              kafka_errors.BrokerNotAvailableError()],
    "http": [u3.NewConnectionError(None, "Connection refused"),
             u3.ConnectTimeoutError("connect timed out"),
             u3.ReadTimeoutError(None, "/x", "Read timed out"),
             u3.ProtocolError("Connection aborted", ConnectionResetError()),
             u3.MaxRetryError(None, "/x", u3.NewConnectionError(None, "refused")),
             requests.ConnectionError("refused"), requests.ReadTimeout("timed out"),
             requests.exceptions.ChunkedEncodingError("connection broken"),
             ConnectionRefusedError(111, "Connection refused"), TimeoutError("timed out")],
}

ANSWERS = {
    "postgres": [pg_errors.UniqueViolation("duplicate key"),
                 pg_errors.DeadlockDetected("deadlock detected"),
                 pg_errors.SerializationFailure("could not serialize access"),
                 pg_errors.LockNotAvailable("could not obtain lock"),
                 pg_errors.UndefinedTable("relation does not exist"),
                 psycopg.DataError("invalid input"), ValueError("x")],
    "redis": [redis_reply("WRONGTYPE Operation against a key holding the wrong kind of value"),
              redis_reply("ERR unknown command 'NOPE'"), redis_reply("NOSCRIPT No matching script"),
              redis.DataError("Invalid input"), ValueError("x")],
    "cassandra": [InvalidRequest("unconfigured table"), SyntaxException(0, "line 1:0", None),
                  ValueError("x")],
    "kafka": [kafka_errors.MessageSizeTooLargeError(),
              kafka_errors.TopicAuthorizationFailedError(),
              kafka_errors.KafkaConfigurationError("bad option"), ValueError("x")],
    "http": [u3.LocationParseError("::bad"), u3.EmptyPoolError(None, "pool full"),
             requests.HTTPError("404 Client Error"), requests.exceptions.InvalidURL("no host"),
             ValueError("not JSON")],
}


@pytest.mark.parametrize("kind,exc", [(k, e) for k, es in OUTAGES.items() for e in es],
                         ids=lambda v: v if isinstance(v, str) else type(v).__name__)
def test_a_store_that_cannot_answer_is_an_outage(kind, exc):
    assert outages.is_outage(kind, exc)
    assert isinstance(exc, outages.exceptions(kind))


@pytest.mark.parametrize("kind,exc", [(k, e) for k, es in ANSWERS.items() for e in es],
                         ids=lambda v: v if isinstance(v, str) else type(v).__name__)
def test_an_answer_is_not_an_outage(kind, exc):
    assert not outages.is_outage(kind, exc)


def test_an_error_of_one_kind_of_store_is_not_an_outage_of_another():
    assert not outages.is_outage("postgres", redis.ConnectionError("refused"))
    assert not outages.is_outage("redis", psycopg.OperationalError("refused"))
    assert not outages.is_outage("cassandra", kafka_errors.KafkaTimeoutError())


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown kind of store 'mongo'"):
        outages.is_outage("mongo", RuntimeError())  # type: ignore[arg-type]


@pytest.fixture()
def closed_port() -> int:
    """A local port where connecting is refused."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        return listener.getsockname()[1]


def test_real_refused_connections_are_outages(closed_port):
    failures = {}
    with pytest.raises(Exception) as pg:
        psycopg.connect(f"host=127.0.0.1 port={closed_port} dbname=x user=x connect_timeout=2")
    failures["postgres"] = pg.value
    with pytest.raises(Exception) as rd:
        redis.Redis(port=closed_port, socket_connect_timeout=2).ping()
    failures["redis"] = rd.value
    with pytest.raises(Exception) as http:
        urllib3.PoolManager(retries=False).request("GET", f"http://127.0.0.1:{closed_port}/")
    failures["http"] = http.value
    with pytest.raises(Exception) as rq:
        requests.get(f"http://127.0.0.1:{closed_port}/", timeout=2)
    failures["http (requests)"] = rq.value
    for what, exc in failures.items():
        assert outages.is_outage(what.split()[0], exc), (what, repr(exc))


def test_importing_the_module_imports_no_driver():
    script = ("import sys, common.outages\n"
              "loaded = {'psycopg', 'redis', 'cassandra', 'kafka', 'urllib3', 'requests'}"
              " & set(sys.modules)\n"
              "assert not loaded, loaded\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={"PYTHONPATH": str(SERVICES), "PATH": os.environ["PATH"]},
                            timeout=60)
    assert result.returncode == 0, result.stderr


def test_a_busy_reply_inside_a_pipeline_is_a_redis_outage():
    import redis

    exc = redis.ResponseError("Command # 1 (EVALSHA abc 1 k) of pipeline caused error: "
                              "BUSY Redis is busy running a script.")
    assert outages.is_outage("redis", exc)
    assert not outages.is_outage("redis", redis.ResponseError(
        "Command # 1 (ZADD k x) of pipeline caused error: WRONGTYPE Operation against a key"))
