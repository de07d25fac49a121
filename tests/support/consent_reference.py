"""A naive, obviously-correct model of consent over time, for tests only.

It keeps every consent record a user's partition delivered, in arrival order,
and answers from scratch for each question: what was in force at a time is
the last record at or before it when all records since the last tombstone are
sorted by ``(updated_at, offset)``; what is in force now is the last one of
them. It shares no code with :mod:`pipeline.privacy.consent_history` (no
bisect, no bound, no bit encoding, its own decision table).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

__all__ = ["Record", "reference_decision"]

Grants = Mapping[str, bool]


class Record(NamedTuple):
    """One message of the consent topic; ``purposes=None`` is a tombstone."""

    updated_at: int
    offset: int
    purposes: Grants | None


def _live(records: Sequence[Record]) -> list[Record]:
    """The records after the last tombstone, without redeliveries, in (updated_at, offset) order."""
    live: dict[int, Record] = {}
    for r in records:
        if r.purposes is None:
            live = {}
        else:
            live[r.offset] = r
    return sorted(live.values(), key=lambda r: (r.updated_at, r.offset))


def reference_decision(
    records: Sequence[Record], event_time: int, *, gpc: bool, default: Grants | None
) -> tuple[str, dict[str, bool]]:
    """``(action, purposes)`` for an event of ``event_time`` processed after ``records``."""
    live = _live(records)
    if live:
        now: Grants | None = live[-1].purposes
        earlier = [r for r in live if r.updated_at <= event_time]
        then = earlier[-1].purposes if earlier else default
    else:
        now = then = default
    names = ("analytics", "personalization", "advertising")
    granted = {n: bool(now and now[n]) and bool(then and then[n]) for n in names}
    if gpc:
        granted["advertising"] = False
    if not granted["analytics"]:
        return "drop", granted
    if not granted["personalization"]:
        return "analytics_only", granted
    return "personalize", granted
