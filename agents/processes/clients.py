"""Kafka clients the command-line tools, benches and demo share: lag reading, receipts, partitions."""

from __future__ import annotations

from typing import Any

from pipeline.kafka.topics import Topic
from pipeline.services.connect import Endpoints, kafka_consumer
from pipeline.settings import Settings

__all__ = ["key_partition", "lag_consumer", "receipt_watcher"]


def lag_consumer(endpoints: Endpoints) -> Any:
    """A group-less consumer for reading offsets and message ages (``privrec lag``, the demo)."""
    return kafka_consumer(endpoints, "lag", request_timeout_ms=int(endpoints.request_timeout_s * 1000) + 1000)


def receipt_watcher(settings: Settings, endpoints: Any) -> Any:
    """A :class:`~pipeline.rights.watch.ReceiptWatcher` on the receipts and erasure-stage topics."""
    from pipeline.rights.watch import ReceiptWatcher

    consumer = kafka_consumer(endpoints, "receipts", unique=True)
    return ReceiptWatcher(
        consumer,
        settings.topic(Topic.RECEIPTS),
        settings.topic(Topic.ERASURE_STAGES),
        settings.partitions,
        bootstrap=endpoints.kafka_bootstrap,
        client_options=endpoints.kafka_options,
    )


def key_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2) gives ``key``: where its producer wrote it."""
    from agents.compat import KafkaPartitioner

    every = list(range(partitions))
    return KafkaPartitioner()(key, every, every)
