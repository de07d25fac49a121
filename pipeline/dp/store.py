"""The ledger on Kafka: the compacted ``dp.ledger`` topic, every record on partition 0.

One partition gives the records one order, which :func:`~pipeline.dp.ledger.admitted`
uses to settle racing releases. The topic is compacted (key: release id) and
never deleted by time: the ledger must outlive every process and Redis.
Records that do not decode are skipped and counted (they cannot be charged,
and must not stop the ledger from being read).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec

from pipeline.dp.ledger import LedgerRecord, decode_record, encode_record
from pipeline.errors import ServiceUnavailable
from pipeline.kafka.consumer import new_consumer
from pipeline.kafka.end_offsets import probe_end_offsets

__all__ = ["LEDGER_PARTITION", "KafkaLedgerStore"]

log = logging.getLogger(__name__)

LEDGER_PARTITION = 0


class KafkaLedgerStore:
    """Reads the whole ledger and appends records, on a real topic.

    Args:
        topic: the full topic name (``settings.topic(Topic.DP_LEDGER)``).
        bootstrap: the brokers.
        producer: a ``kafka.KafkaProducer`` (acks=all).
        client_options: security options for the consumers it creates.
        timeout_s: how long a read or a write may take.
    """

    def __init__(
        self,
        topic: str,
        bootstrap: str,
        producer: Any,
        *,
        client_options: dict[str, Any] | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.topic = topic
        self._bootstrap = bootstrap
        self._producer = producer
        self._options = client_options or {}
        self._timeout_s = timeout_s
        self.skipped = 0

    def read(self) -> list[LedgerRecord]:
        """Every record from the beginning to the current end, in log order."""
        from kafka import TopicPartition

        tp = TopicPartition(self.topic, LEDGER_PARTITION)
        consumer = new_consumer(self._bootstrap, self._options, "dp-ledger", unique=True)
        out: list[LedgerRecord] = []
        try:
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            end = probe_end_offsets(self._bootstrap, consumer.end_offsets([tp]), **self._options)[tp]
            deadline = time.monotonic() + self._timeout_s
            while consumer.position(tp) < end:
                if time.monotonic() > deadline:
                    raise ServiceUnavailable(f"kafka: could not read {self.topic} to its end in time")
                for records in consumer.poll(timeout_ms=200).values():
                    for record in records:
                        if record.value is None:
                            continue
                        try:
                            out.append(decode_record(record.value))
                        except (msgspec.ValidationError, msgspec.DecodeError):
                            self.skipped += 1
                            log.warning(
                                "dp ledger: undecodable record at %s/%d offset %d",
                                tp.topic,
                                tp.partition,
                                record.offset,
                            )
        finally:
            consumer.close()
        return out

    def close(self) -> None:
        """Flush and close the producer."""
        self._producer.close(timeout=10)

    def append(self, record: LedgerRecord) -> int:
        """Write ``record`` (key: its release id) and wait for the broker; returns its offset."""
        from kafka.errors import KafkaError

        try:
            future = self._producer.send(
                self.topic,
                key=record.release_id.encode(),
                value=encode_record(record),
                partition=LEDGER_PARTITION,
            )
            meta = future.get(timeout=self._timeout_s)
        except KafkaError:
            raise ServiceUnavailable(
                f"kafka: the ledger record was not acknowledged on {self.topic}"
            ) from None
        return int(meta.offset)
