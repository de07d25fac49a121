"""A naive, obviously-correct model of the window engine, for tests only.

Given one partition's events in arrival order (optionally interleaved with
:data:`CLOSE_ALL` and :class:`Purge` markers), it states what :class:`PartitionWindows` must emit
in total once a final ``close_all()`` follows, and how many events are late.
It shares no code with the engine: the watermark is recomputed from scratch
for every event (quadratic, fine for test-sized streams), windows come from
floor division, and aggregates are computed after grouping, then capped at the
spec's saturation caps (saturating addition of non-negative terms equals the
capped plain sum).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from pipeline.windows.spec import WindowSpec

__all__ = ["CLOSE_ALL", "Purge", "ReferenceResult", "expected_interactions", "reference_run"]


class _CloseAllMarker:
    """Type of :data:`CLOSE_ALL`; a class so the marker has a readable repr."""

    def __repr__(self) -> str:
        return "CLOSE_ALL"


CLOSE_ALL = _CloseAllMarker()
"""Place in an event list where the engine gets ``close_all()``."""


class Purge(NamedTuple):
    """Place in an event list where the engine gets ``purge_user(user)``."""

    user: str


class ReferenceResult(NamedTuple):
    """Everything the engine must emit, plus its drop counters."""

    interactions: list[dict[str, Any]]
    late: int
    invalid: int


_MISSING = object()


def _get(event: Any, name: str) -> Any:
    if isinstance(event, Mapping):
        return event.get(name, _MISSING)
    return getattr(event, name, _MISSING)


def _parse(event: Any) -> tuple[str, str, str, int, int] | None:
    """The event's fields, or ``None`` if the engine must count it invalid."""
    user, content_id, event_type, watched, t = (
        _get(event, n) for n in ("user", "content_id", "event_type", "watched_ms", "event_time")
    )
    if watched is None:
        watched = 0
    for value, kind in ((user, str), (content_id, str), (event_type, str), (watched, int), (t, int)):
        if value is _MISSING or type(value) is not kind:
            return None
    if watched < 0:
        return None
    return user, content_id, event_type, watched, t


def reference_run(items: Iterable[Any], spec: WindowSpec) -> ReferenceResult:
    """Emitted interactions and counters.

    Interactions are ordered by window_end, then the time of the window's
    first accepted event (in arrival order), then user, content_id.
    """
    size, grace = spec.size_ms, spec.grace_ms
    wcap, ccap = spec.watched_cap_ms, spec.count_cap
    valid_times: list[int] = []
    flush_floors: list[int] = []
    accepted: list[tuple[str, str, str, int, int]] = []
    late = invalid = 0
    for item in items:
        candidates = [x - grace for x in valid_times] + flush_floors
        watermark = max(candidates) if candidates else None
        if item is CLOSE_ALL:
            if valid_times:
                flush_floors.append((max(valid_times) // size + 1) * size)
            continue
        if isinstance(item, Purge):
            # windows still open (end above the watermark) vanish unemitted
            accepted = [
                e
                for e in accepted
                if e[0] != item.user or (watermark is not None and (e[4] // size + 1) * size <= watermark)
            ]
            continue
        parsed = _parse(item)
        if parsed is None:
            invalid += 1
            continue
        t = parsed[4]
        window_end = (t // size + 1) * size
        if watermark is not None and window_end <= watermark:
            late += 1
        else:
            accepted.append(parsed)
        valid_times.append(t)

    groups: dict[tuple[str, str, int], list[tuple[str, str, str, int, int]]] = {}
    for e in accepted:
        groups.setdefault((e[0], e[1], (e[4] // size) * size), []).append(e)
    first = {key: evs[0][4] for key, evs in groups.items()}
    out = [
        {
            "user": user,
            "content_id": content_id,
            "window_start": start,
            "window_end": start + size,
            "watched_ms": min(sum(e[3] for e in evs), wcap),
            "plays": min(len([e for e in evs if e[2] == "play"]), ccap),
            "completed": any(e[2] == "complete" for e in evs),
            "events": min(len(evs), ccap),
        }
        for (user, content_id, start), evs in groups.items()
    ]
    out.sort(
        key=lambda r: (
            r["window_end"],
            first[(r["user"], r["content_id"], r["window_start"])],
            r["user"],
            r["content_id"],
        )
    )
    return ReferenceResult(out, late, invalid)


def expected_interactions(items: Iterable[Any], spec: WindowSpec) -> list[dict[str, Any]]:
    """What the engine emits in total for ``items`` followed by ``close_all()``."""
    return reference_run(items, spec).interactions
