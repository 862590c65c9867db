"""What "this store is down" means, once per kind of store.

An outage is an error that says the store cannot answer now: unreachable, timing out,
starting up, overloaded, without a leader or a quorum. It trips a breaker, may be retried
and becomes a 503 at the edge. Every other error is an answer (a constraint violated, a
deadlock chosen as victim, a wrong command or query): no breaker or retry helps, and it
says nothing about the store's health.

    outages.is_outage("redis", exc)      # the test, for breakers and error mappings
    except outages.exceptions("redis"):  # the classes to catch (then test with is_outage)

`exceptions(kind)` are the classes an outage of `kind` is raised as; for most kinds every
instance is an outage, but Postgres reports a few answers (a deadlock, a serialization
failure) under the same classes and Redis reports some outages (a busy or read-only
server) as command errors, so `is_outage` is the exact test. The drivers are imported when
a kind is first asked about, never at import, so a process pays only for the stores it uses.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["postgres", "redis", "cassandra", "kafka", "http"]
KINDS: tuple[Kind, ...] = ("postgres", "redis", "cassandra", "kafka", "http")

# Redis command errors that say the server cannot take commands now, not that the command
# is wrong. redis-py gives most a class of its own (and drops the prefix from the message:
# a prefix test alone misses them); BUSY (a script running too long) stays a plain
# ResponseError.
REDIS_BUSY_PREFIXES = ("BUSY", "LOADING", "OOM", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN",
                       "READONLY")


def exceptions(kind: Kind) -> tuple[type[BaseException], ...]:
    """The exception classes an outage of a `kind` store is raised as."""
    if kind == "postgres":
        import psycopg

        # PoolTimeout (no connection within the pool's wait), a statement timeout
        # (QueryCanceled), an admin shutdown and a refused connection are all
        # OperationalError; InterfaceError is a connection that broke under us.
        return (psycopg.OperationalError, psycopg.InterfaceError)
    if kind == "redis":
        import redis

        # ConnectionError covers BusyLoadingError and a pool that has no connection free.
        return (redis.ConnectionError, redis.TimeoutError, redis.ResponseError)
    if kind == "cassandra":
        from cassandra import CoordinationFailure, OperationTimedOut, Timeout, Unavailable
        from cassandra.cluster import NoHostAvailable
        from cassandra.connection import ConnectionException

        # Timeout: the coordinator's replicas did not answer (ReadTimeout, WriteTimeout);
        # CoordinationFailure: replicas failed the request (ReadFailure, WriteFailure);
        # OperationTimedOut: the driver's own timeout.
        return (OperationTimedOut, NoHostAvailable, Unavailable, Timeout, CoordinationFailure,
                ConnectionException)
    if kind == "kafka":
        from kafka.errors import KafkaError

        return (KafkaError,)
    if kind == "http":
        from urllib3 import exceptions as u

        found: tuple[type[BaseException], ...] = (
            u.NewConnectionError, u.ConnectTimeoutError, u.ReadTimeoutError, u.ProtocolError,
            u.MaxRetryError, ConnectionError, TimeoutError)
        try:
            import requests
        except ImportError:  # pragma: no cover - a process without requests
            return found
        return found + (requests.ConnectionError, requests.Timeout,
                        requests.exceptions.ChunkedEncodingError)
    raise ValueError(f"unknown kind of store {kind!r}; known: {', '.join(KINDS)}")


def is_outage(kind: Kind, exc: BaseException) -> bool:
    """Whether `exc` means a `kind` store cannot answer now (not that it refused a request)."""
    if not isinstance(exc, exceptions(kind)):
        return False
    if kind == "postgres":
        from psycopg import errors

        # Postgres answered: the statement lost a race or a lock; the database is fine.
        # (psycopg's classes are flat: a deadlock is not a TransactionRollback subclass.)
        return not isinstance(exc, (errors.TransactionRollback, errors.DeadlockDetected,
                                    errors.SerializationFailure, errors.LockNotAvailable))
    if kind == "redis":
        import redis

        if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
            return True
        busy = (redis.exceptions.ReadOnlyError, redis.exceptions.OutOfMemoryError,
                redis.exceptions.TryAgainError, redis.exceptions.ClusterDownError)
        # A reply inside a pipeline comes back as "Command # n (...) of pipeline caused
        # error: BUSY ...": the reply's own words follow "caused error: ".
        reply = str(exc).rpartition("caused error: ")[2]
        return isinstance(exc, busy) or reply.startswith(REDIS_BUSY_PREFIXES)
    if kind == "kafka":
        from kafka.errors import BrokerNotAvailableError

        # Kafka's own classification: a retriable error is a broker, leader, replica or
        # connection not being there now; the others (too large, not authorised) are answers.
        return bool(getattr(exc, "retriable", False)) or isinstance(exc, BrokerNotAvailableError)
    return True
