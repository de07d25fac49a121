"""Feed the bounder from ``playback.redacted``: analytics-consented plays of the wanted days.

The redacted stream is the privacy boundary's output: pseudonyms only, and each
record carries the ``purposes`` in force when the event was processed. A play
counts only if ``purposes.analytics`` is true; its window is the UTC day of its
``event_time``. The counts are recomputed from the topic for each release
rather than kept in a store: a restart, a second process or a replay sees the
same records and so the same bounded counts, and nothing beyond the topic's
retention (30 days by default) needs forgetting.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Collection, Iterable
from typing import Any

import msgspec

from pipeline.dp.bounding import Bounder, day_of
from pipeline.privacy.pseudonym import PseudonymKey
from pipeline.wire.outbound import RedactedBatch, RedactedEvent

__all__ = ["bounding_key", "feed", "read_days"]

log = logging.getLogger(__name__)

_DECODER = msgspec.json.Decoder(RedactedEvent | RedactedBatch)
_CONTEXT = b"privrec dp contribution bounding v1"


def bounding_key(keys: Iterable[PseudonymKey]) -> bytes:
    """The secret of the bounding hash, derived from the oldest pseudonym key (domain-separated).

    The oldest key, not the newest: adding a key for rotation must not change
    which titles count for a day already being collected.
    """
    first = next(iter(keys))
    return hmac.new(first.secret, _CONTEXT, hashlib.sha256).digest()


def feed(bounder: Bounder, value: bytes | None, days: Collection[str] | None = None) -> int:
    """Add one ``playback.redacted`` record's analytics plays to ``bounder``; returns plays added.

    Raises ``msgspec.ValidationError``/``DecodeError`` for a record that is not redacted output.
    """
    if value is None:
        return 0
    record = _DECODER.decode(value)
    events = record.events if isinstance(record, RedactedBatch) else [record]
    added = 0
    for ev in events:
        if not ev.purposes.analytics:
            continue
        day = day_of(ev.event_time)
        if days is not None and day not in days:
            continue
        bounder.add(day, ev.user, ev.content_id)
        added += 1
    return added


def read_days(
    bounder: Bounder,
    read_to_end: Callable[[Callable[[Any], None]], int],
    days: Collection[str] | None = None,
) -> tuple[int, int]:
    """Feed every record ``read_to_end`` yields (e.g. ``TopicTail.read_to_end``); (plays, skipped)."""
    plays = skipped = 0

    def handle(record: Any) -> None:
        nonlocal plays, skipped
        try:
            plays += feed(bounder, record.value, days)
        except (msgspec.ValidationError, msgspec.DecodeError):
            skipped += 1

    read_to_end(handle)
    if skipped:
        log.warning("dp: %d undecodable records skipped on playback.redacted", skipped)
    return plays, skipped
