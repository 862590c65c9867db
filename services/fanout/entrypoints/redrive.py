"""`python -m fanout.entrypoints.redrive [--dry-run] [--from-beginning]` (`make redrive`):
the dead letters of the fanout group, handled again, each at most once.

It reads the profile's dead-letter topic (`fanout.dlq.v1` with the profile's prefix) in a
consumer group of its own (`FANOUT_REDRIVE_GROUP_ID`, default the fanout group +
`-redrive`) up to the end the topic had when it started, and takes only the dead letters
the fanout group wrote (header `dlq.consumer.group`). Each one is handled with fan-out's
own handlers and ports (`fanout.service_layer.redrive`): replayed, still poison, or
already done (an event id the ledger in Redis says an earlier redrive replayed). After
each dead letter the group commits past it, so the next redrive starts after it; a
replay is marked in the ledger first, so reading the same dead letters again (a crash
before the commit, `--from-beginning`) replays nothing twice.

A dependency that does not answer, or any other failure, stops the redrive at that dead
letter (exit 1) with what it did so far: it is not the dead letter's fault, and the next
redrive starts from it. Run one redrive at a time.

--dry-run lists each dead letter and what would become of it (the schema and the ledger
are checked, nothing is handled, marked or committed). --from-beginning reads the whole
topic again instead of starting after the group's last commit.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any, Callable

from kafka.structs import OffsetAndMetadata, TopicPartition

from common import resilience
from common.service import Service

from fanout.adapters import kafka as kafka_clients
from fanout.bootstrap import bootstrap, policy
from fanout.config import FanoutConfig
from fanout.service_layer.ports import Message, Ports, RedriveLedger
from fanout.service_layer.records import where
from fanout.service_layer.redrive import Handled, Report, Verdict, judge, redrive

log = logging.getLogger("murmur.fanout.redrive")

GROUP_HEADER = "dlq.consumer.group"


class RedriveStopped(Exception):
    """The redrive stopped before the end (a dead letter it could not handle now, or the
    topic not answering); `report` says what it did before."""

    def __init__(self, reason: str, report: Report) -> None:
        super().__init__(reason)
        self.report = report


class _NoDeadLetters:
    """The redrive never dead-letters: a dead letter still poison stays where it is."""

    def send(self, message: Message, error: BaseException, attempts: int) -> None:
        raise RuntimeError("the redrive does not dead-letter")


def run(service: Service[FanoutConfig, Ports], consumer: Any, *, dry_run: bool = False,
        from_beginning: bool = False, out: Callable[[str], None] = print,
        idle_timeout: float = 30.0) -> Report:
    """Handle the group's dead letters up to the topic's current end; the report.

    Raises RedriveStopped (with the report so far) at a dead letter it cannot handle now.
    """
    cfg, ports = service.config, service.ports
    ledger = ports.redriven
    if ledger is None:
        raise ValueError("the redrive needs the ledger port (ports.redriven)")
    topic = cfg.dlq_topic
    partitions = [TopicPartition(topic, p)
                  for p in sorted(consumer.partitions_for_topic(topic) or ())]
    consumer.assign(partitions)
    if from_beginning:
        consumer.seek_to_beginning(*partitions)
    ends = consumer.end_offsets(partitions)
    pending = {tp for tp in partitions if consumer.position(tp) < ends[tp]}
    report = Report()
    last_progress = time.monotonic()
    while pending:
        batch = consumer.poll(timeout_ms=500, max_records=200)
        for tp, records in batch.items():
            for record in records:
                if record.offset >= ends[tp]:
                    break  # dead-lettered after the redrive started: the next one's
                handled = _one(record, cfg, ports, ledger, report, dry_run)
                if handled is not None:
                    out(_line(record, handled, dry_run))
                if not dry_run:
                    consumer.commit({tp: OffsetAndMetadata(record.offset + 1, "", -1)})
        if batch:
            last_progress = time.monotonic()
        elif time.monotonic() - last_progress > idle_timeout:
            behind = ", ".join(sorted(f"{tp.topic}[{tp.partition}]" for tp in pending))
            raise RedriveStopped(f"nothing came from {behind} in {idle_timeout:.0f}s, "
                                 f"short of its end", report)
        pending = {tp for tp in pending if consumer.position(tp) < ends[tp]}
    return report


def _one(record: Message, cfg: FanoutConfig, ports: Ports, ledger: RedriveLedger,
         report: Report, dry_run: bool) -> Handled | None:
    """One dead letter: None if another group wrote it, else what became of it."""
    if kafka_clients.header(record, GROUP_HEADER) != cfg.group_id:
        report.other_groups += 1
        return None
    if dry_run:
        event, handled = judge(record, ledger)
        handled = handled or Handled(event.type if event else "unknown",
                                     event.event_id if event else None, Verdict.REPLAYED)
    else:
        try:
            with resilience.deadline(cfg.record_budget):
                handled = redrive(record, ports, policy(cfg), ledger)
        except Exception as exc:  # noqa: BLE001 - not the dead letter's fault: stop here
            raise RedriveStopped(f"stopped at {where(record)}: {type(exc).__name__}: {exc}",
                                 report) from exc
    report.add(handled)
    return handled


def _line(record: Message, handled: Handled, dry_run: bool) -> str:
    failed = " ".join(filter(None, (kafka_clients.header(record, "dlq.error.class"),
                                    kafka_clients.header(record, "dlq.error.message"))))
    verdict = ("would be replayed" if dry_run and handled.verdict is Verdict.REPLAYED
               else handled.verdict.value)
    detail = f" ({handled.detail})" if handled.detail else ""
    return (f"{where(record)}  {handled.event_type}  {handled.event_id or '-'}  "
            f"{verdict}{detail}  [dead-lettered: {failed or '?'}]")


def summary(report: Report, cfg: FanoutConfig, dry_run: bool) -> list[str]:
    """The report as printed at the end."""
    lines = [f"{report.total} dead letter(s) of group {cfg.group_id} in {cfg.dlq_topic}"
             + (" (dry run: nothing replayed, marked or committed)" if dry_run else "")]
    if report.total:
        lines += ["  " + line for line in report.table()]
    if report.other_groups:
        lines.append(f"{report.other_groups} dead letter(s) of other consumer groups left "
                     f"alone")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Redrive once; 0 when every dead letter up to the end was handled, 1 if stopped."""
    parser = argparse.ArgumentParser(
        prog="python -m fanout.entrypoints.redrive",
        description="Handle the fanout group's dead letters again, each at most once.")
    parser.add_argument("--dry-run", action="store_true",
                        help="list the dead letters and what would become of them")
    parser.add_argument("--from-beginning", action="store_true",
                        help="read the whole dead-letter topic, not only what came since "
                             "the last redrive")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    from fanout import config

    cfg = config.load()
    service = bootstrap(cfg, dead_letters=_NoDeadLetters())
    consumer = kafka_clients.dead_letter_consumer(cfg)
    print(f"Redrive of {cfg.dlq_topic} for group {cfg.group_id} "
          f"(redrive group {cfg.redrive_group_id})")
    try:
        report = run(service, consumer, dry_run=args.dry_run,
                     from_beginning=args.from_beginning)
    except RedriveStopped as exc:
        print("\n".join(summary(exc.report, cfg, args.dry_run)))
        print(f"Stopped: {exc}. Put that right and run the redrive again: it goes on from "
              f"where it stopped.", file=sys.stderr)
        return 1
    finally:
        consumer.close(autocommit=False)
        service.close()
    print("\n".join(summary(report, cfg, args.dry_run)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
