"""Assembly of the DP trending release: the ledger on Kafka, the redacted feed, the job.

The continuous trainer steps a :class:`~pipeline.dp.service.TrendingJob` in its
loop (no extra process to run: the trainer already publishes to Redis and
retries when Redis or Kafka are away); ``privrec trending --release`` uses
:func:`release` directly.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pipeline.dp.bounding import Bounder
from pipeline.dp.ledger import LedgerRecord
from pipeline.dp.service import TrendingJob, release_day
from pipeline.dp.source import bounding_key, read_days
from pipeline.dp.store import KafkaLedgerStore
from pipeline.kafka.consumer import BULK_FETCH_BYTES
from pipeline.kafka.topics import Topic
from pipeline.keys import load_keys
from pipeline.services.connect import (
    Endpoints,
    kafka_consumer,
    kafka_producer,
    redis_client,
    resolve,
    topic_tail,
)
from pipeline.serving.layout import Layout
from pipeline.settings import Settings

__all__ = ["ledger_store", "make_trending_job", "redacted_feed", "release"]


def ledger_store(settings: Settings, endpoints: Endpoints, producer: Any | None = None) -> KafkaLedgerStore:
    """The ``dp.ledger`` topic as a ledger store (a producer of its own unless one is given)."""
    producer = producer or kafka_producer(endpoints, client_id="privrec-dp-ledger", linger_ms=0)
    return KafkaLedgerStore(
        settings.topic(Topic.DP_LEDGER),
        endpoints.kafka_bootstrap,
        producer,
        client_options=endpoints.kafka_options,
        timeout_s=max(30.0, endpoints.request_timeout_s),
    )


def redacted_feed(settings: Settings, endpoints: Endpoints) -> Any:
    """A feed reading the whole ``playback.redacted`` topic once per call (a fresh consumer)."""

    def feed(bounder: Bounder, days: Collection[str]) -> tuple[int, int]:

        consumer = kafka_consumer(endpoints, "dp", unique=True, max_partition_fetch_bytes=BULK_FETCH_BYTES)
        try:
            tail = topic_tail(endpoints, consumer, [settings.topic(Topic.REDACTED)], settings.partitions)
            return read_days(bounder, tail.read_to_end, days)
        finally:
            consumer.close()

    return feed


def release(
    settings: Settings, day: str, *, epsilon: float | None = None, endpoints: Endpoints | None = None
) -> LedgerRecord:
    """Release ``day`` now (``privrec trending --release``); raises BudgetExceeded when spent."""
    endpoints = endpoints or resolve(settings)
    store = ledger_store(settings, endpoints)
    redis = redis_client(endpoints)
    try:
        return release_day(
            day,
            cfg=settings.dp,
            store=store,
            feed=redacted_feed(settings, endpoints),
            key=bounding_key(load_keys(settings)),
            redis=redis,
            layout=Layout.from_settings(settings),
            epsilon=epsilon,
        )
    finally:
        store.close()
        redis.close()


def make_trending_job(settings: Settings, endpoints: Endpoints, redis: Any, producer: Any) -> TrendingJob:
    """The continuous trainer's job (it shares the trainer's Redis client and producer)."""
    return TrendingJob(
        cfg=settings.dp,
        store=ledger_store(settings, endpoints, producer),
        feed=redacted_feed(settings, endpoints),
        key=bounding_key(load_keys(settings)),
        redis=redis,
        layout=Layout.from_settings(settings),
    )
