"""The privacy stream, Kafka-free: consent, redaction, windows and dead letters per message.

:class:`StreamProcessor` turns each message into :class:`Effects`; the Faust
agent in :mod:`agents` performs them.
"""

from pipeline.stream.control import CONTROL_KEY, Control, decode_control, encode_control, is_control
from pipeline.stream.counters import StreamCounters
from pipeline.stream.partition import (
    PartitionState,
    StateWrite,
    UserEntry,
    collapse_writes,
    entry_key,
    split_key,
)
from pipeline.stream.processor import Effects, StreamConfig, StreamProcessor

__all__ = [
    "CONTROL_KEY",
    "Control",
    "Effects",
    "PartitionState",
    "StateWrite",
    "StreamConfig",
    "StreamCounters",
    "StreamProcessor",
    "UserEntry",
    "collapse_writes",
    "decode_control",
    "encode_control",
    "entry_key",
    "is_control",
    "split_key",
]
