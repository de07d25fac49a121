"""A Kafka record as privrec's readers see one (kafka-python's ``ConsumerRecord`` has these fields)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Rec"]


@dataclass(frozen=True)
class Rec:
    """Satisfies :class:`pipeline.rights.export.LogRecord`; built by tests without a broker."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
