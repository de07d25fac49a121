"""Durable window state of one partition, as per-user entries in a changelogged table.

Why per user: an envelope holds one user's events, so one message rewrites one
entry, atomically (one changelog record). Each entry carries

* ``o``: the source offset of the last message applied to it. A message
  replayed after a crash (offset <= ``o``) is skipped for window purposes, so
  no event is counted twice even though the state may have been flushed past
  the last committed offset;
* ``c``: the end of the latest window of this user that was closed and
  emitted. Windows close in end order across the partition, so every window
  ending at or before ``max(c)`` over all users was closed: restoring the
  watermark to at least that value means a closed window is never re-opened
  (no partial or different re-emission), while a window whose closing was
  emitted but whose entry was not yet rewritten is restored and emitted again
  with identical values;
* ``w``: the user's open windows;
* ``f``: the event time of each open window's first event, parallel to ``w``
  (a separate last field so entries written before it existed still decode:
  ``None`` restores each window as first seen at its start). It orders the
  emission of windows closing together, so a restore emits in the same order
  as an uninterrupted run;
* ``wm``/``mt``: the partition's watermark and newest event time when the entry
  was written. Every message rewrites its user's entry, so the newest entry
  carries the partition's progress and no separate per-message "meta" write
  is needed (one changelog record per message, not two).

The agent must emit the closed windows (and wait for the broker's
acknowledgement) *before* writing the entries, in the order returned.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from pipeline.windows import PartitionWindows, WindowEvent, WindowSpec
from pipeline.windows.state import Interaction, PartitionMeta, WindowStateError

__all__ = [
    "META_KEY",
    "PartitionState",
    "StateWrite",
    "UserEntry",
    "collapse_writes",
    "entry_key",
    "split_key",
]

META_KEY = "#meta"


class UserEntry(msgspec.Struct, array_like=True, gc=False):
    """Persisted window state of one user on one partition.

    New fields go last with a default: entries are positional arrays, and a
    changelog holds entries written by older builds.
    """

    o: int = -1
    c: int = -1
    w: list[tuple[str, int, int, int, bool, int]] = []
    wm: int | None = None
    mt: int | None = None
    f: list[int] | None = None

    def open_windows(self) -> Iterator[tuple[str, int, int, int, bool, int, int | None]]:
        """``w``'s windows with their first-event time (None when the entry predates ``f``).

        Raises:
            WindowStateError: ``f`` does not have one time per window.
        """
        if self.f is None:
            return ((*w, None) for w in self.w)
        if len(self.f) != len(self.w):
            raise WindowStateError("window state entry's first event times do not match its windows")
        return ((*w, first) for w, first in zip(self.w, self.f, strict=True))


_entry_encoder = msgspec.json.Encoder()
_entry_decoder = msgspec.json.Decoder(UserEntry)


def entry_key(partition: int, user: str) -> str:
    """Table key of a user's entry (pseudonyms never contain ``/``)."""
    return f"{partition}/{user}"


def split_key(key: str) -> tuple[int, str]:
    partition, _, user = key.partition("/")
    return int(partition), user


@dataclass(frozen=True, slots=True)
class StateWrite:
    """One table write: ``value`` None deletes the key."""

    key: str
    value: bytes | None


def collapse_writes(writes: list[StateWrite]) -> list[StateWrite]:
    """Drop each write that the next write *to the same partition* overwrites (same key).

    For the state writes of several messages performed together. Restoring
    needs every partition's changelog to hold a prefix of the writes in
    processing order at any moment (an entry written for a later message with
    an earlier one's entry missing would restore a watermark under which the
    replayed earlier events count as late). Dropping a write immediately
    superseded within its partition keeps that: every prefix of the result
    leaves each key as the same prefix of the full sequence would. Keeping
    only the last write of each key in general would not.
    """
    out: list[StateWrite | None] = []
    latest: dict[str, int] = {}  # partition prefix of the key -> index in ``out`` of its latest write
    for write in writes:
        partition = write.key.partition("/")[0]
        i = latest.get(partition)
        if i is not None:
            previous = out[i]
            if previous is not None and previous.key == write.key:
                out[i] = None
        latest[partition] = len(out)
        out.append(write)
    return [w for w in out if w is not None]


