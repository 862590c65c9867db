"""Prometheus metrics of the fanout worker.

Every metric carries labels so that no sample exists before the worker starts: in
multiprocess mode (PROMETHEUS_MULTIPROC_DIR) the worker clears the folder at start, and
only samples created afterwards land in files it then reads back.
"""

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "murmur_fanout_deliveries_total",
    "Home-timeline writes made by fan-out (TweetPosted: one per follower timeline)",
    ["type"])
EVENTS = Counter(
    "murmur_fanout_events_total",
    "Events handled, by type and outcome (processed, dead_lettered; retry_later: a "
    "dependency did not answer; failed: a bug or an answer not agreed; both hold the "
    "partition and are tried again)",
    ["type", "outcome"])
DEAD_LETTERED = Counter(
    "murmur_fanout_dead_lettered_total",
    "Poison messages sent to the dead-letter topic, by reason (invalid: not an event of the "
    "schema; refused: it names a user who does not exist)",
    ["reason"])
HELD_SECONDS = Gauge(
    "murmur_fanout_held_seconds",
    "How long a partition has been held at the same record (an outage or a failure), "
    "as of its latest retry; 0 once a record gets past",
    ["topic", "partition"], multiprocess_mode="max")
BATCH_DURATION = Histogram(
    "murmur_fanout_batch_duration_seconds",
    "Time to process the records one poll returned for one partition",
    ["topic"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
LAG = Histogram(
    "murmur_fanout_lag_seconds",
    "Fan-out lag: from the event's occurred_at to its timeline writes being done",
    ["type"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
COMMITS = Counter(
    "murmur_fanout_commits_total",
    "Offset commits, by result (ok, failed)",
    ["result"])
