"""The relay's Redis side: leases on outbox buckets and the writers' wake-ups.

Leases (`common.outbox.Leases`): each bucket is leased with SET NX and a TTL, renewed
while the relay lives, so two relays never publish the same rows side by side; if a relay
dies, another picks its buckets up when the lease runs out. Leases rather than "run
exactly one relay": a second replica is then a hot standby, not a source of duplicates.

Wake-ups (`common.outbox.Wakeups`): the timeline service publishes the bucket number on a
pub/sub channel after each write, so the relay usually reacts within a millisecond or two;
a lost nudge costs at most the relay's sweep interval.
"""

from __future__ import annotations

import logging
import time

import redis

log = logging.getLogger("murmur.timeline.outbox")

LEASE_PREFIX = "timeline:outbox-lease"

# For every bucket key: extend our own lease, or take a free one. One round trip for all.
_MAINTAIN_LEASES = """
local owned = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    owned[i] = 1
  elseif redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2]) then
    owned[i] = 1
  else
    owned[i] = 0
  end
end
return owned
"""

_RELEASE_LEASES = """
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 1
"""


class RedisBucketLeases:
    """Leases on outbox buckets, held by one relay at a time."""

    def __init__(self, client: redis.Redis, owner: str, buckets: int, ttl: int,
                 prefix: str = LEASE_PREFIX) -> None:
        self.client, self.owner, self.ttl = client, owner, ttl
        self.keys = [f"{prefix}:{b}" for b in range(buckets)]
        self._maintain = client.register_script(_MAINTAIN_LEASES)
        self._release = client.register_script(_RELEASE_LEASES)

    def maintain(self) -> list[int]:
        """Renew the leases we hold, take free ones; the buckets we own now."""
        flags = self._maintain(keys=self.keys, args=[self.owner, self.ttl * 1000])
        return [b for b, flag in enumerate(flags) if flag]

    def release(self) -> None:
        """Give our buckets up at once, so a standby takes over without waiting."""
        self._release(keys=self.keys, args=[self.owner])


class RedisWakeups:
    """The buckets the timeline service nudged, from Redis pub/sub."""

    def __init__(self, client: redis.Redis, channel: str) -> None:
        self.client, self.channel = client, channel
        self._pubsub = None
        self._down = False

    def wait(self, timeout: float) -> set[int]:
        """Buckets nudged within `timeout` seconds (empty if none, or while Redis is down)."""
        try:
            if self._pubsub is None:
                self._pubsub = self.client.pubsub(ignore_subscribe_messages=True)
                self._pubsub.subscribe(self.channel)
            buckets: set[int] = set()
            message = self._pubsub.get_message(timeout=timeout)
            while message is not None:
                if message.get("type") == "message" and message["data"].isdigit():
                    buckets.add(int(message["data"]))
                message = self._pubsub.get_message(timeout=0)
        except redis.RedisError as exc:
            if not self._down:  # one warning per outage, not one per wait
                log.warning("outbox wake-ups unavailable, sweeping only: %s", exc)
                self._down = True
            self.close()
            time.sleep(timeout)
            return set()
        if self._down:
            log.info("outbox wake-ups available again")
            self._down = False
        return buckets

    def close(self) -> None:
        """Unsubscribe and drop the connection."""
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                pubsub.close()
            except redis.RedisError:
                pass  # closing a broken connection may fail
