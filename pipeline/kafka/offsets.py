"""Consumer-group progress: has a group processed everything up to given offsets?

Used by ``privrec consent --wait`` (the workers' table shows an update once
their group has committed past it: Faust commits only after the changelog is
flushed) and by replays that must apply consent before sending events.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

__all__ = ["committed_offsets", "end_offsets", "send_acked", "wait_committed"]


def end_offsets(consumer: Any, topic: str, partitions: int) -> dict[int, int]:
    """Log-end offset per partition (``consumer`` is a group-less ``KafkaConsumer``)."""
    from kafka import TopicPartition

    tps = [TopicPartition(topic, p) for p in range(partitions)]
    return {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}


def committed_offsets(admin: Any, group: str, topic: str) -> dict[int, int]:
    """Committed offset (next to read) per partition of ``topic`` for ``group``."""
    out: dict[int, int] = {}
    result = admin.list_group_offsets(group)
    if group in result and isinstance(result[group], dict):  # kafka-python 3 answers per group
        result = result[group]
    for tp, meta in result.items():
        if tp.topic == topic and meta.offset is not None and meta.offset >= 0:
            out[tp.partition] = meta.offset
    return out


def wait_committed(
    admin: Any, group: str, topic: str, targets: dict[int, int], timeout_s: float, interval_s: float = 0.25
) -> bool:
    """Wait until ``group`` committed at least ``targets[p]`` on each partition ``p``."""
    wanted = {p: o for p, o in targets.items() if o > 0}
    deadline = time.monotonic() + timeout_s
    while True:
        done = committed_offsets(admin, group, topic)
        if all(done.get(p, 0) >= o for p, o in wanted.items()):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


def send_acked(
    producer: Any,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None]],
    *,
    partition: int | None = None,
    timeout_s: float = 60.0,
) -> dict[int, int]:
    """Send ``(key, value)`` records and wait for the broker's acks.

    Returns the end offset (last acknowledged offset + 1) per partition written:
    what a consumer group must have committed to have processed them all.
    """
    futures = [producer.send(topic, key=k, value=v, partition=partition) for k, v in records]
    producer.flush(timeout=timeout_s)
    ends: dict[int, int] = {}
    for future in futures:
        meta = future.get(timeout=timeout_s)
        ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
    return ends