class PartitionState:
    """The window engine of one partition plus what makes it crash-safe."""

    def __init__(self, partition: int, spec: WindowSpec, engine: PartitionWindows | None = None) -> None:
        self.partition = partition
        self.spec = spec
        self.engine = engine if engine is not None else PartitionWindows(spec)
        self._offsets: dict[str, int] = {}
        self._closed_until: dict[str, int] = {}
        self._open: dict[str, set[tuple[str, int]]] = {}

    # -- restore -------------------------------------------------------------

    @classmethod
    def restore(cls, partition: int, spec: WindowSpec, items: Iterable[tuple[str, bytes]]) -> PartitionState:
        """Rebuild from this partition's table items (``(user or META_KEY, value)``)."""
        meta = None
        windows: list[dict[str, Any]] = []
        offsets: dict[str, int] = {}
        closed: dict[str, int] = {}
        wm: int | None = None
        mt: int | None = None
        for user, raw in items:
            if user == META_KEY:  # written by control markers only
                meta = msgspec.json.decode(raw)
                continue
            entry = _entry_decoder.decode(raw)
            offsets[user], closed[user] = entry.o, entry.c
            if entry.wm is not None and (wm is None or entry.wm > wm):
                wm = entry.wm
            if entry.mt is not None and (mt is None or entry.mt > mt):
                mt = entry.mt
            for content_id, start, watched, plays, completed, events, first_ms in entry.open_windows():
                windows.append(
                    {
                        "user": user,
                        "content_id": content_id,
                        "window_start": start,
                        "watched_ms": watched,
                        "plays": plays,
                        "completed": completed,
                        "events": events,
                        "first_ms": first_ms,
                    }
                )
        floor = max(closed.values(), default=-1)
        if meta is not None:
            wm = max(wm if wm is not None else -1, meta.get("watermark") or -1)
            mt = max(mt if mt is not None else -1, meta.get("max_event_time") or -1)
        if floor >= 0 or wm is not None:
            wm = max(floor, wm if wm is not None else -1)
            mt = max(mt if mt is not None else -1, wm + spec.grace_ms)
            meta = PartitionMeta(spec.size_ms, spec.grace_ms, wm, mt, None, 0, 0).to_state()
        state = cls(partition, spec, PartitionWindows.restore(spec, meta, windows))
        state._offsets, state._closed_until = offsets, closed
        for w in windows:
            state._open.setdefault(w["user"], set()).add((w["content_id"], w["window_start"]))
        return state

    # -- processing ------------------------------------------------------------

    def already_applied(self, user: str, offset: int) -> bool:
        """True when a message at ``offset`` was already folded into ``user``'s windows."""
        return offset <= self._offsets.get(user, -1)

    def add(
        self, user: str, offset: int, events: Sequence[WindowEvent]
    ) -> tuple[list[Interaction], list[StateWrite], int]:
        """Fold one message's events (all of ``user``) into the windows.

        Returns ``(closed windows to emit first, state writes, late events)``.
        """
        result = self.engine.add(events)
        self._offsets[user] = max(offset, self._offsets.get(user, -1))
        touched = {user: None}
        for key in result.dirty:
            self._open.setdefault(key.user, set()).add((key.content_id, key.window_start))
        self._forget_closed(result.closed, touched)
        return list(result.closed), self._writes(touched), result.late

    def close_all(self) -> tuple[list[Interaction], list[StateWrite]]:
        """Close every open window (a ``close_windows`` marker)."""
        result = self.engine.close_all()
        touched: dict[str, None] = {}
        self._forget_closed(result.closed, touched)
        return list(result.closed), self._writes(touched, meta=True)

    def on_idle(self, now_wall_ms: int, idle_close_ms: int) -> tuple[list[Interaction], list[StateWrite]]:
        """Close everything when the partition has been idle long enough (an ``idle`` marker)."""
        result = self.engine.on_idle(now_wall_ms, idle_close_ms)
        touched: dict[str, None] = {}
        self._forget_closed(result.closed, touched)
        return list(result.closed), self._writes(touched, meta=bool(result.closed))

    def purge_user(self, user: str) -> tuple[int, list[StateWrite]]:
        """Drop the user's open windows without emitting (erasure, withdrawn consent)."""
        dropped = self.engine.purge_user(user) if self._open.get(user) else 0
        self._open.pop(user, None)
        return dropped, self._writes({user: None})

    def forget_user(self, user: str) -> list[StateWrite]:
        """Erase every trace of ``user`` here, the entry itself included."""
        self.purge_user(user)
        self._offsets.pop(user, None)
        self._closed_until.pop(user, None)
        return [StateWrite(entry_key(self.partition, user), None)]

    def open_windows_of(self, user: str) -> Iterator[tuple[str, int]]:
        return iter(sorted(self._open.get(user, ())))

    @property
    def users(self) -> int:
        return len(self._offsets)

    # -- internals -------------------------------------------------------------

    def _forget_closed(self, closed: Iterable[Interaction], touched: dict[str, None]) -> None:
        for w in closed:
            opened = self._open.get(w.user)
            if opened is not None:
                opened.discard((w.content_id, w.window_start))
                if not opened:
                    del self._open[w.user]
            if w.window_end > self._closed_until.get(w.user, -1):
                self._closed_until[w.user] = w.window_end
            touched[w.user] = None

    def _writes(self, users: dict[str, None], meta: bool = False) -> list[StateWrite]:
        writes = []
        wm, mt = self.engine.watermark, self.engine.max_event_time
        for user in users:
            windows = []
            firsts = []
            for content_id, start in sorted(self._open.get(user, ())):
                s = self.engine.window_state((user, content_id, start))
                if s is not None:
                    windows.append((content_id, start, s.watched_ms, s.plays, s.completed, s.events))
                    firsts.append(start if s.first_ms is None else s.first_ms)
            entry = UserEntry(
                self._offsets.get(user, -1), self._closed_until.get(user, -1), windows, wm, mt, firsts
            )
            writes.append(StateWrite(entry_key(self.partition, user), _entry_encoder.encode(entry)))
        if meta:  # a marker may move the watermark without touching any user
            writes.append(
                StateWrite(
                    entry_key(self.partition, META_KEY), msgspec.json.encode(self.engine.meta().to_state())
                )
            )
        return writes
