"""Postgres adapter: users, the follow graph with its counts, and the follows outbox.

Every statement goes through the process's Postgres circuit breaker and waits for a pooled
connection no longer than the request's deadline allows. An outage (no connection, a lost
one, a statement timeout) becomes `DatabaseUnavailable`, a 503 the domain can fall back
from; while the breaker is open that answer comes at once, without touching the pool.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from typing import Callable, Sequence, TypeVar

import psycopg
from psycopg import errors
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from common import events, resilience, tracing
from common.logs import request_id_var
from common.metrics import POOL_WAITING
from common.resilience import Breaker, CircuitBreakerError, DeadlineExceeded
from users.domain import (
    Credentials,
    DatabaseUnavailable,
    Position,
    User,
    UserFollowed,
    UsernameTaken,
    UserNotFound,
    UserUnfollowed,
)

log = logging.getLogger("murmur.users.postgres")
T = TypeVar("T")

USER_COLUMNS = ("id, username, display_name, bio, followers_count, following_count, "
                "version, created_at")
_JOINED_USER_COLUMNS = ", ".join(f"u.{c.strip()}" for c in USER_COLUMNS.split(","))


def create_pool(conninfo: str, *, min_size: int, max_size: int, timeout: float,
                statement_timeout_ms: int, name: str,
                reconnect_timeout: float = 3.0) -> ConnectionPool:
    """A bounded pool whose connections all carry a statement timeout (the connect timeout
    comes with `conninfo`)."""
    return ConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        name=name,
        kwargs={"options": f"-c statement_timeout={statement_timeout_ms}"},
        # Checking on checkout costs a round trip but hands out no dead connection after
        # Postgres restarts, so the service recovers as soon as the database does.
        check=ConnectionPool.check_connection,
        # The pool retries a lost connection with exponential backoff (1 s, 2 s, 4 s ...)
        # for `reconnect_timeout`; after a long outage its next try could come well after
        # Postgres is back. Giving up early lets the next request start a fresh attempt.
        reconnect_timeout=reconnect_timeout,
        open=True,
    )


# Errors with which Postgres answered: the statement failed, the database did not.
_ANSWERS = (errors.TransactionRollback, errors.DeadlockDetected, errors.SerializationFailure,
            errors.LockNotAvailable)


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` means Postgres is down or too slow, not that it refused one statement."""
    return (isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))
            and not isinstance(exc, _ANSWERS))


def postgres_breaker(*, fail_max: int, reset_timeout: float) -> Breaker:
    """The process's Postgres breaker: it counts outages only (a unique violation or a
    missing row is Postgres answering), and a request's own deadline running out counts
    for nothing."""
    return resilience.breaker("postgres", fail_max=fail_max, reset_timeout=reset_timeout,
                              exclude=[lambda exc: not is_outage(exc)],
                              ignore=[DeadlineExceeded])


def _user(row: dict) -> User:
    return User(id=row["id"], username=row["username"], display_name=row["display_name"],
                bio=row["bio"], followers_count=row["followers_count"],
                following_count=row["following_count"], version=row["version"],
                created_at=row["created_at"])


