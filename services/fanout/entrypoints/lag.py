"""Consumer lag of the fanout group, exported as `murmur_fanout_consumer_lag`.

Lag per partition = the partition's end offset − the group's committed offset (a partition
the group never committed counts from its first offset). It is read from the brokers
(`adapters.kafka.KafkaOffsets`, an admin client of its own) on a background thread every
few seconds, so it covers every member of the group and does not touch the worker's
consumer, which is not thread-safe.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Mapping

from kafka.structs import TopicPartition
from prometheus_client import Gauge

log = logging.getLogger("murmur.fanout.lag")

CONSUMER_LAG = Gauge(
    "murmur_fanout_consumer_lag",
    "Messages not yet processed by the fanout group: end offset - committed offset",
    ["topic", "partition"], multiprocess_mode="max")


def partition_lag(end: Mapping[TopicPartition, int], committed: Mapping[TopicPartition, int],
                  start: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
    """Lag per partition; without a commit, the lag counts from the partition's start."""
    return {tp: max(0, last - committed.get(tp, start.get(tp, 0))) for tp, last in end.items()}


class LagMonitor:
    """Refreshes the consumer-lag gauge every `interval` seconds on a daemon thread."""

    def __init__(self, offsets: Any, interval: float = 5.0) -> None:
        self.offsets, self.interval = offsets, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="consumer-lag", daemon=True)
        self._failing = False

    def start(self) -> "LagMonitor":
        """Start refreshing; returns self."""
        self._thread.start()
        return self

    def refresh(self) -> dict[TopicPartition, int]:
        """Read the offsets once and set the gauge; returns the lag per partition."""
        lag = partition_lag(*self.offsets.read())
        for tp, value in lag.items():
            CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(value)
        return lag

    def close(self) -> None:
        """Stop refreshing and close the admin client."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 1)
        self.offsets.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - a metric must never stop the worker
                # Logged once per outage, not every few seconds while Kafka is away.
                if not self._failing:
                    log.warning("consumer lag not refreshed: %s: %s", type(exc).__name__, exc)
                self._failing = True
                self.offsets.close()  # a fresh client next time, once Kafka is back
            else:
                self._failing = False
