"""How an attempt at an event can fail; the record processor decides what each means for
the event's offset (service_layer/records.py).

Only the event itself can make it poison: `common.events.InvalidEvent` (it cannot be
parsed, or breaks the event schema) and `Refused` (it names someone who does not exist).
Every other failure lies with a dependency or with fan-out's own code, and the event
waits, its partition held, until that is put right: nothing is skipped for it.
"""

from __future__ import annotations


class Unavailable(Exception):
    """A dependency did not answer (down, timing out, failing, its breaker open, or the
    record's time ran out): the event is fine, so the same event is tried again later,
    never dead-lettered."""


class Refused(Exception):
    """A dependency answered that what the event names does not exist (404 or 410 for the
    user or author id it carries). Ids are issued once by users and never reused, and
    accounts are never deleted, so no retry and no deploy makes that user exist: the
    event is about data from elsewhere (a restored or reset database, another
    environment's topic), and it is dead-lettered at once."""


class UnexpectedAnswer(Exception):
    """A dependency answered, but not as agreed: a body that is not the agreed JSON, or a
    refusal other than "not found" (400, 401, 403, 409, 422 ...). Fan-out and the
    dependency disagree (a deploy or a configuration is wrong), which the event can do
    nothing about: it waits, its partition held, and is tried again until they agree."""
