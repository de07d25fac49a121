"""The wire contract v1: typed records, fast decoding with reasons, encoding.

Structs in :mod:`~pipeline.wire.inbound` (what producers send) and
:mod:`~pipeline.wire.outbound` (what privrec emits) are the source of truth;
``schemas/*.json`` are generated from them by :mod:`pipeline.wire.jsonschema`.
"""

from pipeline.wire.decode import (
    DEFAULT_CONTENT_ID_PATTERN,
    ENVELOPE_MIXED_USERS,
    FUTURE_EVENT_TIME,
    INVALID_CONTENT_ID,
    INVALID_JSON,
    OUT_OF_RANGE,
    OVERSIZE,
    SCHEMA_VIOLATION,
    TOO_DEEP,
    UNKNOWN_SCHEMA,
    Decoded,
    Reject,
    decode_as,
    decode_consent,
    decode_raw,
)
from pipeline.wire.depth import MAX_JSON_DEPTH
from pipeline.wire.detail import safe_detail
from pipeline.wire.encode import encode
from pipeline.wire.fields import to_epoch_ms
from pipeline.wire.inbound import (
    MAX_BATCH_EVENTS,
    Client,
    ConsentPurposes,
    ConsentRecord,
    PlaybackBatch,
    PlaybackEvent,
)
from pipeline.wire.outbound import (
    DeadLetter,
    DlqSource,
    Interaction,
    Purposes,
    RedactedBatch,
    RedactedEvent,
)

__all__ = [
    "DEFAULT_CONTENT_ID_PATTERN",
    "ENVELOPE_MIXED_USERS",
    "FUTURE_EVENT_TIME",
    "INVALID_CONTENT_ID",
    "INVALID_JSON",
    "MAX_BATCH_EVENTS",
    "MAX_JSON_DEPTH",
    "OUT_OF_RANGE",
    "OVERSIZE",
    "SCHEMA_VIOLATION",
    "TOO_DEEP",
    "UNKNOWN_SCHEMA",
    "Client",
    "ConsentPurposes",
    "ConsentRecord",
    "DeadLetter",
    "Decoded",
    "DlqSource",
    "Interaction",
    "PlaybackBatch",
    "PlaybackEvent",
    "Purposes",
    "RedactedBatch",
    "RedactedEvent",
    "Reject",
    "decode_as",
    "decode_consent",
    "decode_raw",
    "encode",
    "safe_detail",
    "to_epoch_ms",
]
