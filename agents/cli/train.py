"""``privrec train``: fit ALS on the interactions topic and publish recommendations to Redis."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

from agents.cli._output import Progress, print_json
from agents.processes.trainer import close_trainer, make_trainer, report_dict, serve_trainer_metrics
from agents.processes.watchdog import arm_stop_watchdog
from pipeline.services.connect import resolve
from pipeline.settings import Settings

__all__ = ["register", "report_dict"]

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    p = sub.add_parser("train", help="train ALS on the interactions and publish recommendations")
    p.add_argument("--once", action="store_true", help="train on everything available, publish and exit")
    p.add_argument("--force", action="store_true", help="publish even when the quality gate refuses")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_train)


def cmd_train(settings: Settings, args: argparse.Namespace) -> int:
    trainer = make_trainer(settings)
    try:
        if args.once:
            # the steps, not the ALS iterations: implicit's own bar would write to a redirected stderr
            with Progress(3, "train: reading interactions", False if args.json else None, "steps") as bar:
                trainer.catch_up()
                trainer.tail.commit()
                bar.update(1, label="train: fitting and publishing")
                report = trainer.train_and_publish(force=args.force)
                bar.update(2, label="train: finishing erasures")
                trainer.finish_erasures()
                bar.update(3, label="train: done")
            out = report_dict(report) | {"counters": trainer.counters}
            if args.json:
                print_json(out)
            else:
                print_summary(out)
            return 0 if report.published else 3
        stop = threading.Event()

        def on_signal(*_: Any) -> None:
            stop.set()
            arm_stop_watchdog("trainer")  # closing clients must not hang while the broker is away

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
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
