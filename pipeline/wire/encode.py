"""Encode wire records to the UTF-8 JSON bytes that go on Kafka.

One module-level encoder is reused for every call: msgspec encoders keep an
internal buffer, so reuse avoids an allocation per record.
"""

from __future__ import annotations

import msgspec

__all__ = ["encode"]

_encoder = msgspec.json.Encoder()


def encode(record: msgspec.Struct) -> bytes:
    """Return ``record`` as compact JSON, its ``schema`` tag first.

    Decoded inbound records encode their timestamps as epoch ms, since
    decoding normalised them.
    """
    return _encoder.encode(record)
