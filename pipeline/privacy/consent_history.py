"""A user's consent over time: which purposes were granted when, ordered by ``updated_at``.

Consent records can arrive out of order (a CMP retrying an old sync, two
devices, a backfill), so arrival order says nothing about which choice is the
user's latest. The rules:

* **Ordering.** Changes are ordered by the record's ``updated_at``; equal
  times by the consent topic's offset (the later record wins). The record
  ordered last is the consent *in force now*. A record older than the one in
  force is kept in the history (it says what held at its time) but never
  turns anything back on now. A record seen twice (same time and offset: a
  redelivery) changes nothing.
* **At event time.** The purposes in force at time *t* are those of the last
  change at or before *t*. Before the first change the user had no record,
  so the configured default applies, unless older changes were dropped (see
  the bound): then the past is unknown and every purpose counts as denied.
* **Both times.** An event is used for a purpose only if the purpose was
  granted at its ``event_time`` and is granted when it is processed
  (:func:`decide_at`).
* **Bound.** A history keeps the latest :data:`MAX_CHANGES` changes. Dropping
  older ones marks it *incomplete*: events older than the oldest kept change
  are then judged as having no consent at all (deny), never by the default.
* **Tombstones** (null value on the consent topic) are not changes: they
  withdraw everything at processing time and delete the history (an erasure
  relies on that). A record arriving after one starts a new history.

The consent table's value (key: pseudonym) is :func:`encode_history`'s
versioned JSON: ``[2, complete, [updated_at, offset, bits, ...]]`` with
bit *i* of ``bits`` for the *i*-th :class:`~pipeline.privacy.consent.Purpose`
(analytics 1 | personalization 2 | advertising 4). The first
encoding, ``[analytics, personalization, advertising, updated_at]``, still
decodes (as an incomplete one-change history). :func:`decode_history` is the
one decoder: the stream, the trainer and the export all use it.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise

import msgspec

from pipeline.privacy.consent import Decision, Purpose, Purposes, decide

__all__ = [
    "MAX_CHANGES",
    "Change",
    "ConsentHistory",
    "decide_at",
    "decode_history",
    "encode_history",
    "granted_during",
    "purposes_at",
    "record_change",
]

MAX_CHANGES = 16
"""Changes kept per user; older ones are dropped and the history marked incomplete."""

VERSION = 2

_encoder = msgspec.json.Encoder()
_DENY = Purposes()


@dataclass(frozen=True, slots=True)
class Change:
    """One consent record: its ``updated_at`` (epoch ms), topic offset (-1 unknown) and purposes."""

    at_ms: int
    offset: int
    purposes: Purposes

    @property
    def order(self) -> tuple[int, int]:
        return (self.at_ms, self.offset)


@dataclass(frozen=True, slots=True)
class ConsentHistory:
    """A user's changes in ``(updated_at, offset)`` order; never empty.

    ``complete`` is false once older changes were dropped (or their order was
    unknown): before the first kept change, nothing is known.
    """

    changes: tuple[Change, ...]
    complete: bool = True
    times: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "times", tuple(c.at_ms for c in self.changes))

    @property
    def current(self) -> Purposes:
        """The consent in force now: the change ordered last."""
        return self.changes[-1].purposes

    @property
    def latest(self) -> Change:
        return self.changes[-1]

    def epoch(self, t: int) -> int:
        """How many changes took effect at or before ``t`` (equal epochs: equal purposes at ``t``)."""
        return bisect_right(self.times, t)


def record_change(
    history: ConsentHistory | None, change: Change, *, limit: int = MAX_CHANGES
) -> tuple[ConsentHistory, bool]:
    """Put ``change`` into ``history``; returns the new history and whether it is now in force.

    A change already held (same time and offset) returns ``history`` unchanged
    and ``False``, as does one older than the oldest kept change of an
    incomplete history (its time lies in the unknown past).
    """
    if history is None:
        return ConsentHistory((change,)), True
    changes = history.changes
    if any(c.order == change.order for c in changes):
        return history, False
    if not history.complete and change.order < changes[0].order:
        return history, False
    in_force = change.order > changes[-1].order
    merged = sorted((*changes, change), key=lambda c: c.order)
    complete = history.complete
    if len(merged) > limit:
        merged = merged[-limit:]
        complete = False
    return ConsentHistory(tuple(merged), complete), in_force


def purposes_at(history: ConsentHistory | None, t: int) -> Purposes | None:
    """The purposes in force at ``t``; ``None``: no record then (the default applies).

    Before the first kept change of an incomplete history: everything denied.
    """
    if history is None:
        return None
    k = history.epoch(t)
    if k:
        return history.changes[k - 1].purposes
    return None if history.complete else _DENY


def decide_at(
    history: ConsentHistory | None, event_time: int, *, gpc: bool, default: Purposes | None
) -> Decision:
    """What may happen to an event of ``event_time`` processed now (see module rules).

    The purposes used are those granted both now and at ``event_time``; when
    the event time takes away what now allows, the reason is
    ``not_granted_at_event_time``.
    """
    now = decide(history.current if history is not None else None, gpc=gpc, default=default)
    if history is None or now.action == "drop" or event_time >= history.times[-1]:
        return now  # nothing changed since the event (the common case)
    then = purposes_at(history, event_time)
    if then is None:
        then = default if default is not None else _DENY
    both = decide(history.current & then, gpc=gpc, default=default)
    if both.action == now.action:
        return both
    return Decision(both.action, "not_granted_at_event_time", both.purposes)


def granted_during(history: ConsentHistory | None, start: int, end: int) -> bool:
    """Whether analytics and personalization were both in force at some time in ``[start, end)``.

    The time before the first change counts as not granted (no record, or unknown).
    """
    if history is None or end <= start:
        return False
    changes = history.changes
    for i, c in enumerate(changes):
        until = changes[i + 1].at_ms if i + 1 < len(changes) else None
        if until is not None and until <= c.at_ms:
            continue  # superseded at the same instant
        overlaps = c.at_ms < end and (until is None or until > start)
        if overlaps and c.purposes.analytics and c.purposes.personalization:
            return True
    return False


# -- the consent table's value ------------------------------------------------------------------


def _bits(p: Purposes) -> int:
    return sum(1 << i for i, name in enumerate(Purpose) if getattr(p, name.value))


def _purposes(bits: int) -> Purposes:
    return Purposes(*(bool(bits >> i & 1) for i in range(len(Purpose))))


def encode_history(history: ConsentHistory) -> bytes:
    """The consent table's value: ``[2, complete, [updated_at, offset, bits, ...]]``."""
    flat: list[int] = []
    for c in history.changes:
        flat += (c.at_ms, c.offset, _bits(c.purposes))
    return _encoder.encode([VERSION, int(history.complete), flat])


