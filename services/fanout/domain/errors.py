"""How an attempt at an event can fail; the record processor decides what each means for
the event's offset (service_layer/records.py)."""

from __future__ import annotations


class Unavailable(Exception):
    """A dependency did not answer (down, timing out, failing, its breaker open, or the
    record's time ran out): the event is fine, so the same event is tried again later,
    never dead-lettered."""


class Refused(Exception):
    """A dependency answered that this event's request cannot succeed (e.g. the user is
    unknown): asking again will not help, so the event is dead-lettered at once."""


class UnexpectedAnswer(Exception):
    """A dependency answered, but not what was agreed (not JSON, fields missing). Tried
    again a few times like any failure, then dead-lettered: never retried forever."""
