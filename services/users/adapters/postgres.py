"""Postgres adapter: users, the follow graph with its counts, and the outbox of their events.

Every statement goes through the process's Postgres circuit breaker and waits for a pooled
connection no longer than the request's deadline allows. An outage (`common.outages`: no
connection, a lost one, a statement timeout) becomes `StoreUnavailable`, which the use
cases can fall back from; while the breaker is open that answer comes at once, without
touching the pool. Every other error is Postgres answering (a violated constraint, a
deadlock) and leaves unchanged.

A change and the event reporting it commit together: the handler gives the domain event
and the request's propagation headers, and this adapter serialises them into an outbox
row (topic, key, envelope, headers) that the outbox relay publishes afterwards.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from typing import Any, Callable, Mapping, TypeVar

import psycopg
from psycopg import errors
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from common import events, outages, resilience
from common.config import CELEBRITY_THRESHOLD_DEFAULT
from common.metrics import POOL_WAITING
from common.resilience import Breaker, CircuitBreakerError, DeadlineExceeded
from users.domain.errors import SignupKeyTaken, StoreUnavailable, UsernameTaken, UserNotFound
from users.domain.events import (CelebrityStatusChanged, ProfileChanged, UserFollowed,
                                 UserRegistered, UserUnfollowed)
from users.domain.model import Credentials, Position, User

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


def _answered(exc: BaseException) -> bool:
    """Postgres answered (a violated constraint, a deadlock): the database is up."""
    return not outages.is_outage("postgres", exc)


def postgres_breaker(*, fail_max: int, reset_timeout: float,
                     name: str = "users.postgres") -> Breaker:
    """The process's Postgres breaker: it counts outages only (`common.outages`: a unique
    violation, a deadlock or a missing row is Postgres answering), and a request's own
    deadline running out counts for nothing."""
    return Breaker(name, fail_max=fail_max, reset_timeout=reset_timeout,
                   exclude=[_answered], ignore=[DeadlineExceeded])


def _user(row: dict) -> User:
    return User(id=row["id"], username=row["username"], display_name=row["display_name"],
                bio=row["bio"], followers_count=row["followers_count"],
                following_count=row["following_count"], version=row["version"],
                created_at=row["created_at"])


UsersEvent = (UserFollowed | UserUnfollowed | UserRegistered | ProfileChanged
              | CelebrityStatusChanged)


def outbox_record(event: UsersEvent) -> tuple[str, str, dict[str, Any]]:
    """The envelope type, Kafka key and payload of a domain event (ids as strings)."""
    if isinstance(event, (UserFollowed, UserUnfollowed)):
        kind = events.USER_FOLLOWED if isinstance(event, UserFollowed) else events.USER_UNFOLLOWED
        return kind, str(event.follower_id), {"follower_id": str(event.follower_id),
                                              "followee_id": str(event.followee_id)}
    if isinstance(event, (UserRegistered, ProfileChanged)):
        kind = events.USER_REGISTERED if isinstance(event, UserRegistered) else events.PROFILE_CHANGED
        return kind, str(event.user_id), {"user_id": str(event.user_id),
                                          "username": event.username,
                                          "display_name": event.display_name,
                                          "version": event.version}
    if isinstance(event, CelebrityStatusChanged):
        # A key of its own: users.v1 is compacted by key, and the latest status must not
        # replace the latest profile (nor the other way round).
        return events.CELEBRITY_STATUS_CHANGED, f"{event.user_id}/celebrity", {
            "user_id": str(event.user_id), "celebrity": event.celebrity,
            "version": event.version, "followers_count": event.followers_count}
    raise TypeError(f"not a users event: {event!r}")


class PostgresUsers:
    """The UserRepository on a psycopg connection pool, behind a circuit breaker.

    Follow events go to `follows_topic`, account, profile and celebrity status events to
    `users_topic` (both with the profile's prefix). A follow or unfollow that moves the
    followee's count across `celebrity_threshold` records their new status and its event
    in the same transaction."""

    def __init__(self, pool: ConnectionPool, follows_topic: str, *, users_topic: str,
                 breaker: Breaker, celebrity_threshold: int = CELEBRITY_THRESHOLD_DEFAULT
                 ) -> None:
        self.pool, self.breaker = pool, breaker
        self.follows_topic, self.users_topic = follows_topic, users_topic
        self.celebrity_threshold = celebrity_threshold

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
            raise StoreUnavailable(max(1, self.down_for())) from None
        except Exception as exc:
            if not outages.is_outage("postgres", exc):
                raise
            log.warning("postgres unavailable: %s: %s", type(exc).__name__, exc)
            raise StoreUnavailable() from exc

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

    def add(self, event: UserRegistered, password_hash: str, trace: Mapping[str, str],
            signup_key: str | None = None) -> User:
        """Insert the user `event` describes, its sign-up's Idempotency-Key and the event
        in the outbox, in one transaction; raises UsernameTaken if the name is in use and
        SignupKeyTaken if the key made another sign-up first."""

        def work(conn: psycopg.Connection) -> dict:
            with conn.transaction():
                row = conn.cursor(row_factory=dict_row).execute(
                    f"INSERT INTO users (id, username, display_name, password_hash, version) "
                    f"VALUES (%s, %s, %s, %s, %s) RETURNING {USER_COLUMNS}",
                    (event.user_id, event.username, event.display_name, password_hash,
                     event.version),
                ).fetchone()
                if signup_key is not None:
                    conn.execute("INSERT INTO signup_keys (key, user_id) VALUES (%s, %s)",
                                 (signup_key, event.user_id))
                self._append_outbox(conn, event, trace)
                return row

        try:
            row = self._run(work)
        except errors.UniqueViolation as exc:
            if exc.diag.constraint_name == "signup_keys_pkey":
                raise SignupKeyTaken() from exc
            if exc.diag.constraint_name == "users_username_key":
                raise UsernameTaken(event.username) from exc
            raise
        return _user(row)

    def by_signup_key(self, key: str) -> User | None:
        """The user a sign-up with this Idempotency-Key made, or None."""
        return self._one(f"SELECT {_JOINED_USER_COLUMNS} FROM signup_keys k "
                         "JOIN users u ON u.id = k.user_id WHERE k.key = %s", (key,))

    def by_id(self, user_id: int) -> User | None:
        """The user with this id, or None."""
        return self._one(f"SELECT {USER_COLUMNS} FROM users WHERE id = %s", (user_id,))

    def by_username(self, username: str) -> User | None:
        """The user with this username, or None."""
        return self._one(f"SELECT {USER_COLUMNS} FROM users WHERE username = %s", (username,))

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

    def update_profile(self, user_id: int, expected_versions: frozenset[int] | None,
                       changes: dict[str, str], announce: Callable[[User], ProfileChanged],
                       trace: Mapping[str, str]) -> User | None:
        """Apply `changes` if the row is at one of `expected_versions` (None: any) and
        write `announce(updated user)` to the outbox in the same transaction; else None.

        One conditional UPDATE: of two edits made from the same version, the second waits
        for the first's row lock, finds the version moved on, and matches no row."""

        def work(conn: psycopg.Connection) -> User | None:
            with conn.transaction():
                row = conn.cursor(row_factory=dict_row).execute(
                    f"UPDATE users SET display_name = COALESCE(%(display_name)s, display_name), "
                    f"bio = COALESCE(%(bio)s, bio), version = version + 1 "
                    f"WHERE id = %(id)s "
                    f"AND (%(versions)s::integer[] IS NULL OR version = ANY(%(versions)s)) "
                    f"RETURNING {USER_COLUMNS}",
                    {"display_name": changes.get("display_name"), "bio": changes.get("bio"),
                     "id": user_id,
                     "versions": None if expected_versions is None else sorted(expected_versions)},
                ).fetchone()
                if row is None:
                    return None
                user = _user(row)
                self._append_outbox(conn, announce(user), trace)
                return user

        return self._run(work)

    # -------------------------------------------------------------------- graph

    def follow(self, event: UserFollowed, trace: Mapping[str, str]) -> bool:
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
                self._count(conn, event.follower_id, event.followee_id, +1, trace)
                self._append_outbox(conn, event, trace)
                return True

        try:
            return self._run(work)
        except errors.ForeignKeyViolation as exc:
            raise UserNotFound("The follower does not exist.") from exc

    def unfollow(self, event: UserUnfollowed, trace: Mapping[str, str]) -> bool:
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
                self._count(conn, event.follower_id, event.followee_id, -1, trace)
                self._append_outbox(conn, event, trace)
                return True

        return self._run(work)

    def _count(self, conn, follower_id: int, followee_id: int, delta: int,
               trace: Mapping[str, str]) -> None:
        # Lock the two user rows in ascending id order: A following B while B follows A
        # would otherwise lock them in opposite orders and deadlock.
        followee = None
        for user_id in sorted((follower_id, followee_id)):
            if user_id == follower_id:
                conn.execute("UPDATE users SET following_count = following_count + %s "
                             "WHERE id = %s", (delta, user_id))
            else:
                followee = conn.execute(
                    "UPDATE users SET followers_count = followers_count + %s WHERE id = %s "
                    "RETURNING followers_count, celebrity, celebrity_version",
                    (delta, user_id)).fetchone()
        if followee is None:
            return
        # The row stays locked until commit, so crossings of one user are seen one at a
        # time, each against the status the previous one left: one event per crossing.
        change = CelebrityStatusChanged.after_count_change(
            followee_id, followee[0], followee[1], followee[2], self.celebrity_threshold)
        if change is not None:
            conn.execute("UPDATE users SET celebrity = %s, celebrity_version = %s "
                         "WHERE id = %s", (change.celebrity, change.version, followee_id))
            self._append_outbox(conn, change, trace)

    def topic_of(self, event: UsersEvent) -> str:
        """The (prefixed) topic an event is published on."""
        return (self.follows_topic if isinstance(event, (UserFollowed, UserUnfollowed))
                else self.users_topic)

    def _append_outbox(self, conn, event: UsersEvent, trace: Mapping[str, str]) -> None:
        """One outbox row for `event`; `trace` (propagation headers) lets the relay
        continue the trace of the request that made the change."""
        kind, key, payload = outbox_record(event)
        envelope = events.Event(event_id=str(uuid.uuid4()), type=kind, payload=payload)
        conn.execute(
            "INSERT INTO outbox (topic, key, payload, headers) VALUES (%s, %s, %s, %s)",
            (self.topic_of(event), key, envelope.to_json().decode(), json.dumps(dict(trace))),
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

    def followee_ids(self, user_id: int, min_followers: int, limit: int,
                     pulled: bool = False) -> list[int]:
        """Whom `user_id` follows (ascending), only those with >= `min_followers` followers
        (0: every followee, read from the follows primary key alone), and with `pulled`
        also those ever counted as a celebrity (whose tweets may not have been fanned out)."""
        if min_followers <= 0:
            query = ("SELECT followee_id FROM follows WHERE follower_id = %s "
                     "ORDER BY followee_id LIMIT %s")
            params: tuple = (user_id, limit)
        else:
            query = ("SELECT f.followee_id FROM follows f JOIN users u ON u.id = f.followee_id "
                     "WHERE f.follower_id = %s AND (u.followers_count >= %s "
                     "OR (%s AND u.celebrity_version > 0)) "
                     "ORDER BY f.followee_id LIMIT %s")
            params = (user_id, min_followers, pulled, limit)
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
