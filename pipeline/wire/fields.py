"""Constrained field types shared by every wire record.

The constraints live in the type annotations (``msgspec.Meta``) so that one
declaration drives three things at once: fast validation while decoding, the
generated JSON Schema files in ``schemas/``, and the documentation in them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from msgspec import Meta

__all__ = [
    "BEFORE_EPOCH",
    "CONTENT_ID_PATTERN",
    "MAX_COUNT",
    "MAX_DURATION_MS",
    "MAX_EPOCH_MS",
    "MAX_PLAYHEAD_MS",
    "MAX_WINDOW_WATCHED_MS",
    "PLAYHEAD_TOLERANCE_MS",
    "AwareDatetime",
    "ContentId",
    "Count",
    "Country",
    "DeviceClass",
    "DurationMs",
    "EpochMs",
    "EventType",
    "NonNegInt",
    "PlayheadMs",
    "Str128",
    "Text1k",
    "Text4k",
    "Text64",
    "Timestamp",
    "WindowWatchedMs",
    "to_epoch_ms",
]

MAX_DURATION_MS = 24 * 3_600_000
"""Longest title a ``duration_ms`` may describe: 24 h (longer is a broken client or an attack)."""

PLAYHEAD_TOLERANCE_MS = 60_000
"""How far ``position_ms`` and ``watched_ms`` of one event may exceed its ``duration_ms``.

Players report the playhead and the time played since the last event from
their own clock, so a heartbeat or seek near the end may overshoot the
advertised duration a little (rounding, ads, a duration that was itself
rounded). One minute covers that; more is not a real playback.
"""

MAX_PLAYHEAD_MS = MAX_DURATION_MS + PLAYHEAD_TOLERANCE_MS
"""Static bound of ``position_ms``/``watched_ms``; the decoder also checks them against ``duration_ms``."""

MAX_EPOCH_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z, the last instant RFC 3339 can name; fits every int64 column."""

MAX_COUNT = 2**31 - 1
"""Largest count (plays, events) a record carries: fits a signed 32-bit column."""

MAX_WINDOW_WATCHED_MS = 2**31 - 1
"""Cap of a window's summed ``watched_ms`` (about 24.8 days).

A window is an hour by default; no viewer fills 600 such hours. The window
engine saturates its sums here, so a flood of maximal events yields a capped
record rather than an overflow in a consumer's int32/int64 column.
"""

CONTENT_ID_PATTERN = "^[A-Za-z0-9:._-]{1,64}$"
"""Default of setting ``stream.content_id_pattern``: catalogue ids, not free text.

Content ids travel to interactions, Redis, model files and the popular list
every viewer sees, so an e-mail address or phone number must never pass as
one. The decoder applies the configured pattern (this one by default).
"""

Str128 = Annotated[str, Meta(min_length=1, max_length=128)]
"""An identifier: 1 to 128 characters."""

Text64 = Annotated[str, Meta(max_length=64)]
"""A short label (IP address, app version, consent source)."""

Text1k = Annotated[str, Meta(max_length=1024)]
"""A user agent or similar header-sized text."""

Text4k = Annotated[str, Meta(max_length=4096)]
"""Free text a client may send (search query, error message); it never leaves ``playback.raw``."""

NonNegInt = Annotated[int, Meta(ge=0)]
"""A non-negative integer without a physical bound of its own (offsets, partitions)."""

DurationMs = Annotated[
    int, Meta(ge=0, le=MAX_DURATION_MS, description="Length of the title in ms, at most 24 h.")
]
"""``duration_ms`` of a playback event."""

PlayheadMs = Annotated[
    int,
    Meta(
        ge=0,
        le=MAX_PLAYHEAD_MS,
        description="Milliseconds, at most `duration_ms` + 60 s (the decoder checks the pair).",
    ),
]
"""``position_ms`` / ``watched_ms`` of one event: within the title plus a tolerance."""

Count = Annotated[int, Meta(ge=0, le=MAX_COUNT)]
"""A count that fits a signed 32-bit column."""

WindowWatchedMs = Annotated[
    int,
    Meta(ge=0, le=MAX_WINDOW_WATCHED_MS, description="Sum of watched_ms, saturated at 2^31-1."),
]
"""Summed ``watched_ms`` of one window (the window engine saturates it)."""

ContentId = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=128,
        extra_json_schema={"pattern": CONTENT_ID_PATTERN},
        description=(
            "Catalogue id of the title. The pattern is the default of setting "
            "stream.content_id_pattern, which the decoder applies."
        ),
    ),
]
"""A content id: the hard length cap is enforced here, the (configurable) pattern by the decoder."""

EpochMs = Annotated[
    int,
    Meta(ge=0, le=MAX_EPOCH_MS, description="Milliseconds since 1970-01-01T00:00:00Z."),
]
"""An instant as integer epoch milliseconds (the only form we emit)."""

AwareDatetime = Annotated[datetime, Meta(tz=True)]
"""An RFC 3339 timestamp; a missing UTC offset is a schema violation."""

Timestamp = Annotated[
    EpochMs | AwareDatetime,
    Meta(
        description=(
            "Integer epoch milliseconds, or an RFC 3339 string with a UTC "
            "offset ('Z' or '+02:00'). Decoders normalise it to epoch ms."
        )
    ),
]
"""An instant as producers may send it (we accept both forms, emit one)."""

EventType = Literal["play", "heartbeat", "pause", "seek", "stop", "complete"]
DeviceClass = Literal["tv", "mobile", "web", "console", "other"]

Country = Annotated[
    str,
    Meta(pattern="^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code, e.g. 'DE'."),
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
BEFORE_EPOCH = "timestamp is before 1970-01-01T00:00:00Z"
"""Message for the one check msgspec cannot express in a constraint."""


def to_epoch_ms(value: int | datetime) -> int:
    """Return ``value`` as integer epoch milliseconds.

    Integer arithmetic on ``timedelta`` avoids the float rounding of
    ``datetime.timestamp()``; sub-millisecond digits are truncated.

    Raises:
        ValueError: for a naive datetime or an instant before the epoch. The
            message holds no part of the value, so msgspec may surface it.
    """
    if not isinstance(value, datetime):
        return value
    if value.tzinfo is None:
        raise ValueError("timestamp has no UTC offset")
    ms = (value - _EPOCH) // _ONE_MS
    if ms < 0:
        raise ValueError(BEFORE_EPOCH)
    return ms
