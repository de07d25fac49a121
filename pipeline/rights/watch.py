"""Follow erasure requests to their receipts (``privrec erase --wait``, ``privrec bench erase``).

A :class:`ReceiptWatcher` is positioned at the current true ends of the
``receipts`` and ``erasure.stages`` topics *before* requests are sent, so it
sees every stage record and receipt written for them, and nothing older.
A record it cannot read is counted in :attr:`ReceiptWatcher.invalid` and
skipped: no record stops the watcher.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from typing import Any

from pipeline.kafka.end_offsets import probe_end_offsets
from pipeline.wire import decode_as
from pipeline.wire.rights import ErasureStage, Receipt

__all__ = ["ReceiptWatcher"]

log = logging.getLogger(__name__)


class ReceiptWatcher:
    """Stage records and receipts of erasure requests, as they arrive.

    ``consumer`` is a kafka-python ``KafkaConsumer`` without a group (it is
    passed in and closed by the caller).
    """

    def __init__(
        self,
        consumer: Any,
        receipts_topic: str,
        stages_topic: str,
        partitions: int,
        *,
        bootstrap: str,
        client_options: dict[str, Any] | None = None,
        clock: Any = time.monotonic,
    ) -> None:
        from kafka import TopicPartition

        self.consumer = consumer
        self.receipts_topic = receipts_topic
        self.clock = clock
        tps = [TopicPartition(t, p) for t in (receipts_topic, stages_topic) for p in range(partitions)]
        consumer.assign(tps)
        ends = probe_end_offsets(bootstrap, consumer.end_offsets(tps), **(client_options or {}))
        for tp in tps:
            consumer.seek(tp, ends.get(tp, 0))
        self.receipts: dict[str, Receipt] = {}
        self.seen_at: dict[str, float] = {}  # request id -> clock() when its receipt was read
        self.stages: dict[str, dict[str, int]] = {}
        self.invalid = 0  # records that could not be read (skipped)

    def poll(self, timeout_ms: int = 200) -> int:
        """Read what arrived; returns how many receipts were new."""
        new = 0
        for records in self.consumer.poll(timeout_ms=timeout_ms).values():
            for r in records:
                try:
                    if r.topic == self.receipts_topic:
                        receipt = decode_as(r.value or b"", Receipt)
                        if receipt.request_id not in self.receipts:
                            self.receipts[receipt.request_id] = receipt
                            self.seen_at[receipt.request_id] = self.clock()
                            new += 1
                    else:
                        stage = decode_as(r.value or b"", ErasureStage)
                        self.stages.setdefault(stage.request_id, {})[stage.stage] = stage.finished_at
                except Exception:  # not ours to judge (the producers validate): count, skip, go on
                    self.invalid += 1
                    log.warning(
                        "receipt watcher: unreadable record at %s[%d]@%d", r.topic, r.partition, r.offset
                    )
        return new

    def wait(self, request_ids: Collection[str], timeout_s: float) -> bool:
        """Poll until every request has its receipt; ``False`` on timeout."""
        deadline = self.clock() + timeout_s
        while not all(r in self.receipts for r in request_ids):
            if self.clock() > deadline:
                return False
            self.poll()
        return True
