"""Values the window engine hands out: closed windows and persistable state.

A closed window is the ``interaction.v1`` record itself
(:class:`pipeline.wire.outbound.Interaction`, re-exported here): the engine
builds it once and the stream encodes it as is.

The Faust agent keeps the engine's state in a changelogged table, one entry
per open window plus one meta entry per partition. Both are plain dicts of
``str``/``int``/``bool``/``None`` so JSON, msgspec or Faust's codecs can carry
them unchanged; ``from_state`` validates them on the way back in because a
changelog may hold values written by an older build.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from pipeline.errors import PrivrecError
from pipeline.windows.spec import WindowKey
from pipeline.wire.outbound import Interaction

__all__ = [
    "STATE_VERSION",
    "Interaction",
    "PartitionMeta",
    "WindowState",
    "WindowStateError",
]

STATE_VERSION = 1
"""Bumped when the persisted meta or window layout changes incompatibly."""


class WindowStateError(PrivrecError):
    """Persisted window state is malformed or was written for another spec."""


def _need(state: Mapping[str, Any], name: str, kind: type, *, nullable: bool = False) -> Any:
    """Fetch ``state[name]`` checked against ``kind`` (exact type, so no bools as ints)."""
    try:
        value = state[name]
    except (KeyError, TypeError):
        raise WindowStateError(f"window state lacks {name!r}") from None
    if value is None and nullable:
        return None
    if type(value) is not kind:
        raise WindowStateError(f"window state field {name!r} is not {kind.__name__}")
    return value


class WindowState(NamedTuple):
    """The persisted aggregate of one open window.

    ``first_ms`` is the event time of the window's first event: it orders
    emission within one window end, so it must survive a restore. ``None``
    (state written before it existed) restores as ``window_start``.
    """

    user: str
    content_id: str
    window_start: int
    watched_ms: int
    plays: int
    completed: bool
    events: int
    first_ms: int | None = None

    @property
    def key(self) -> WindowKey:
        """The window this state belongs to."""
        return WindowKey(self.user, self.content_id, self.window_start)

    def to_state(self) -> dict[str, Any]:
        """A JSON/msgspec-ready dict; ``from_state`` reverses it."""
        return self._asdict()

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> WindowState:
        """Rebuild from ``to_state()`` output, rejecting malformed values."""
        value = cls(
            _need(state, "user", str),
            _need(state, "content_id", str),
            _need(state, "window_start", int),
            _need(state, "watched_ms", int),
            _need(state, "plays", int),
            _need(state, "completed", bool),
            _need(state, "events", int),
            _need(state, "first_ms", int, nullable=True) if "first_ms" in state else None,
        )
        if value.watched_ms < 0 or value.plays < 0 or value.events <= 0:
            raise WindowStateError("window state counters out of range")
        return value


@dataclass(frozen=True, slots=True)
class PartitionMeta:
    """Per-partition progress: what decides lateness and idleness.

    ``watermark`` and ``max_event_time`` are ``None`` until the partition has
    seen an event; ``last_activity_ms`` is wall-clock time of the last batch.
    ``size_ms``/``grace_ms`` are stored so that a restore under a different
    spec fails loudly instead of silently re-cutting windows.
    """

    size_ms: int
    grace_ms: int
    watermark: int | None
    max_event_time: int | None
    last_activity_ms: int | None
    late_total: int
    invalid_total: int

    def to_state(self) -> dict[str, Any]:
        """A JSON/msgspec-ready dict carrying :data:`STATE_VERSION` as ``v``."""
        return {
            "v": STATE_VERSION,
            "size_ms": self.size_ms,
            "grace_ms": self.grace_ms,
            "watermark": self.watermark,
            "max_event_time": self.max_event_time,
            "last_activity_ms": self.last_activity_ms,
            "late_total": self.late_total,
            "invalid_total": self.invalid_total,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> PartitionMeta:
        """Rebuild from ``to_state()`` output, rejecting unknown versions."""
        if _need(state, "v", int) != STATE_VERSION:
            raise WindowStateError("unsupported window meta version")
        return cls(
            size_ms=_need(state, "size_ms", int),
            grace_ms=_need(state, "grace_ms", int),
            watermark=_need(state, "watermark", int, nullable=True),
            max_event_time=_need(state, "max_event_time", int, nullable=True),
            last_activity_ms=_need(state, "last_activity_ms", int, nullable=True),
            late_total=_need(state, "late_total", int),
            invalid_total=_need(state, "invalid_total", int),
        )
