"""The way back from the dead-letter topic: each dead letter handled again, once.

`python -m fanout.entrypoints.redrive` (`make redrive`) reads the dead letters of one
fanout group and hands each to `redrive`, which handles it with fan-out's own handlers:

- replayed: it is an event of the schema, and handling it now succeeds (whatever put it
  there, a bug of the old rule or a user that did not exist yet, is over);
- still poison: it still cannot be parsed, breaks the schema, or is refused (it names a
  user who does not exist): it stays in the dead-letter topic, and nothing is written;
- already done: the ledger says an earlier redrive replayed this event id (the same event
  dead-lettered twice, or a redrive that stopped before committing its progress).

A replay is marked in the ledger only after its writes, so at worst a crash in between
replays it once more, and fan-out's writes are idempotent (the same tweet id is held once
in a home timeline). A dependency that does not answer, or any other failure, is not the
dead letter's: it is raised, and the redrive stops without recording the record as done.

Replays come out of their original order: a dead-lettered TweetPosted replayed after the
tweet's TweetDeleted puts a deleted tweet's id into timelines (reads drop it, the cap ages
it out); a UserFollowed replayed after the UserUnfollowed backfills a followee no longer
followed. `--dry-run` lists what would happen first.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum

from common.events import Event, InvalidEvent

from fanout.domain.model import Policy
from fanout.service_layer import handlers
from fanout.service_layer.ports import Message, Ports, RedriveLedger
from fanout.service_layer.records import poison_reason

UNKNOWN = "unknown"  # the type of a dead letter that is not an event at all


class Verdict(str, Enum):
    REPLAYED = "replayed"
    STILL_POISON = "still_poison"
    ALREADY_DONE = "already_done"


@dataclass(frozen=True)
class Handled:
    """What became of one dead letter."""

    event_type: str
    event_id: str | None
    verdict: Verdict
    detail: str = ""


@dataclass
class Report:
    """Dead letters by event type and verdict, and those of other groups left alone."""

    counts: Counter = field(default_factory=Counter)  # (event type, Verdict) -> count
    other_groups: int = 0

    def add(self, handled: Handled) -> None:
        """Count one dead letter of the group."""
        self.counts[(handled.event_type, handled.verdict)] += 1

    def count(self, event_type: str, verdict: Verdict) -> int:
        """How many dead letters of `event_type` got `verdict`."""
        return self.counts[(event_type, verdict)]

    @property
    def total(self) -> int:
        """Dead letters of the group handled."""
        return sum(self.counts.values())

    def table(self) -> list[str]:
        """One line per event type: its count under each verdict."""
        kinds = sorted({kind for kind, _ in self.counts})
        width = max([len("event type"), *map(len, kinds)])
        lines = [f"{'event type':<{width}}  " + "  ".join(f"{v.value:>12}" for v in Verdict)]
        for kind in kinds:
            lines.append(f"{kind:<{width}}  " + "  ".join(
                f"{self.counts[(kind, v)]:>12}" for v in Verdict))
        return lines


def judge(message: Message, ledger: RedriveLedger) -> tuple[Event | None, Handled | None]:
    """The dead letter's event, and its verdict if one can be given without handling it
    (still poison by the schema, already done); no I/O but the ledger."""
    try:
        event = Event.from_json(message.value)
    except InvalidEvent as exc:
        return None, Handled(UNKNOWN, None, Verdict.STILL_POISON, f"invalid: {exc}")
    try:
        handlers.check(event)
    except InvalidEvent as exc:
        return event, Handled(event.type, event.event_id, Verdict.STILL_POISON, f"invalid: {exc}")
    if ledger.is_done(event.event_id):
        return event, Handled(event.type, event.event_id, Verdict.ALREADY_DONE)
    return event, None


def redrive(message: Message, ports: Ports, policy: Policy, ledger: RedriveLedger) -> Handled:
    """Handle one dead letter again, at most once per event id (see the module).

    Raises what is not the dead letter's fault (a dependency unavailable, a bug): the
    caller stops there, leaving the record to the next redrive.
    """
    event, handled = judge(message, ledger)
    if handled is not None or event is None:
        return handled or Handled(UNKNOWN, None, Verdict.STILL_POISON)
    try:
        handlers.handle(event, ports, policy)
    except Exception as exc:
        reason = poison_reason(exc)
        if reason is None:
            raise
        return Handled(event.type, event.event_id, Verdict.STILL_POISON, f"{reason}: {exc}")
    ledger.mark_done(event.event_id)
    return Handled(event.type, event.event_id, Verdict.REPLAYED)