def decode_history(raw: bytes | None) -> ConsentHistory | None:
    """Decode a consent table value (either encoding); ``None`` for a deleted entry.

    Values are cached (a user's events read the same value until it changes;
    histories are immutable, so sharing one is safe).

    Raises:
        ValueError: not a consent table value.
    """
    if raw is None:
        return None
    return _decode(raw)


@lru_cache(maxsize=4096)
def _decode(raw: bytes) -> ConsentHistory:
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise ValueError("consent table value is not JSON") from None
    if not isinstance(value, list) or not value:
        raise ValueError("consent table value is not a list")
    if len(value) == 4 and all(isinstance(v, bool) for v in value[:3]) and _is_int(value[3]):
        a, p, d, at = value  # version 1: the latest record only, its predecessors unknown
        return ConsentHistory((Change(at, -1, Purposes(a, p, d)),), complete=False)
    if len(value) != 3 or value[0] != VERSION or isinstance(value[0], bool):
        raise ValueError("unknown consent table encoding")
    _, complete, flat = value
    if complete not in (0, 1) or not isinstance(flat, list) or not flat or len(flat) % 3:
        raise ValueError("malformed consent history")
    if not all(_is_int(v) for v in flat):
        raise ValueError("malformed consent history")
    changes = tuple(Change(flat[i], flat[i + 1], _purposes(flat[i + 2])) for i in range(0, len(flat), 3))
    if any(a.order >= b.order for a, b in pairwise(changes)):
        raise ValueError("consent history out of order")
    return ConsentHistory(changes, bool(complete))


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
