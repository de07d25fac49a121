"""Kafka clients the command-line tools, benches and demo share: lag reading, receipts, partitions."""

from __future__ import annotations

from typing import Any

from pipeline.errors import ServiceUnavailable
from pipeline.services.connect import Endpoints
from pipeline.settings import Settings

__all__ = ["key_partition", "lag_consumer", "receipt_watcher"]


def lag_consumer(endpoints: Endpoints) -> Any:
    """A group-less consumer for reading offsets and message ages (``privrec lag``, the demo)."""
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    try:
        return KafkaConsumer(
            bootstrap_servers=endpoints.kafka_bootstrap,
            client_id="privrec-lag",
            enable_auto_commit=False,
            request_timeout_ms=int(endpoints.request_timeout_s * 1000) + 1000,
            **endpoints.kafka_options,
        )
    except (KafkaError, OSError):
        raise ServiceUnavailable(
            f"kafka.bootstrap_servers (PRIVREC_KAFKA__BOOTSTRAP_SERVERS): no broker answered "
            f"at {endpoints.kafka_bootstrap}"
        ) from None


def receipt_watcher(settings: Settings, endpoints: Any) -> Any:
    """A :class:`~pipeline.rights.watch.ReceiptWatcher` on the receipts and erasure-stage topics."""
    from kafka import KafkaConsumer

    from pipeline.rights.watch import ReceiptWatcher

    consumer = KafkaConsumer(
        bootstrap_servers=endpoints.kafka_bootstrap, enable_auto_commit=False, **endpoints.kafka_options
    )
    return ReceiptWatcher(
        consumer,
        settings.topic("receipts"),
        settings.topic("erasure.stages"),
        settings.partitions,
        bootstrap=endpoints.kafka_bootstrap,
        client_options=endpoints.kafka_options,
    )


def key_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2) gives ``key``: where its producer wrote it."""
    from agents.compat import KafkaPartitioner

    every = list(range(partitions))
    return KafkaPartitioner()(key, every, every)
