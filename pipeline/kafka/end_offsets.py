"""True log-end offsets, also on brokers that under-report them.

Tansu 0.6 (the embedded broker) answers ListOffsets(latest) with the base
offset of the partition's last record batch + 1, not the offset after its
last record. Anything that reads "up to the end" then stops early: Faust's
table recovery would lose the tail of its changelog, lag would be wrong.
:func:`probe_end_offsets` fetches the last batch and returns
``max(reported, last record offset + 1)``: never lower than what the broker
says, so it is safe (and cheap: one fetch per partition) on Apache Kafka too.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from pipeline.kafka.consumer import new_consumer

__all__ = ["probe_end_offsets"]


def probe_end_offsets(
    bootstrap: str, reported: Mapping[Any, int], *, timeout_s: float = 5.0, **client_options: Any
) -> dict[Any, int]:
    """Correct ``reported`` end offsets (``TopicPartition``-like keys with ``topic``/``partition``)."""
    from kafka import TopicPartition

    out = dict(reported)
    todo = {TopicPartition(tp.topic, tp.partition): tp for tp, end in reported.items() if end and end > 0}
    if not todo:
        return out
    # check_crcs off: only offsets are read here, and kafka-python checks CRC-32C in pure Python
    # (no crc32c extension installed), holding the GIL for milliseconds per batch in the worker.
    consumer = new_consumer(bootstrap, client_options, "end-offsets", unique=True, check_crcs=False)
    try:
        consumer.assign(list(todo))
        for tp in todo:
            consumer.seek(tp, reported[todo[tp]] - 1)
        pending = set(todo)
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=200).items():
                if records:
                    key = todo[tp]
                    out[key] = max(out[key], max(r.offset for r in records) + 1)
                    pending.discard(tp)
            for tp in list(pending):  # a partition whose last batch holds only control records
                if consumer.position(tp) >= reported[todo[tp]]:
                    pending.discard(tp)
        return out
    finally:
        consumer.close()
