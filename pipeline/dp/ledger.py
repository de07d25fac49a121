"""The privacy budget ledger: every release recorded, any release past the day's budget refused.

Pure logic over :class:`LedgerRecord` values in log order; where they are kept
is :mod:`pipeline.dp.store` (the compacted ``dp.ledger`` topic, the source of
truth that survives restarts: the embedded Redis has no persistence).

A release is written twice under one key, its ``release_id``: first
``reserved`` (its ε and δ are charged from then on, before any noise is
drawn), then ``released`` with what was published, or ``aborted`` when the
reservation lost a race (charges nothing). Compaction keeps the last record
per key, so the charge survives it. A reservation never followed by either
(a crash between the two) stays charged: spending budget that was perhaps not
used is safe, the reverse is not.

Concurrent releasers are ordered by the log: :func:`admitted` walks the records
in offset order and admits a reservation only if the day's budget still holds
it there, so of two racing reservations only the first one in the log wins,
whichever process checked first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from pipeline.errors import PrivrecError

__all__ = [
    "LEDGER",
    "BudgetExceeded",
    "LedgerItem",
    "LedgerRecord",
    "admitted",
    "check",
    "decode_record",
    "encode_record",
    "latest_release",
    "releases",
    "spent_by_day",
]

LEDGER = "dp.ledger.v1"
EPSILON_SLACK = 1e-9
"""Relative tolerance of budget comparisons (sums of floats)."""

Status = Literal["reserved", "released", "aborted"]
Day = Annotated[str, Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")]


class LedgerItem(msgspec.Struct, frozen=True, gc=False):
    """One released title and its noisy count (never the true count)."""

    content_id: str
    count: int


class LedgerRecord(msgspec.Struct, tag_field="schema", tag=LEDGER, frozen=True, kw_only=True):
    """A release of one day's trending counts, as the ledger keeps it (key: ``release_id``)."""

    release_id: Annotated[str, Meta(pattern=r"^[A-Za-z0-9._:-]{1,64}$")]
    day: Day
    status: Status
    mechanism: str
    epsilon: Annotated[float, Meta(gt=0)]
    delta: Annotated[float, Meta(ge=0, lt=1)]
    max_titles: Annotated[int, Meta(ge=1)]
    scale: Annotated[float, Meta(gt=0)]
    threshold: int
    at_ms: Annotated[int, Meta(ge=0)]
    items: list[LedgerItem] = []


class BudgetExceeded(PrivrecError):
    """The release would spend more than the day's ε or δ budget; nothing was released."""

    def __init__(self, day: str, spent: float, asked: float, budget: float) -> None:
        self.day, self.spent, self.asked, self.budget = day, spent, asked, budget
        super().__init__(
            f"privacy budget of {day} exhausted: spent epsilon {spent:g} of {budget:g}, "
            f"a release of {asked:g} would exceed it"
        )


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(LedgerRecord)


def encode_record(record: LedgerRecord) -> bytes:
    return _ENCODER.encode(record)


def decode_record(value: bytes) -> LedgerRecord:
    """Raises ``msgspec.ValidationError``/``DecodeError`` on anything but a ``dp.ledger.v1`` record."""
    return _DECODER.decode(value)


def _latest(records: Iterable[LedgerRecord]) -> dict[str, LedgerRecord]:
    """The last record per release id, in order of first appearance."""
    out: dict[str, LedgerRecord] = {}
    for r in records:
        out[r.release_id] = r
    return out


def spent_by_day(records: Iterable[LedgerRecord]) -> dict[str, tuple[float, float]]:
    """(ε, δ) charged per day: every reservation or release not aborted, sorted by day.

    This is the figure the ethics audit reports against ``dp.epsilon_per_day``.
    """
    out: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in _latest(records).values():
        if r.status != "aborted":
            out[r.day][0] += r.epsilon
            out[r.day][1] += r.delta
    return {day: (v[0], v[1]) for day, v in sorted(out.items())}


def releases(records: Iterable[LedgerRecord]) -> list[LedgerRecord]:
    """The completed releases (status ``released``), in log order."""
    return [r for r in _latest(records).values() if r.status == "released"]


def latest_release(records: Iterable[LedgerRecord], day: str | None = None) -> LedgerRecord | None:
    """The last release of ``day``, or of the latest released day when ``day`` is None."""
    done = releases(records)
    if day is not None:
        done = [r for r in done if r.day == day]
    return max(done, key=lambda r: (r.day, r.at_ms), default=None)


def _fits(spent: float, asked: float, budget: float) -> bool:
    return spent + asked <= budget * (1 + EPSILON_SLACK)


def check(
    records: Iterable[LedgerRecord],
    day: str,
    epsilon: float,
    delta: float,
    *,
    epsilon_budget: float,
    delta_budget: float,
) -> None:
    """Raise :class:`BudgetExceeded` unless (``epsilon``, ``delta``) still fits ``day``'s budget."""
    eps_spent, delta_spent = spent_by_day(records).get(day, (0.0, 0.0))
    if not _fits(eps_spent, epsilon, epsilon_budget):
        raise BudgetExceeded(day, eps_spent, epsilon, epsilon_budget)
    if not _fits(delta_spent, delta, delta_budget):
        raise BudgetExceeded(day, eps_spent, epsilon, epsilon_budget)


def admitted(
    records: Sequence[LedgerRecord], release_id: str, *, epsilon_budget: float, delta_budget: float
) -> bool:
    """Whether the reservation ``release_id`` fits its day's budget at its place in the log.

    Records are in log order; earlier reservations (not aborted, judging by the
    last record of each) are charged first.
    """
    final = _latest(records)
    charged: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    seen: set[str] = set()
    for r in records:
        if r.release_id in seen:
            continue
        seen.add(r.release_id)
        if final[r.release_id].status == "aborted" and r.release_id != release_id:
            continue
        eps, dlt = charged[r.day]
        fits = _fits(eps, r.epsilon, epsilon_budget) and _fits(dlt, r.delta, delta_budget)
        if r.release_id == release_id:
            return fits
        if fits:  # a reservation that did not fit was (or will be) aborted by its writer
            charged[r.day][0] += r.epsilon
            charged[r.day][1] += r.delta
    return False
