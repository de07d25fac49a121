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
    "AwareDatetime",
    "Country",
    "DeviceClass",
    "EpochMs",
    "EventType",
    "NonNegInt",
    "Str128",
    "Timestamp",
    "to_epoch_ms",
]

Str128 = Annotated[str, Meta(min_length=1, max_length=128)]
"""An identifier: 1 to 128 characters."""

NonNegInt = Annotated[int, Meta(ge=0)]
"""A count or a duration in milliseconds."""

EpochMs = Annotated[int, Meta(ge=0, description="Milliseconds since 1970-01-01T00:00:00Z.")]
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
