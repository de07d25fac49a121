"""Records producers send us: ``playback.v1``, its batch envelope, ``consent.v1``.

These are the *untrusted* side of the contract. Unknown extra fields are
tolerated so producers can roll out additive changes first; they are dropped on
decode and therefore never forwarded. The structs are frozen because a decoded
event is evidence of what a producer sent, not a scratch pad.

Timestamps arrive as epoch ms or RFC 3339; ``__post_init__`` normalises them to
integer epoch ms, so after decoding (or constructing) a record its
``event_time`` / ``updated_at`` is always an ``int``. Encoding a decoded record
therefore yields the epoch-ms form.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec
from msgspec import Meta, Struct

from pipeline.wire.fields import (
    ContentId,
    Country,
    DeviceClass,
    DurationMs,
    EventType,
    PlayheadMs,
    Str128,
    Text1k,
    Text4k,
    Text64,
    Timestamp,
    to_epoch_ms,
)

__all__ = [
    "CONSENT",
    "MAX_BATCH_EVENTS",
    "PLAYBACK",
    "PLAYBACK_BATCH",
    "Client",
    "ConsentPurposes",
    "ConsentRecord",
    "PlaybackBatch",
    "PlaybackEvent",
]

PLAYBACK = "playback.v1"
PLAYBACK_BATCH = "playback.batch.v1"
CONSENT = "consent.v1"
MAX_BATCH_EVENTS = 500

_force_setattr = msgspec.structs.force_setattr


class Client(Struct, frozen=True, kw_only=True, gc=False):
    """The client that emitted the event. `ip` and `user_agent` are personal data."""

    ip: Text64
    user_agent: Text1k
    app_version: Text64
    device_class: DeviceClass
    country: Country


class PlaybackEvent(Struct, tag_field="schema", tag=PLAYBACK, frozen=True, kw_only=True, gc=False):
    """One playback event. Topic `playback.raw`, Kafka key = `user_id`.

    Extra properties are tolerated (and never forwarded), so fields can be
    added within v1; none may be removed or renamed. Every number has a
    physical bound; the decoder also checks what one field's bound cannot
    say: `position_ms` and `watched_ms` at most `duration_ms` + 60 s, and
    `content_id` matching the configured pattern.
    """

    event_id: uuid.UUID
    user_id: Str128
    session_id: Str128
    device_id: Str128
    content_id: ContentId
    event_type: EventType
    position_ms: PlayheadMs
    duration_ms: DurationMs
    watched_ms: PlayheadMs
    event_time: Timestamp
    client: Client
    gpc: Annotated[bool, Meta(description="Global Privacy Control signal.")]
    search_query: Text4k | None = None
    error_message: Text4k | None = None

    def __post_init__(self) -> None:
        if self.event_time.__class__ is not int:
            _force_setattr(self, "event_time", to_epoch_ms(self.event_time))

    @property
    def event_time_ms(self) -> int:
        """`event_time` as epoch ms (always an int once constructed)."""
        return self.event_time  # type: ignore[return-value]


class PlaybackBatch(Struct, tag_field="schema", tag=PLAYBACK_BATCH, frozen=True):
    """Up to 500 `playback.v1` events of ONE user. Topic `playback.raw`, key = `user_id`.

    Batching amortises per-message broker overhead; one user per envelope
    keeps the key, partition and consent lookup the same for every event.
    """

    events: Annotated[list[PlaybackEvent], Meta(min_length=1, max_length=MAX_BATCH_EVENTS)]


class ConsentPurposes(Struct, frozen=True, kw_only=True, gc=False):
    """What the user agreed to. Extra purposes are tolerated for additive change."""

    # One field per pipeline.privacy.consent.Purpose, in its order (tests/unit/test_consent.py
    # checks); the redacted records' Purposes inherits them.
    analytics: bool
    personalization: bool
    advertising: bool


class ConsentRecord(Struct, tag_field="schema", tag=CONSENT, frozen=True, kw_only=True, gc=False):
    """The latest consent of one user. Topic `consent` (compacted), key = `user_id`.

    A null Kafka value (tombstone) withdraws everything and lets compaction
    erase the user's history.
    """

    user_id: Str128
    purposes: ConsentPurposes
    updated_at: Timestamp
    source: Annotated[str, Meta(max_length=64, description="Where the choice was made, e.g. 'cmp'.")]

    def __post_init__(self) -> None:
        if self.updated_at.__class__ is not int:
            _force_setattr(self, "updated_at", to_epoch_ms(self.updated_at))

    @property
    def updated_at_ms(self) -> int:
        """`updated_at` as epoch ms (always an int once constructed)."""
        return self.updated_at  # type: ignore[return-value]