class PostgresUsers:
    """The UserRepository on a psycopg connection pool, behind a circuit breaker."""

    def __init__(self, pool: ConnectionPool, follows_topic: str, *, breaker: Breaker) -> None:
        self.pool, self.follows_topic, self.breaker = pool, follows_topic, breaker

    # ---------------------------------------------------------------- resilience

    def down_for(self) -> int:
        """Whole seconds before the breaker lets a call try Postgres again (0: calls go)."""
        return math.ceil(self.breaker.time_to_trial())

    def _run(self, work: Callable[[psycopg.Connection], T]) -> T:
        """`work` on a pooled connection, through the breaker, within the deadline."""
        wait = resilience.timeout_within(self.pool.timeout)
        try:
            return self.breaker.call(self._on_connection, work, wait)
        except CircuitBreakerError:
            raise DatabaseUnavailable(max(1, self.down_for())) from None
        except Exception as exc:
            if not is_outage(exc):
                raise
            log.warning("postgres unavailable: %s: %s", type(exc).__name__, exc)
            raise DatabaseUnavailable() from exc

    def _on_connection(self, work: Callable[[psycopg.Connection], T], wait: float) -> T:
        try:
            with self.pool.connection(timeout=wait) as conn:
                self._report_pool()
                return work(conn)
        except PoolTimeout:
            if wait < self.pool.timeout:
                # The caller's budget ran out, not necessarily the pool: the breaker
                # ignores this rather than count it against Postgres.
                raise DeadlineExceeded("no database connection before the deadline") from None
            raise
        finally:
            self._report_pool()

    def _report_pool(self) -> None:
        # Sampled at every checkout and return: a few dict reads, no lock, no round trip.
        stats = self.pool.get_stats()
        resilience.POOL_IN_USE.labels("postgres").set(
            stats["pool_size"] - stats["pool_available"])
        resilience.POOL_SIZE.labels("postgres").set(stats["pool_max"])
        POOL_WAITING.labels("postgres").set(stats.get("requests_waiting", 0))

    # ------------------------------------------------------------------ accounts

    def add(self, user_id: int, username: str, display_name: str, password_hash: str) -> User:
        """Insert a new user; raises UsernameTaken if the name is in use."""
        try:
            row = self._run(lambda conn: conn.cursor(row_factory=dict_row).execute(
                f"INSERT INTO users (id, username, display_name, password_hash) "
                f"VALUES (%s, %s, %s, %s) RETURNING {USER_COLUMNS}",
                (user_id, username, display_name, password_hash),
            ).fetchone())
        except errors.UniqueViolation as exc:
            if exc.diag.constraint_name == "users_username_key":
                raise UsernameTaken(username) from exc
            raise
        return _user(row)

    def by_id(self, user_id: int) -> User | None:
        """The user with this id, or None."""
        return self._one(f"SELECT {USER_COLUMNS} FROM users WHERE id = %s", (user_id,))

    def by_username(self, username: str) -> User | None:
        """The user with this username, or None."""
        return self._one(f"SELECT {USER_COLUMNS} FROM users WHERE username = %s", (username,))

    def by_ids(self, user_ids: Sequence[int]) -> list[User]:
        """The users among `user_ids` that exist, in one query."""
        if not user_ids:
            return []
        rows = self._run(lambda conn: conn.cursor(row_factory=dict_row).execute(
            f"SELECT {USER_COLUMNS} FROM users WHERE id = ANY(%s)", (list(user_ids),)
        ).fetchall())
        return [_user(r) for r in rows]

    def credentials(self, username: str) -> Credentials | None:
        """Id, username and password hash for a login, or None."""
        row = self._run(lambda conn: conn.execute(
            "SELECT id, username, password_hash FROM users WHERE username = %s", (username,)
        ).fetchone())
        return Credentials(*row) if row else None

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        """Replace a password hash (rehash with new cost parameters)."""
        self._run(lambda conn: conn.execute(
            "UPDATE users SET password_hash = %s WHERE id = %s", (password_hash, user_id)))

    def update_profile(self, user_id: int, expected_version: int | None,
                       changes: dict[str, str]) -> User | None:
        """Apply `changes` if the row is at `expected_version` (None: any); else None."""
        return self._one(
            f"UPDATE users SET display_name = COALESCE(%(display_name)s, display_name), "
            f"bio = COALESCE(%(bio)s, bio), version = version + 1 "
            f"WHERE id = %(id)s AND (%(version)s::integer IS NULL OR version = %(version)s) "
            f"RETURNING {USER_COLUMNS}",
            {"display_name": changes.get("display_name"), "bio": changes.get("bio"),
             "id": user_id, "version": expected_version},
        )

    # -------------------------------------------------------------------- graph

    def follow(self, event: UserFollowed) -> bool:
        """Add the follow, its counts and its outbox event in one transaction."""

        def work(conn: psycopg.Connection) -> bool:
            with conn.transaction():
                # ON CONFLICT makes a concurrent duplicate wait for the first and then do
                # nothing, so only the transaction that really inserted touches the counts.
                inserted = conn.execute(
                    "INSERT INTO follows (follower_id, followee_id) VALUES (%s, %s) "
                    "ON CONFLICT DO NOTHING RETURNING 1",
                    (event.follower_id, event.followee_id),
                ).fetchone()
                if inserted is None:
                    return False
                self._count(conn, event.follower_id, event.followee_id, +1)
                self._append_outbox(conn, events.USER_FOLLOWED, event.follower_id,
                                    event.followee_id)
                return True

        try:
            return self._run(work)
        except errors.ForeignKeyViolation as exc:
            raise UserNotFound("The follower does not exist.") from exc

    def unfollow(self, event: UserUnfollowed) -> bool:
        """Remove the follow, its counts and write its outbox event in one transaction."""

        def work(conn: psycopg.Connection) -> bool:
            with conn.transaction():
                deleted = conn.execute(
                    "DELETE FROM follows WHERE follower_id = %s AND followee_id = %s "
                    "RETURNING 1",
                    (event.follower_id, event.followee_id),
                ).fetchone()
                if deleted is None:
                    return False
                self._count(conn, event.follower_id, event.followee_id, -1)
                self._append_outbox(conn, events.USER_UNFOLLOWED, event.follower_id,
                                    event.followee_id)
                return True

        return self._run(work)

    @staticmethod
    def _count(conn, follower_id: int, followee_id: int, delta: int) -> None:
        # Lock the two user rows in ascending id order: A following B while B follows A
        # would otherwise lock them in opposite orders and deadlock.
        for user_id in sorted((follower_id, followee_id)):
            column = "following_count" if user_id == follower_id else "followers_count"
            conn.execute(f"UPDATE users SET {column} = {column} + %s WHERE id = %s",
                         (delta, user_id))

    def _append_outbox(self, conn, event_type: str, follower_id: int, followee_id: int) -> None:
        envelope = events.Event(
            event_id=str(uuid.uuid4()), type=event_type,
            payload={"follower_id": str(follower_id), "followee_id": str(followee_id)},
        )
        headers = {**({"request_id": rid} if (rid := request_id_var.get()) else {}),
                   **tracing.current_trace_headers()}  # so the relay continues this trace
        conn.execute(
            "INSERT INTO outbox (topic, key, payload, headers) VALUES (%s, %s, %s, %s)",
            (self.follows_topic, str(follower_id), envelope.to_json().decode(),
             json.dumps(headers)),
        )

    def followers(self, user_id: int, after: Position | None,
                  limit: int) -> list[tuple[User, Position]]:
        """Who follows `user_id`, most recent follow first, after a keyset position."""
        return self._follow_page("followee_id", "follower_id", user_id, after, limit)

    def following(self, user_id: int, after: Position | None,
                  limit: int) -> list[tuple[User, Position]]:
        """Whom `user_id` follows, most recent follow first, after a keyset position."""
        return self._follow_page("follower_id", "followee_id", user_id, after, limit)

    def _follow_page(self, own: str, other: str, user_id: int, after: Position | None,
                     limit: int) -> list[tuple[User, Position]]:
        # `own` and `other` are fixed column names from the two callers above, never input.
        where = f"f.{own} = %(uid)s"
        if after is not None:
            where += f" AND (f.created_at, f.{other}) < (%(at)s, %(after)s)"
        query = (f"SELECT {_JOINED_USER_COLUMNS}, f.created_at AS followed_at "
                 f"FROM follows f JOIN users u ON u.id = f.{other} WHERE {where} "
                 f"ORDER BY f.created_at DESC, f.{other} DESC LIMIT %(limit)s")
        params = {"uid": user_id, "limit": limit,
                  "at": after.followed_at if after else None,
                  "after": after.user_id if after else None}
        rows = self._run(
            lambda conn: conn.cursor(row_factory=dict_row).execute(query, params).fetchall())
        return [(_user(r), Position(r["followed_at"], r["id"])) for r in rows]

    def follower_ids(self, user_id: int, after: int | None, limit: int) -> list[int]:
        """Follower ids of `user_id` ascending, greater than `after`."""
        rows = self._run(lambda conn: conn.execute(
            "SELECT follower_id FROM follows WHERE followee_id = %s AND follower_id > %s "
            "ORDER BY follower_id LIMIT %s",
            (user_id, -1 if after is None else after, limit),
        ).fetchall())
        return [r[0] for r in rows]

    def followee_ids(self, user_id: int, min_followers: int, limit: int) -> list[int]:
        """Whom `user_id` follows (ascending), only those with >= `min_followers` followers
        (0: every followee, read from the follows primary key alone)."""
        if min_followers <= 0:
            query = ("SELECT followee_id FROM follows WHERE follower_id = %s "
                     "ORDER BY followee_id LIMIT %s")
            params: tuple = (user_id, limit)
        else:
            query = ("SELECT f.followee_id FROM follows f JOIN users u ON u.id = f.followee_id "
                     "WHERE f.follower_id = %s AND u.followers_count >= %s "
                     "ORDER BY f.followee_id LIMIT %s")
            params = (user_id, min_followers, limit)
        rows = self._run(lambda conn: conn.execute(query, params).fetchall())
        return [r[0] for r in rows]

    # ------------------------------------------------------------------- health

    def ping(self) -> None:
        """Raise unless Postgres answers SELECT 1 (straight to the pool: readiness must
        see the database itself, not the breaker's memory of it)."""
        with self.pool.connection() as conn:
            conn.execute("SELECT 1")

    def _one(self, query: str, params) -> User | None:
        row = self._run(
            lambda conn: conn.cursor(row_factory=dict_row).execute(query, params).fetchone())
        return _user(row) if row else None
