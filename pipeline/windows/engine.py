"""The event-time tumbling-window engine for one Kafka partition.

Faust's windowed tables expire by wall clock and their close callbacks are
unreliable (faust-streaming #250, #428), so privrec owns window semantics here
and the agent persists the state this engine exposes. The engine is pure: no
Kafka, no I/O, wall time only through an injectable clock.

Semantics, per partition:

* the **watermark** is ``max(event_time seen) - grace_ms``, advanced per event
  (never per batch), and never moves backwards;
* a window ``[start, end)`` **closes** as soon as ``watermark >= end`` and is
  returned exactly once, then forgotten;
* an event whose window has ``end <= watermark`` on arrival is **late**:
  counted and dropped, so a closed window is never re-opened;
* a window's ``watched_ms`` sum and its ``plays``/``events`` counts
  **saturate** at the spec's caps (by default the bounds of
  ``interaction.v1``), so no stream of events can overflow a consumer's column;
* :meth:`PartitionWindows.close_all` (a control marker) and
  :meth:`PartitionWindows.on_idle` (no events for ``idle_close_ms`` of wall
  clock) flush every open window. They lift the watermark to the end of the
  window holding the newest event seen (at least), not just to that event's
  time: a flushed window must never receive events again, or its key would be
  emitted twice. Consequence: after a flush, events older than that window end
  are late, while a later replay with newer events proceeds normally.

Within one ``window_end`` the closed windows come out in the order their
first events arrived in (each window remembers the event time of the event
that opened it), then by user and content id: the stream carries no finer time
than the window, so emission order is how the trainer learns which titles a
viewer started first within the hour. Interactions are keyed by user, so one
user's windows reach the trainer in this order. Overall, closed windows are
ordered by window_end, then first event time, then user, content_id.

Emission is the agent's job. :meth:`PartitionWindows.add` returns the closed
windows and removes them from the open state in the same call, so the agent
can emit them, delete their state entries and commit offsets in one
transaction; replaying a batch on state restored from before the crash yields
identical records because nothing here depends on wall time except idleness.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from heapq import heapify, heappop, heappush
from typing import Any, Protocol

from pipeline.windows.spec import WindowKey, WindowSpec
from pipeline.windows.state import (
    Interaction,
    PartitionMeta,
    WindowState,
    WindowStateError,
)

__all__ = ["AddResult", "PartitionWindows", "WindowEvent"]

_UNSET = -(1 << 63)
"""Internal watermark / max time before the first event: below any real time."""

_Agg = list[Any]
"""``[watched_ms, plays, completed, events, first_ms]``: a list because it is mutated per event.

