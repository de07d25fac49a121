"""``privrec train``: fit ALS on the interactions topic and publish recommendations to Redis."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import uuid
from typing import Any

from agents.cli._output import print_json
from pipeline.connect import Endpoints, kafka_producer, redis_client, resolve
from pipeline.keys import pseudonymizer
from pipeline.settings import Settings

__all__ = ["make_trainer", "register"]

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    p = sub.add_parser("train", help="train ALS on the interactions and publish recommendations")
    p.add_argument("--once", action="store_true", help="train on everything available, publish and exit")
    p.add_argument("--force", action="store_true", help="publish even when the quality gate refuses")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_train)


def trainer_group(settings: Settings) -> str:
    return f"{settings.app_id}-trainer"


def make_trainer(settings: Settings, endpoints: Endpoints | None = None, *, commit: bool = True) -> Any:
    """A :class:`agents.trainer.Trainer` reading the deployment's topics from the beginning."""
    from kafka import KafkaConsumer

    from agents.trainer import TOPICS as TRAINER_TOPICS
    from agents.trainer import Trainer
    from pipeline.tail import TopicTail

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit's advice: ALS threads, not BLAS threads
    endpoints = endpoints or resolve(settings)
    consumer = KafkaConsumer(
        bootstrap_servers=endpoints.kafka_bootstrap,
        group_id=trainer_group(settings) if commit else None,
        client_id=f"privrec-trainer-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        **endpoints.kafka_options,
    )
    tail = TopicTail(
        consumer,
        [settings.topic(t) for t in TRAINER_TOPICS],
        settings.partitions,
        bootstrap=endpoints.kafka_bootstrap,
        client_options=endpoints.kafka_options,
    )
    producer = kafka_producer(endpoints, client_id="privrec-trainer")
    return Trainer(settings, tail, redis_client(endpoints), pseudonymizer(settings), producer=producer)


def close_trainer(trainer: Any) -> None:
    """Flush what the trainer produced (stage records, receipts) and close its clients."""
    try:
        if trainer.producer is not None:
            trainer.producer.close(timeout=10)
    finally:
        trainer.tail.consumer.close()


def report_dict(report: Any) -> dict[str, Any]:
    return {
        "version": report.version,
        "published": report.published,
        "reason": report.reason,
        "users": report.users,
        "items": report.items,
        "interactions": report.interactions,
        "metrics": report.metrics,
        "live_ndcg_at_10": report.live_ndcg_at_10,
        "seconds": report.seconds,
    }


def cmd_train(settings: Settings, args: argparse.Namespace) -> int:
    trainer = make_trainer(settings)
    try:
        if args.once:
            trainer.catch_up()
            trainer.tail.commit()
            report = trainer.train_and_publish(force=args.force)
            trainer.finish_erasures()
            out = report_dict(report) | {"counters": trainer.counters}
            if args.json:
                print_json(out)
            else:
                print_summary(out)
            return 0 if report.published else 3
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        served = serve_trainer_metrics(settings, trainer)
        from agents.trending import make_trending_job

        trainer.trending = make_trending_job(settings, resolve(settings), trainer.redis, trainer.producer)
        try:
            trainer.run(stop)
        finally:
            if served is not None:
                served.close()
        return 0
    finally:
        close_trainer(trainer)


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
        trainer.on_receipt = lambda r: observe_receipt(served.metrics, r)
    return served


def print_summary(out: dict[str, Any]) -> None:
    m = out["metrics"]
    state = "published" if out["published"] else "NOT published"
    print(
        f"model {out['version'] or '-'} {state}: {out['users']:,} users x {out['items']:,} titles, "
        f"{out['interactions']:,} interactions; holdout NDCG@10 {m.get('ndcg_at_10', float('nan')):.4f}, "
        f"precision@10 {m.get('precision_at_10', float('nan')):.4f}"
    )
    if out["reason"]:
        print(f"quality gate: {out['reason']}")
