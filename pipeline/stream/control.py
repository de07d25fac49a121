"""Control markers on ``playback.raw``: ordered with the events they follow.

``privrec windows close`` writes one ``close_windows`` marker to every partition
after the events it must follow; a worker's idle timer writes ``idle`` markers
to its own quiet partitions. Because a marker travels in the partition's own
order, everything produced before it has been processed when it takes effect,
and all state changes it causes happen inside stream processing (Faust tables
can only be written there).
"""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ["CONTROL_KEY", "CONTROL_PREFIX", "Control", "decode_control", "encode_control", "is_control"]

CONTROL = "control.v1"
CONTROL_KEY = b"\x00privrec-control"
CONTROL_PREFIX = b'{"schema":"control.v1"'


class Control(msgspec.Struct, tag_field="schema", tag=CONTROL, frozen=True, kw_only=True):
    """A pipeline instruction; never user data."""

    command: Literal["close_windows", "idle"]
    id: str
    at: int


_decoder = msgspec.json.Decoder(Control)
_encoder = msgspec.json.Encoder()


def is_control(key: bytes | None, value: bytes | None) -> bool:
    """Cheap test run on every message before any decoding."""
    return key == CONTROL_KEY and value is not None and value.startswith(CONTROL_PREFIX)


def decode_control(value: bytes) -> Control:
    return _decoder.decode(value)


def encode_control(control: Control) -> bytes:
    return _encoder.encode(control)
