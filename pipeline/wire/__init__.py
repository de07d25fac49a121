"""The wire contract v1: typed records, fast decoding with reasons, encoding.

Structs in :mod:`~pipeline.wire.inbound` (what producers send) and
:mod:`~pipeline.wire.outbound` (what privrec emits) are the source of truth;
``schemas/*.json`` are generated from them by :mod:`pipeline.wire.jsonschema`.
"""

from pipeline.wire.decode import (
    ENVELOPE_MIXED_USERS,
    FUTURE_EVENT_TIME,
    INVALID_JSON,
    OVERSIZE,
    SCHEMA_VIOLATION,
    UNKNOWN_SCHEMA,
    Decoded,
    Reject,
    decode_as,
    decode_consent,
    decode_raw,
)
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
    "ENVELOPE_MIXED_USERS",
    "FUTURE_EVENT_TIME",
    "INVALID_JSON",
    "MAX_BATCH_EVENTS",
    "OVERSIZE",
    "SCHEMA_VIOLATION",
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
