"""Records privrec itself emits: redacted events, interactions, dead letters.

These are the *trusted* side of the contract, built by our own code. The
redacted records forbid unknown fields: what may leave the privacy boundary is
an allow-list, and a consumer that sees anything extra must fail loudly.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from pipeline.wire.fields import (
    MAX_COUNT,
    ContentId,
    Count,
    Country,
    DeviceClass,
    DurationMs,
    EpochMs,
    EventType,
    NonNegInt,
    PlayheadMs,
    WindowWatchedMs,
)
from pipeline.wire.inbound import MAX_BATCH_EVENTS, ConsentPurposes

__all__ = [
    "DLQ",
    "INTERACTION",
    "MAX_DLQ_FIELDS",
    "REDACTED",
    "REDACTED_BATCH",
    "DeadLetter",
    "DlqSource",
    "Interaction",
    "Purposes",
    "RedactedBatch",
    "RedactedEvent",
]

REDACTED = "playback.redacted.v1"
REDACTED_BATCH = "playback.redacted.batch.v1"
INTERACTION = "interaction.v1"
DLQ = "dlq.v2"

Pseudonym = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=128,
        description="Keyed pseudonym of the user id; never the raw id.",
    ),
]


class Purposes(ConsentPurposes, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """The consent purposes in force when the event was processed."""


class RedactedEvent(
    Struct,
    tag_field="schema",
    tag=REDACTED,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    gc=False,
):
    """A playback event after consent and redaction: nothing else may appear.

    No raw ids, no IP, no user agent, no free text, no session or device id.
    """

    user: Pseudonym
    content_id: ContentId
    event_type: EventType
    position_ms: PlayheadMs
    duration_ms: DurationMs
    watched_ms: PlayheadMs
    event_time: EpochMs
    device_class: DeviceClass
    country: Country
    purposes: Purposes


class RedactedBatch(
    Struct,
    tag_field="schema",
    tag=REDACTED_BATCH,
    frozen=True,
    forbid_unknown_fields=True,
):
    """Redacted events of ONE user (one pseudonym), keyed by the pseudonym."""

    events: Annotated[list[RedactedEvent], Meta(min_length=1, max_length=MAX_BATCH_EVENTS)]


class Interaction(Struct, tag_field="schema", tag=INTERACTION, frozen=True, gc=False):
    """One user x content aggregate over a window: the input of the ALS model.

    Every number is bounded so that a consumer's int32/int64 columns hold it;
    the window engine saturates its sums at these bounds.
    """

    # Also the window engine's closed window (pipeline.windows), built positionally in its hot
    # loop: fields are positional, in this order.
    user: Pseudonym
    content_id: ContentId
    window_start: EpochMs
    window_end: EpochMs
    watched_ms: WindowWatchedMs
    plays: Count
    completed: bool
    events: Annotated[int, Meta(ge=1, le=MAX_COUNT, description="Events folded into this row.")]

    @property
    def key(self) -> tuple[str, str, int]:
        """``(user, content_id, window_start)``: the window's name (a re-emission replaces the row)."""
        return (self.user, self.content_id, self.window_start)


class DlqSource(Struct, frozen=True, kw_only=True, gc=False):
    """Where the dead record was read from, so it can be found and replayed."""

    topic: Annotated[str, Meta(min_length=1)]
    partition: NonNegInt
    offset: NonNegInt


FieldName = Annotated[str, Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,31}(?:\.[A-Za-z_][A-Za-z0-9_]{0,31})?$")]
QuarantineKey = Annotated[
    str,
    Meta(
        pattern="^[0-9a-f]{32}$",
        description="Key of the raw value in the quarantine topic (only with stream.dlq_include_raw).",
    ),
]
MAX_DLQ_FIELDS = 64
"""At most this many field names are listed in a dead letter."""


class DeadLetter(
    Struct,
    tag_field="schema",
    tag=DLQ,
    frozen=True,
    kw_only=True,
    omit_defaults=True,
    forbid_unknown_fields=True,
):
    """A record that could not be processed: why, where, and its shape; never a value.

    An allow-list: nothing the producer sent is copied but the NAMES of its
    fields (identifier-shaped ones; any other name is listed as ``other``).
    The user id appears only as its keyed pseudonym. The raw bytes are never
    here: with ``stream.dlq_include_raw`` on they go to the quarantine topic,
    keyed by ``quarantine``.
    """

    reason: Annotated[
        str,
        Meta(pattern="^[a-z][a-z0-9_]{0,63}$", description="Short code, e.g. 'schema_violation'."),
    ]
    detail: Annotated[
        str, Meta(max_length=256, description="A fixed text for the reason, then the schema path.")
    ]
    path: Annotated[
        str,
        Meta(
            max_length=128,
            pattern=r"^\$(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\]|\[\.\.\.\])*$",
            description="Schema path of the failure, e.g. '$.events[3].position_ms'; '$': the whole value.",
        ),
    ]
    source: DlqSource
    at: Annotated[int, Meta(ge=0, description="Epoch ms of dead-lettering.")]
    value_bytes: Annotated[int, Meta(ge=0, description="Size of the record value in bytes.")] = 0
    events: Annotated[int, Meta(ge=0, description="Events the value held, as far as it parsed.")] = 0
    fields: Annotated[
        list[FieldName],
        Meta(
            max_length=MAX_DLQ_FIELDS,
            description="Names of the fields present (top level and one level down), never values.",
        ),
    ] = []
    pseudonym: Pseudonym | None = None
    quarantine: QuarantineKey | None = None
