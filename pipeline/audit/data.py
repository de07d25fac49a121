"""Data and consent figures: consent mix over time, drops, dead letters, erasure receipt times, retention.

Pure functions over plain records read from the topics and Redis by
:mod:`agents.audit`. Results are counts and durations only: a viewer's id is
used to find their latest consent record and never leaves these functions.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pipeline.privacy.consent import Purpose

__all__ = [
    "CONSENT_CLASSES",
    "ConsentEvent",
    "consent_changes_by_day",
    "consent_class",
    "consent_mix",
    "drops_by_reason",
    "percentiles",
    "receipt_seconds",
]

_PURPOSES = tuple(p.value for p in Purpose)
CONSENT_CLASSES = ("personalization", "analytics_only", "none", "withdrawn")
"""A viewer's class by their latest record: personalisation granted; analytics but not
personalisation; neither; or a tombstone (everything withdrawn, e.g. by an erasure)."""


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    """One ``consent`` record: whose (the topic key), when (``updated_at``), what (None: tombstone)."""

    user: str
    at_ms: int
    purposes: Mapping[str, bool] | None


def consent_class(purposes: Mapping[str, bool] | None) -> str:
    if purposes is None:
        return "withdrawn"
    if purposes.get(Purpose.PERSONALIZATION):
        return "personalization"
    if purposes.get(Purpose.ANALYTICS):
        return "analytics_only"
    return "none"


def _day(ms: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ms / 1000))


def _ordered(events: Iterable[ConsentEvent]) -> list[ConsentEvent]:
    """By ``updated_at``; equal times keep log order (as the stream orders consent)."""
    return sorted(events, key=lambda e: e.at_ms)


def consent_mix(events: Iterable[ConsentEvent]) -> dict[str, object]:
    """Viewers by class of their latest record, and per purpose how many hold it granted."""
    latest: dict[str, Mapping[str, bool] | None] = {}
    for e in _ordered(events):
        latest[e.user] = e.purposes
    classes = Counter(consent_class(p) for p in latest.values())
    purposes = {p: sum(1 for v in latest.values() if v and v.get(p)) for p in _PURPOSES}
    return {
        "viewers": len(latest),
        "classes": {c: classes.get(c, 0) for c in CONSENT_CLASSES},
        "purposes": purposes,
    }


def consent_changes_by_day(events: Iterable[ConsentEvent]) -> dict[str, dict[str, object]]:
    """Per UTC day of ``updated_at``: grants and revocations per purpose, withdrawals, and the mix at day end.

    A viewer's first record counts its granted purposes as grants (before it,
    everything is denied by default); a tombstone counts as a withdrawal and
    revokes whatever was granted.
    """
    state: dict[str, Mapping[str, bool] | None] = {}
    days: dict[str, dict[str, object]] = {}
    for e in _ordered(events):
        day = days.setdefault(
            _day(e.at_ms),
            {
                "records": 0,
                "granted": dict.fromkeys(_PURPOSES, 0),
                "revoked": dict.fromkeys(_PURPOSES, 0),
                "withdrawn": 0,
            },
        )
        before = state.get(e.user) or {}
        after = e.purposes or {}
        day["records"] = int(day["records"]) + 1  # type: ignore[call-overload]
        if e.purposes is None:
            day["withdrawn"] = int(day["withdrawn"]) + 1  # type: ignore[call-overload]
        for p in _PURPOSES:
            was, now = bool(before.get(p)), bool(after.get(p))
            if now and not was:
                day["granted"][p] += 1  # type: ignore[index]
            elif was and not now:
                day["revoked"][p] += 1  # type: ignore[index]
        state[e.user] = e.purposes
        classes = Counter(consent_class(v) for v in state.values())
        day["mix"] = {c: classes.get(c, 0) for c in CONSENT_CLASSES}
    return dict(sorted(days.items()))


def drops_by_reason(counters: Mapping[str, int]) -> dict[str, int]:
    """``{reason: n}`` from summed worker counters (keys ``dropped:<reason>``)."""
    out = {k.partition(":")[2]: int(v) for k, v in counters.items() if k.startswith("dropped:")}
    return dict(sorted(out.items()))


def percentiles(values: Sequence[float], qs: Iterable[float] = (50, 95)) -> dict[str, float | None]:
    """Nearest-rank percentiles (``p50``, ``p95``) and ``max``; None when there are no values.

    Nearest rank: the smallest value with at least q% of the values at or below it.
    """
    xs = sorted(values)
    out: dict[str, float | None] = {}
    for q in qs:
        out[f"p{q:g}"] = xs[max(0, math.ceil(q / 100 * len(xs)) - 1)] if xs else None
    out["max"] = xs[-1] if xs else None
    return out


def receipt_seconds(
    requests: Mapping[str, int], receipts: Mapping[str, int]
) -> dict[str, float | int | None]:
    """Erasure requests and request-to-receipt times (seconds) p50/p95/max.

    ``requests``: request id → requested_at (ms); ``receipts``: request id →
    completed_at (ms). ``pending``: requests without a receipt yet.
    """
    seconds = [
        (receipts[r] - requests[r]) / 1000 for r in receipts if r in requests and receipts[r] >= requests[r]
    ]
    return {
        "requests": len(requests),
        "receipts": len(receipts),
        "pending": sum(1 for r in requests if r not in receipts),
        **percentiles(seconds),
    }
