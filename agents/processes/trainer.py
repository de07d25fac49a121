"""The trainer process: its Kafka consumer, tail, producer and Redis client, its metrics hooks."""

from __future__ import annotations

import os
from typing import Any

from pipeline.kafka.consumer import BULK_FETCH_BYTES
from pipeline.keys import pseudonymizer
from pipeline.recs.device import resolve_device
from pipeline.rights.proofs import ProofLedger
from pipeline.services.connect import (
    Endpoints,
    kafka_consumer,
    kafka_producer,
    redis_client,
    resolve,
    topic_tail,
)
from pipeline.settings import Settings

__all__ = [
    "close_trainer",
    "make_trainer",
    "observe_receipt",
    "report_dict",
    "serve_trainer_metrics",
    "trainer_group",
]


def trainer_group(settings: Settings) -> str:
    return f"{settings.app_id}-trainer"


def make_trainer(settings: Settings, endpoints: Endpoints | None = None, *, commit: bool = True) -> Any:
    """A :class:`agents.trainer.Trainer` reading the deployment's topics from the beginning."""

    from agents.trainer import TOPICS as TRAINER_TOPICS
    from agents.trainer import Trainer

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit's advice: ALS threads, not BLAS threads
    resolve_device(settings.trainer.device)  # device=gpu without a GPU: refuse now, not at the first fit
    endpoints = endpoints or resolve(settings)
    consumer = kafka_consumer(
        endpoints,
        "trainer",
        unique=True,
        group_id=trainer_group(settings) if commit else None,
        max_partition_fetch_bytes=BULK_FETCH_BYTES,
    )
    tail = topic_tail(endpoints, consumer, [settings.topic(t) for t in TRAINER_TOPICS], settings.partitions)
    producer = kafka_producer(endpoints, client_id="privrec-trainer")
    trainer = Trainer(settings, tail, redis_client(endpoints), pseudonymizer(settings), producer=producer)
    trainer.on_receipt = ProofLedger(settings.state_dir).receipt  # proofs outlive any broker
    return trainer


def close_trainer(trainer: Any) -> None:
    """Flush what the trainer produced (stage records, receipts) and close its clients."""
    try:
        if trainer.producer is not None:
            trainer.producer.close(timeout=10)
    finally:
        trainer.tail.consumer.close()


def observe_receipt(metrics: Any, receipt: Any) -> None:
    """Erasure durations: request to the end of each stage, and to the receipt."""
    for stage, at in receipt.stages.items():
        metrics.observe_erasure(stage, (at - receipt.requested_at) / 1000)
    metrics.observe_erasure("receipt", (receipt.completed_at - receipt.requested_at) / 1000)


def serve_trainer_metrics(settings: Settings, trainer: Any) -> Any:
    """The continuous trainer's ``/metrics`` (``--once`` exits too soon to be scraped); None when off."""
    from agents.metrics import start_trainer_metrics

    served = start_trainer_metrics(
        settings,
        resolve(settings),
        lambda: trainer.counters,
        lambda: trainer.trending.spent if trainer.trending is not None else {},
    )
    if served is not None:
        trainer.on_report = served.on_report
        ledger = trainer.on_receipt

        def on_receipt(receipt: Any) -> None:
            if ledger is not None:
                ledger(receipt)
            observe_receipt(served.metrics, receipt)

        trainer.on_receipt = on_receipt
    return served


def report_dict(report: Any) -> dict[str, Any]:
    """A :class:`agents.trainer.TrainReport` as JSON-ready fields (`privrec train --json`, the demo)."""
    return {
        "version": report.version,
        "published": report.published,
        "serving": report.serving,
        "reason": report.reason,
        "users": report.users,
        "items": report.items,
        "interactions": report.interactions,
        "metrics": report.metrics,
        "live_ndcg_at_10": report.live_ndcg_at_10,
        "tuning": report.tuning or None,
        "seconds": report.seconds,
    }