``first_ms`` is the event time of the event that opened the window, set once;
it orders the window's emission within its hour.
"""


class WindowEvent(Protocol):
    """The attributes the engine reads from an object-form redacted event (read-only)."""

    @property
    def user(self) -> str: ...
    @property
    def content_id(self) -> str: ...
    @property
    def event_type(self) -> str: ...
    @property
    def watched_ms(self) -> int | None: ...
    @property
    def event_time(self) -> int: ...


@dataclass(frozen=True, slots=True)
class AddResult:
    """What one engine call changed; the agent persists and emits from it.

    Attributes
    ----------
    closed:
        Windows closed by this call, ordered by ``window_end``, then the
        event time of each window's first event, then ``(user,
        content_id)``. Emit each as ``interaction.v1``, in this order, and
        delete its state.
    dirty:
        Still-open windows whose aggregate changed: the only state entries
        to rewrite (read them with :meth:`PartitionWindows.window_state`).
    late:
        Events dropped because their window had already closed.
    invalid:
        Events dropped because a field was missing or mistyped.
    """

    closed: tuple[Interaction, ...] = ()
    dirty: tuple[WindowKey, ...] = ()
    late: int = 0
    invalid: int = 0


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


_IS_MAPPING: dict[type, bool] = {}
"""Per event class: is it a ``Mapping``? (``isinstance`` against an ABC costs a call per event.)"""


def _fields(event: Any) -> tuple[Any, Any, Any, Any, Any]:
    """Read the five fields from a non-dict mapping or an object."""
    cls = type(event)
    is_mapping = _IS_MAPPING.get(cls)
    if is_mapping is None:
        is_mapping = _IS_MAPPING[cls] = isinstance(event, Mapping)
    if is_mapping:
        return (
            event["user"],
            event["content_id"],
            event["event_type"],
            event["watched_ms"],
            event["event_time"],
        )
    return event.user, event.content_id, event.event_type, event.watched_ms, event.event_time


class PartitionWindows:
    """Open windows, watermark and counters of one partition.

    One instance per assigned partition; not thread-safe (a Faust agent
    processes a partition serially).

    Examples
    --------
    >>> w = PartitionWindows(WindowSpec(size_ms=1000, grace_ms=0))
    >>> w.add([{"user": "u", "content_id": "c", "event_type": "play",
    ...         "watched_ms": 5, "event_time": 10}]).closed
    ()
    >>> r = w.add([{"user": "u", "content_id": "c", "event_type": "pause",
    ...             "watched_ms": 0, "event_time": 1000}])
    >>> r.closed[0].watched_ms, r.closed[0].plays, r.closed[0].window_end
    (5, 1, 1000)
    """

    def __init__(self, spec: WindowSpec | None = None, *, clock: Callable[[], int] = _wall_ms) -> None:
        self._spec = spec if spec is not None else WindowSpec()
        self._clock = clock
        self._wm = _UNSET
        self._max_t = _UNSET
        self._by_end: dict[int, dict[tuple[str, str, int], _Agg]] = {}
        self._ends: list[int] = []
        self._last_activity: int | None = None
        self._late_total = 0
        self._invalid_total = 0

    # -- read-only views -------------------------------------------------

    @property
    def spec(self) -> WindowSpec:
        """The geometry this partition cuts windows with."""
        return self._spec

    @property
    def watermark(self) -> int | None:
        """Windows ending at or before this are closed; ``None`` before any event."""
        return None if self._wm == _UNSET else self._wm

    @property
    def max_event_time(self) -> int | None:
        """Newest valid event time seen; ``None`` before any event."""
        return None if self._max_t == _UNSET else self._max_t

    @property
    def open_count(self) -> int:
        """Number of open windows."""
        return sum(len(bucket) for bucket in self._by_end.values())

    @property
    def late_total(self) -> int:
        """Late events dropped on this partition since its state began."""
        return self._late_total

    @property
    def invalid_total(self) -> int:
        """Malformed events dropped on this partition since its state began."""
        return self._invalid_total

    @property
    def last_activity_ms(self) -> int | None:
        """Wall-clock time of the last non-empty batch."""
        return self._last_activity

    # -- the hot path ------------------------------------------------------

    def add(
        self, events: Iterable[Mapping[str, Any] | WindowEvent], now_wall_ms: int | None = None
    ) -> AddResult:
        """Fold a batch into the open windows, advancing the watermark per event.

        ``events`` are redacted events in partition order, as dicts or
        objects with ``user``, ``content_id``, ``event_type``, ``watched_ms``
        (``None`` counts as 0) and ``event_time`` (epoch ms).
        ``now_wall_ms`` stamps idleness; it defaults to the clock.
        """
        size = self._spec.size_ms
        grace = self._spec.grace_ms
        wcap = self._spec.watched_cap_ms
        ccap = self._spec.count_cap
        by_end = self._by_end
        ends = self._ends
        wm = self._wm
        max_t = self._max_t
        closed: list[Interaction] = []
        dirty: dict[tuple[str, str, int], None] = {}
        late = invalid = seen = 0
        if ends and ends[0] <= wm:  # overdue windows restored from state
            self._close_through(wm, closed, dirty)
        try:
            for event in events:
                seen += 1
                try:
                    if type(event) is dict:
                        user = event["user"]
                        content_id = event["content_id"]
                        event_type = event["event_type"]
                        watched = event["watched_ms"]
                        t = event["event_time"]
                    else:
                        user, content_id, event_type, watched, t = _fields(event)
                except (KeyError, AttributeError, TypeError):
                    invalid += 1
                    continue
                if watched is None:
                    watched = 0
                if (
                    type(t) is not int
                    or type(watched) is not int
                    or watched < 0
                    or type(user) is not str
                    or type(content_id) is not str
                    or type(event_type) is not str
                ):
                    invalid += 1
                    continue
                start = t - t % size
                end = start + size
                if end <= wm:
                    late += 1
                    continue
                bucket = by_end.get(end)
                if bucket is None:
                    bucket = by_end[end] = {}
                    heappush(ends, end)
                key = (user, content_id, start)
                agg = bucket.get(key)
                if agg is None:
                    agg = bucket[key] = [0, 0, False, 0, t]
                watched += agg[0]
                agg[0] = watched if watched < wcap else wcap
                if agg[3] < ccap:
                    agg[3] += 1
                if event_type == "play":
                    if agg[1] < ccap:
                        agg[1] += 1
                elif event_type == "complete":
                    agg[2] = True
                dirty[key] = None
                if t > max_t:
                    max_t = t
                    if t - grace > wm:
                        wm = t - grace
                        if ends[0] <= wm:
                            self._close_through(wm, closed, dirty)
        finally:
            self._wm = wm
            self._max_t = max_t
            self._late_total += late
            self._invalid_total += invalid
            if seen:
                self._last_activity = self._clock() if now_wall_ms is None else now_wall_ms
        return AddResult(tuple(closed), tuple(map(WindowKey._make, dirty)), late, invalid)

    def _close_through(self, wm: int, closed: list[Interaction], dirty: dict[Any, None]) -> None:
        """Pop every window ending at or before ``wm``, in emission order.

        Per end: by first event time, then ``(user, content_id)`` (the start
        is the same for every window of one end).
        """
        ends = self._ends
        by_end = self._by_end
        while ends and ends[0] <= wm:
            end = heappop(ends)
            bucket = by_end.pop(end)
            for _, key, agg in sorted([(agg[4], key, agg) for key, agg in bucket.items()]):
                watched, plays, completed, count, _ = agg
                closed.append(Interaction(key[0], key[1], key[2], end, watched, plays, completed, count))
                dirty.pop(key, None)

    # -- flushes and erasure ---------------------------------------------

    def close_all(self) -> AddResult:
        """Close every open window (control marker / end of a finite replay).

        The watermark rises to at least the end of the window holding the
        newest event seen, so nothing flushed here can be re-opened.
        """
        floor = self._wm
        if self._max_t != _UNSET:
            floor = max(floor, self._spec.window_end(self._max_t))
        if self._ends:
            floor = max(floor, max(self._ends))
        self._wm = floor
        closed: list[Interaction] = []
        self._close_through(floor, closed, {})
        return AddResult(closed=tuple(closed))

    def on_idle(self, now_wall_ms: int, idle_close_ms: int) -> AddResult:
        """Flush everything open if no event arrived for ``idle_close_ms``.

        Idle means flush *all*: a quiet partition has no newer events to move
        its watermark, so waiting for them would hold results forever. Events
        arriving later for a flushed window count as late; pick
        ``idle_close_ms`` well above the normal gap between batches.
        """
        if not self._ends:
            return AddResult()
        if self._last_activity is None:  # restored without a timestamp: start timing now
            self._last_activity = now_wall_ms
            return AddResult()
        if now_wall_ms - self._last_activity < idle_close_ms:
            return AddResult()
        return self.close_all()

    def user_keys(self, user: str) -> list[WindowKey]:
        """Open windows of ``user``: the state entries a purge must delete."""
        return sorted(WindowKey._make(k) for b in self._by_end.values() for k in b if k[0] == user)

    def purge_user(self, user: str) -> int:
        """Drop every open window of ``user`` without emitting; return how many.

        For erasure requests and withdrawn personalisation consent. Call
        :meth:`user_keys` first to learn which state entries to delete.
        """
        dropped = 0
        for end in list(self._by_end):
            bucket = self._by_end[end]
            for key in [k for k in bucket if k[0] == user]:
                del bucket[key]
                dropped += 1
            if not bucket:
                del self._by_end[end]
        if dropped:
            self._ends = list(self._by_end)
            heapify(self._ends)
        return dropped

    # -- state -------------------------------------------------------------

    def window_state(self, key: tuple[str, str, int]) -> WindowState | None:
        """The aggregate of one open window, or ``None`` if it is not open."""
        agg = self._by_end.get(key[2] + self._spec.size_ms, {}).get(key)
        if agg is None:
            return None
        return WindowState(key[0], key[1], key[2], agg[0], agg[1], agg[2], agg[3], agg[4])

    def open_windows(self) -> Iterator[WindowState]:
        """Every open window, ordered by ``(window_end, user, content_id)``, with its first event time."""
        for end in sorted(self._by_end):
            bucket = self._by_end[end]
            for key in sorted(bucket):
                w, p, c, n, first = bucket[key]
                yield WindowState(key[0], key[1], key[2], w, p, c, n, first)

    def meta(self) -> PartitionMeta:
        """The per-partition progress to persist beside the window entries."""
        return PartitionMeta(
            size_ms=self._spec.size_ms,
            grace_ms=self._spec.grace_ms,
            watermark=self.watermark,
            max_event_time=self.max_event_time,
            last_activity_ms=self._last_activity,
            late_total=self._late_total,
            invalid_total=self._invalid_total,
        )

    def snapshot(self) -> dict[str, Any]:
        """The whole partition state as one JSON/msgspec-ready dict."""
        return {
            "meta": self.meta().to_state(),
            "windows": [w.to_state() for w in self.open_windows()],
        }

    @classmethod
    def restore(
        cls,
        spec: WindowSpec,
        meta: Mapping[str, Any] | None,
        windows: Iterable[Mapping[str, Any]] = (),
        *,
        clock: Callable[[], int] = _wall_ms,
    ) -> PartitionWindows:
        """Rebuild from persisted meta and window entries (meta ``None``: fresh).

        Raises :class:`WindowStateError` if the state is malformed, holds a
        window twice, or was written under a different spec. Windows already
        past the watermark (closed but not yet deleted when the process died)
        are kept and emitted by the next call, favouring a duplicate over loss.
        Counters above the spec's caps (state written before the caps existed)
        are saturated on the way in; a window without ``first_ms`` (state
        written before it existed) counts as first seen at its start.
        """
        engine = cls(spec, clock=clock)
        if meta is not None:
            m = PartitionMeta.from_state(meta)
            if (m.size_ms, m.grace_ms) != (spec.size_ms, spec.grace_ms):
                raise WindowStateError("persisted window state was written under another spec")
            engine._wm = _UNSET if m.watermark is None else m.watermark
            engine._max_t = _UNSET if m.max_event_time is None else m.max_event_time
            engine._last_activity = m.last_activity_ms
            engine._late_total = m.late_total
            engine._invalid_total = m.invalid_total
        for raw in windows:
            w = WindowState.from_state(raw)
            if w.window_start % spec.size_ms:
                raise WindowStateError("persisted window is not aligned to the spec")
            end = w.window_start + spec.size_ms
            bucket = engine._by_end.get(end)
            if bucket is None:
                bucket = engine._by_end[end] = {}
                heappush(engine._ends, end)
            key = (w.user, w.content_id, w.window_start)
            if key in bucket:
                raise WindowStateError("persisted window state holds a window twice")
            wcap, ccap = spec.watched_cap_ms, spec.count_cap
            first = w.window_start if w.first_ms is None else w.first_ms
            if not w.window_start <= first < end:
                raise WindowStateError("persisted window's first event lies outside it")
            watched, plays, events = min(w.watched_ms, wcap), min(w.plays, ccap), min(w.events, ccap)
            bucket[key] = [watched, plays, w.completed, events, first]
        return engine

    @classmethod
    def from_snapshot(
        cls, spec: WindowSpec, snapshot: Mapping[str, Any], *, clock: Callable[[], int] = _wall_ms
    ) -> PartitionWindows:
        """Rebuild from :meth:`snapshot` output."""
        try:
            meta, windows = snapshot["meta"], snapshot["windows"]
        except (KeyError, TypeError):
            raise WindowStateError("window snapshot lacks 'meta' or 'windows'") from None
        return cls.restore(spec, meta, windows, clock=clock)
