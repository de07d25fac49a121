"""Window geometry: sizes, alignment and the key that names one window.

Windows are tumbling and aligned to the Unix epoch, so a window is fully
described by its start; every partition, process and replay computes the same
boundaries for the same event time without coordination.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from pipeline.errors import ConfigError
from pipeline.wire.fields import MAX_COUNT, MAX_WINDOW_WATCHED_MS

__all__ = [
    "DEFAULT_GRACE_MS",
    "DEFAULT_SIZE_MS",
    "WindowKey",
    "WindowSpec",
]

DEFAULT_SIZE_MS = 3_600_000
"""One hour: the granularity of an ``interaction.v1`` record."""

DEFAULT_GRACE_MS = 600_000
"""Ten minutes of out-of-order tolerance before a window closes."""


class WindowKey(NamedTuple):
    """Names one window of one user on one title.

    A plain tuple underneath, so it hashes and compares equal to
    ``(user, content_id, window_start)`` and serialises as a JSON array.
    """

    user: str
    content_id: str
    window_start: int


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """How events are cut into windows and how long stragglers are awaited.

    Attributes
    ----------
    size_ms:
        Window length; windows are ``[k * size_ms, (k + 1) * size_ms)``.
    grace_ms:
        The watermark trails the newest event time by this much, so an event
        up to ``grace_ms`` older than the newest one still lands in its window.
    watched_cap_ms:
        A window's summed ``watched_ms`` saturates here instead of growing
        without bound (default and maximum: the ``interaction.v1`` bound).
    count_cap:
        ``plays`` and ``events`` of a window saturate here (default and
        maximum: 2^31-1, a signed 32-bit column). Smaller caps exist for tests.
    """

    size_ms: int = DEFAULT_SIZE_MS
    grace_ms: int = DEFAULT_GRACE_MS
    watched_cap_ms: int = MAX_WINDOW_WATCHED_MS
    count_cap: int = MAX_COUNT

    def __post_init__(self) -> None:
        if type(self.size_ms) is not int or self.size_ms <= 0:
            raise ConfigError("windows.size_ms", "must be a positive integer (ms)")
        if type(self.grace_ms) is not int or self.grace_ms < 0:
            raise ConfigError("windows.grace_ms", "must be a non-negative integer (ms)")
        if type(self.watched_cap_ms) is not int or not 0 < self.watched_cap_ms <= MAX_WINDOW_WATCHED_MS:
            raise ConfigError("windows.watched_cap_ms", f"must be in 1..{MAX_WINDOW_WATCHED_MS}")
        if type(self.count_cap) is not int or not 0 < self.count_cap <= MAX_COUNT:
            raise ConfigError("windows.count_cap", f"must be in 1..{MAX_COUNT}")

    def window_start(self, event_time_ms: int) -> int:
        """Start of the window holding ``event_time_ms`` (floor, also below 0)."""
        return event_time_ms - event_time_ms % self.size_ms

    def window_end(self, event_time_ms: int) -> int:
        """Exclusive end of the window holding ``event_time_ms``."""
        return self.window_start(event_time_ms) + self.size_ms
