"""Read whole topics from the beginning and know when the reader has caught up.

The trainer keeps its user×item matrix in memory and rebuilds it from the
``interactions`` topic (and the consumption-relevant ``consent``/``erasure``
topics) at start, so it reads every partition from offset 0 with manual
assignment. It still commits its positions under its own group id so that
``privrec lag`` shows how far behind it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from typing import Any

from pipeline.kafka.end_offsets import probe_end_offsets

__all__ = ["TopicTail"]


class TopicTail:
    """A kafka-python consumer over every partition of some topics, from the beginning.

    ``consumer`` is a ``KafkaConsumer`` created with ``enable_auto_commit=False``
    (and a ``group_id`` when commits should be visible); it is passed in.
    """

    def __init__(
        self,
        consumer: Any,
        topics: Iterable[str],
        partitions: int,
        *,
        bootstrap: str,
        client_options: dict[str, Any] | None = None,
    ) -> None:
        from kafka import TopicPartition

        self.consumer = consumer
        self.tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        self._bootstrap = bootstrap
        self._options = client_options or {}
        consumer.assign(self.tps)
        consumer.seek_to_beginning(*self.tps)

    def poll(self, timeout_ms: int = 200, max_records: int | None = None) -> list[Any]:
        """Records of every assigned partition, each partition's in offset order."""
        batch = self.consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        out: list[Any] = []
        for records in batch.values():
            out.extend(records)
        return out

    def end_offsets(self) -> dict[Any, int]:
        reported = self.consumer.end_offsets(self.tps)
        return probe_end_offsets(self._bootstrap, reported, **self._options)

    def lag(self) -> int:
        """Messages between the reader's positions and the true log ends."""
        ends = self.end_offsets()
        return sum(max(0, end - self.consumer.position(tp)) for tp, end in ends.items())

    def read_to_end(
        self,
        handle: Callable[[Any], None],
        timeout_s: float = 300.0,
        *,
        topics: Collection[str] | None = None,
    ) -> int:
        """Feed every record up to the current log end to ``handle``; returns how many.

        With ``topics``, only those topics are read (the others' partitions are
        paused meanwhile and keep their positions).
        """
        ends = {tp: end for tp, end in self.end_offsets().items() if topics is None or tp.topic in topics}
        others = [tp for tp in self.tps if tp not in ends]
        if others:
            self.consumer.pause(*others)
        count = 0
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                for record in self.poll(timeout_ms=200):
                    handle(record)
                    count += 1
                if all(self.consumer.position(tp) >= end for tp, end in ends.items()):
                    return count
                if time.monotonic() > deadline:
                    raise TimeoutError(f"could not read to the log end within {timeout_s:g} s")
        finally:
            if others:
                self.consumer.resume(*others)

    def committed(self) -> dict[tuple[str, int], int]:
        """The group's committed offset per ``(topic, partition)``; empty without a group id."""
        if not self.consumer.config.get("group_id"):
            return {}
        out: dict[tuple[str, int], int] = {}
        for tp in self.tps:
            offset = self.consumer.committed(tp)
            if offset is not None:
                out[(tp.topic, tp.partition)] = int(offset)
        return out

    def commit(self, timeout_ms: int | None = None) -> None:
        """Commit current positions (only meaningful with a group id); ``timeout_ms`` bounds the wait."""
        if self.consumer.config.get("group_id"):
            self.consumer.commit(timeout_ms=timeout_ms)
