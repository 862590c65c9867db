"""Metrics that several services export under one name, defined once here.

A metric may be registered only once per process, and the test run imports every
service's modules into one process, so a name two services share lives here.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

# Hit ratio of each cache: hit / (hit + miss). A lookup the cache could not answer (its
# store down, its breaker open) counts as a miss.
CACHE_REQUESTS = Counter("murmur_cache_requests_total", "Cache lookups by cache and result",
                         ["cache", "result"])
# With `common.resilience.POOL_IN_USE` and `POOL_SIZE`: how many calls queue for a connection.
POOL_WAITING = Gauge("murmur_pool_waiting", "Calls waiting for a connection of a dependency's pool",
                     ["dependency"], multiprocess_mode="livemax")
# Outbox rows waiting to be published to Kafka, by outbox (both relays export it).
OUTBOX_BACKLOG = Gauge("murmur_outbox_backlog",
                       "Outbox rows waiting to be published to Kafka, by outbox",
                       ["outbox"], multiprocess_mode="livesum")
