"""The timeline's copy of its authors' profiles, in Cassandra, with a short in-process cache.

Table `authors (id, username, display_name, version)` (schema 0003) and its lookup by
name, `authors_by_username (username, id)` (schema 0004), written together (one logged
batch) only by the author projection (`timeline.entrypoints.authors`) and by the seed of a
first post.

Newest version wins, whatever the order of the writes: every write carries
`USING TIMESTAMP <version>`, and Cassandra keeps, cell by cell, the value with the highest
write timestamp. A replayed or late event (lower version) therefore changes nothing, two
consumers racing on one user converge, and a write costs one round trip: no read
before it, and no lightweight transaction (a conditional update would take four round
trips of Paxos per event, and could not be mixed with plain writes anyway: an `IF` write
takes the current clock as its timestamp, which would beat every version-stamped write).
The seed of a post is version 0 (timestamp 0): any event of users (versions start at 1)
replaces it, and it never replaces an event.

Both rows of an author go in one logged batch: if the write reports a failure, Cassandra
still applies both or neither in the end, so a seed (written once, best effort) never
leaves an author who can be shown but not found by name. Usernames never change in
Murmur, so the lookup row of a name always holds the same id; it carries the version
timestamp all the same, so that the rule below has no exception.

The author's celebrity status (schema 0006, from users' CelebrityStatusChanged) is one
more cell of `authors`, written alone with `USING TIMESTAMP <status version>`: users
counts status changes apart from profile versions, and since Cassandra compares
timestamps cell by cell, the newest status wins in the same way without a profile write
ever touching it (nor a status write the profile). A status that arrives before the
profile makes a row with no username: the author is not `known` yet.

The price: every write to either table must carry a version timestamp. A write without one
(a manual fix in cqlsh) would be stamped with the current clock and shadow all later
events of that author; to start the copy over, TRUNCATE both tables and replay the topic.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable, Sequence

from common.metrics import CACHE_REQUESTS
from timeline.adapters.cassandra_store import CassandraSession
from timeline.domain.model import Author, CelebrityStatus
from timeline.service_layer.ports import Authors

UPSERT_AUTHOR = ("INSERT INTO {ks}.authors (id, username, display_name, version) "
                 "VALUES (?, ?, ?, ?) USING TIMESTAMP ?")
SELECT_AUTHOR = ("SELECT id, username, display_name, version, celebrity FROM {ks}.authors "
                 "WHERE id = ?")
UPDATE_STATUS = "UPDATE {ks}.authors USING TIMESTAMP ? SET celebrity = ? WHERE id = ?"
UPSERT_USERNAME = ("INSERT INTO {ks}.authors_by_username (username, id) VALUES (?, ?) "
                   "USING TIMESTAMP ?")
SELECT_USERNAME = "SELECT id FROM {ks}.authors_by_username WHERE username = ?"


def write_timestamp(version: int) -> int:
    """The write timestamp of a profile version: ordering writes is ordering versions."""
    return version


class CassandraAuthors:
    """The author projection's tables: version-stamped upserts, concurrent reads by id,
    lookups by username."""

    def __init__(self, db: CassandraSession) -> None:
        self.db = db

    def get_many(self, author_ids: Sequence[int]) -> dict[int, Author]:
        """The authors the copy holds among `author_ids`."""
        statement = self.db.prepare(SELECT_AUTHOR)
        if len(author_ids) == 1:
            rows = self.db.read(statement, (author_ids[0],))
        else:
            rows = [row for found in self.db.read_many(statement, [(a,) for a in author_ids])
                    for row in found]
        return {row.id: Author(row.id, row.username, row.display_name, row.version or 0,
                               bool(row.celebrity))
                for row in rows}

    def id_by_username(self, username: str) -> int | None:
        """The id of the author named `username`, if the copy holds them."""
        rows = self.db.read(self.db.prepare(SELECT_USERNAME), (username,))
        return rows[0].id if rows else None

    def record(self, author: Author) -> None:
        """Upsert `author` and its lookup by username (one logged batch); an older version
        than the one stored changes nothing."""
        stamp = write_timestamp(author.version)
        batch = self.db.batch()
        batch.add(self.db.prepare(UPSERT_AUTHOR),
                  (author.id, author.username, author.display_name, author.version, stamp))
        if author.username is not None:
            batch.add(self.db.prepare(UPSERT_USERNAME), (author.username, author.id, stamp))
        self.db.execute(batch)

    def record_status(self, status: CelebrityStatus) -> None:
        """Write the author's celebrity status; an older version than the one stored
        changes nothing."""
        self.db.execute(self.db.prepare(UPDATE_STATUS),
                        (write_timestamp(status.version), status.celebrity, status.author_id))


class CachedAuthors:
    """Authors kept in the process for `ttl` seconds in front of another `Authors`.

    Most pages show a few authors again and again; a short TTL saves the store most of
    those reads at the price of a profile change showing up to `ttl` seconds late. Only
    known authors are cached: one the copy does not hold yet is asked for again. The ids
    of usernames are cached the same way (found names only: an unknown name may register
    any moment); a name never changes its id, the TTL only keeps the cache fresh in use.
    """

    def __init__(self, inner: Authors, ttl: float = 10.0, size: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inner, self.ttl, self.size, self.clock = inner, ttl, size, clock
        self._entries: OrderedDict[int, tuple[float, Author]] = OrderedDict()
        self._ids: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, author_ids: Sequence[int]) -> dict[int, Author]:
        """Cached authors, the others from the inner store (then cached)."""
        now = self.clock()
        found: dict[int, Author] = {}
        with self._lock:
            for author_id in author_ids:
                entry = self._entries.get(author_id)
                if entry is not None and entry[0] > now:
                    found[author_id] = entry[1]
        missing = [a for a in author_ids if a not in found]
        CACHE_REQUESTS.labels("author", "hit").inc(len(found))
        CACHE_REQUESTS.labels("author", "miss").inc(len(missing))
        if missing:
            loaded = self.inner.get_many(missing)
            self._put(loaded.values(), now)
            found.update(loaded)
        return found

    def id_by_username(self, username: str) -> int | None:
        """The cached id of `username`, else the inner store's (then cached if found)."""
        now = self.clock()
        with self._lock:
            entry = self._ids.get(username)
        if entry is not None and entry[0] > now:
            CACHE_REQUESTS.labels("username", "hit").inc()
            return entry[1]
        CACHE_REQUESTS.labels("username", "miss").inc()
        found = self.inner.id_by_username(username)
        if found is not None:
            with self._lock:
                self._ids[username] = (now + self.ttl, found)
                self._ids.move_to_end(username)
                while len(self._ids) > self.size:
                    self._ids.popitem(last=False)
        return found

    def record(self, author: Author) -> None:
        """Write through to the inner store; the cache keeps the newer of the two copies."""
        self.inner.record(author)
        with self._lock:
            entry = self._entries.get(author.id)
            if entry is not None and not author.supersedes(entry[1]):
                return
        self._put([author], self.clock())

    def record_status(self, status: CelebrityStatus) -> None:
        """Write through to the inner store and forget the cached copy of the author."""
        self.inner.record_status(status)
        with self._lock:
            self._entries.pop(status.author_id, None)

    def _put(self, authors, now: float) -> None:
        with self._lock:
            for author in authors:
                self._entries[author.id] = (now + self.ttl, author)
                self._entries.move_to_end(author.id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
