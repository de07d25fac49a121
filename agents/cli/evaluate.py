"""``privrec eval``: offline quality of the *whole* pipeline against direct ALS, in one run.

Per user, the newest 20% of ratings (by time) are held out. The rest is
replayed as playback sessions through the real workers (everyone consenting),
windowed, trained on and published to Redis; the recommendations are read back
through the :class:`~pipeline.serving.reader.Reader` and scored against the
held-out titles. In the same run, on the same split, the baselines of
:mod:`pipeline.recs.compare` (popularity, ItemKNN-BM25, EASE, textbook ALS
and a grid-tuned ALS) are fitted directly on the raw training ratings;
``ratio`` is against textbook ALS (64 factors, regularisation 0.05, 15
iterations), ``ratio_vs_best`` against the strongest of them. The run uses
its own topic prefix and app id, so it never mixes with other data on the
same services.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agents.cli import services
from agents.cli._output import Progress, print_json
from pipeline.embedded import EmbeddedServices
from pipeline.settings import Settings
from pipeline.sources.ratings import FORMATS

__all__ = ["register", "run_eval"]

#: Heartbeats every 15 min instead of 5 keep ML-100k's replay near 300k events;
#: watch time per session (what the model sees) does not depend on it.
EVAL_HEARTBEAT_MS = 900_000


def register(sub: Any) -> None:
    p = sub.add_parser("eval", help="precision@10 / NDCG@10 of the full pipeline vs direct ALS")
    p.add_argument("--dataset", type=Path, required=True, help="MovieLens folder/file or a csv")
    p.add_argument(
        "--format",
        default="movielens",
        choices=list(FORMATS),
        help="interactions: a log user_id,content_id,timestamp[,weight] (plays, listens, clicks)",
    )
    p.add_argument("--holdout", type=float, default=0.2, help="newest share of each user's ratings held out")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--rerank",
        choices=["xquad"],
        help="also read through this read-time re-rank and report the trade-off",
    )
    p.add_argument(
        "--rerank-lambda",
        type=float,
        nargs="+",
        default=None,
        help="one or more λ (default: serving.rerank_lambda)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_eval)


@contextlib.contextmanager
def embedded_services(settings: Settings, args: argparse.Namespace) -> Iterator[None]:
    """The embedded broker and Redis for the duration (stopped after, if started here)."""
    embedded = settings.kafka.embedded or settings.redis.embedded
    records = EmbeddedServices(settings.state_dir).records().values()
    started_here = embedded and not any(r.alive() for r in records)
    if embedded:
        with contextlib.redirect_stdout(io.StringIO()):
            services.cmd_up(settings, args)
    try:
        yield
    finally:
        if started_here:
            with contextlib.redirect_stdout(io.StringIO()):
                services.cmd_down(settings, args)


def cmd_eval(settings: Settings, args: argparse.Namespace) -> int:
    with embedded_services(settings, args):
        result = run_eval(
            settings,
            args.dataset,
            args.format,
            holdout=args.holdout,
            workers=args.workers,
            seed=args.seed,
            progress=not args.json,
            rerank=getattr(args, "rerank", None),
            rerank_lambda=getattr(args, "rerank_lambda", None),
        )
    if args.json:
        print_json(result)
    else:
        print(
            f"pipeline   precision@10 {result['precision_at_10']:.4f}  NDCG@10 {result['ndcg_at_10']:.4f}\n"
            f"direct ALS precision@10 {result['baseline_precision_at_10']:.4f}  "
            f"NDCG@10 {result['baseline_ndcg_at_10']:.4f}\n"
            f"ratio (NDCG pipeline / direct) {result['ratio']:.3f} over {result['users_evaluated']:,} users "
            f"({result['events']:,} events replayed, {result['windows']:,} windows) in {result['seconds']} s"
        )
        for name, t in result.get("rerank", {}).items():
            print(
                f"rerank {name:<8} NDCG@10 {t['ndcg_at_10']:.4f}  coverage@10 {t['coverage_at_10']:.4f}  "
                f"tail share {t['tail_share']:.4f}  ARP {t['arp']:.1f}"
            )
    return 0


def run_eval(
    settings: Settings,
    dataset: Path,
    fmt: str,
    *,
    holdout: float = 0.2,
    workers: int = 1,
    seed: int = 7,
    progress: bool = False,
    rerank: str | None = None,
    rerank_lambda: list[float] | None = None,
) -> dict[str, Any]:
    from agents.pipeline_run import PipelineRun
    from agents.processes.scratch import drop_scratch_topics
    from agents.processes.trainer import close_trainer, make_trainer
    from pipeline.audit.exposure import coverage_at_k, personalisation_at_k
    from pipeline.keys import ensure_dev_key, pseudonymizer
    from pipeline.recs.compare import compare_baselines
    from pipeline.recs.evaluate import ndcg_at_k, precision_at_k, temporal_split
    from pipeline.services.connect import kafka_admin, redis_client, resolve
    from pipeline.serving.layout import Layout
    from pipeline.serving.reader import Reader
    from pipeline.sources import read_ratings

    started = time.monotonic()
    run_id = uuid.uuid4().hex[:8]
    s = settings.model_copy(
        update={
            "topic_prefix": f"{settings.topic_prefix}eval-{run_id}.",
            "app_id": f"{settings.app_id}-eval-{run_id}",
            "trainer": settings.trainer.model_copy(update={"holdout_fraction": holdout}),
        }
    )
    ensure_dev_key(s)
    ratings = read_ratings(dataset, fmt)
    train_part, heldout = temporal_split(ratings, holdout)

    with PipelineRun(s, Path(s.state_dir) / "logs" / f"eval-{run_id}", workers=workers) as run:
        replay = run.replay(
            train_part, consent="1,0,0", seed=seed, progress=progress, heartbeat_ms=EVAL_HEARTBEAT_MS
        )
        bar = Progress(3, "eval: closing windows", progress, "steps")
        run.close_and_wait(timeout_s=1800)
        counters = run.counters()

    bar.update(1, label="eval: training")
    trainer = make_trainer(s)
    try:
        trainer.catch_up()
        report = trainer.train_and_publish(force=True)  # a fresh namespace: nothing to gate against
    finally:
        close_trainer(trainer)
    bar.update(2, label="eval: scoring the held-out ratings")

    endpoints = resolve(s)
    redis = redis_client(endpoints)
    reader = Reader(redis, pseudonymizer(s), Layout.from_settings(s))
    users = sorted(heldout)
    responses = reader.get_many(users, n=10)
    ndcg = precision = 0.0
    lists: dict[str, list[str]] = {}
    for user in users:
        recommended = lists[user] = [it.content_id for it in responses[user].items]
        ndcg += ndcg_at_k(recommended, heldout[user], 10)
        precision += precision_at_k(recommended, heldout[user], 10)
    n = max(len(users), 1)
    baselines = compare_baselines(train_part, heldout, seed=s.trainer.seed, holdout=holdout)
    baseline = baselines["als_textbook"]
    scored = {k: v["ndcg_at_10"] for k, v in baselines.items() if v["ndcg_at_10"] is not None}
    best = max(scored, key=lambda k: (scored[k], k))
    catalogue = {r.content_id for r in train_part}
    bar.update(3, label="eval: done")
    bar.close()
    result = {
        "dataset": str(dataset),
        "users_evaluated": len(users),
        "precision_at_10": round(precision / n, 5),
        "ndcg_at_10": round(ndcg / n, 5),
        "baseline_precision_at_10": round(float(baseline["precision_at_10"]), 5),
        "baseline_ndcg_at_10": round(float(baseline["ndcg_at_10"]), 5),
        "ratio": round((ndcg / n) / max(float(baseline["ndcg_at_10"]), 1e-12), 4),
        "baselines": baselines,
        "best_baseline": best,
        "ratio_vs_best": round((ndcg / n) / max(scored[best], 1e-12), 4),
        "coverage_at_10": round(coverage_at_k(lists, catalogue, 10), 5),
        "personalisation_at_10": round(personalisation_at_k(lists, 10, seed=seed), 5),
        "ratings": len(ratings),
        "train_ratings": len(train_part),
        "events": replay.events,
        "windows": counters.get("windows_emitted", 0),
        "model": {
            "version": report.version,
            "users": report.users,
            "items": report.items,
            "family": trainer.tuned.family if trainer.tuned else "als",
            "tuning": trainer.tuned.to_json() if trainer.tuned else None,
            "setting": trainer.fit_settings.model_dump(
                include={
                    "factors",
                    "regularization",
                    "iterations",
                    "weighting",
                    "alpha",
                    "watched_unit_ms",
                    "completion_bonus",
                    "recency_half_life_titles",
                }
            ),
        },
        "trainer": dataclasses.asdict(report)["seconds"],
        "seconds": round(time.monotonic() - started, 1),
    }
    if rerank:
        lams = rerank_lambda or [s.serving.rerank_lambda]
        result["rerank"] = _rerank_trade_off(reader, redis, s, users, train_part, heldout, rerank, lams)
    drop_scratch_topics(kafka_admin(endpoints), s)
    return result


def _rerank_trade_off(
    plain: Any,
    redis: Any,
    s: Settings,
    users: list[str],
    train_part: Any,
    heldout: Any,
    mode: str,
    lams: list[float],
) -> dict[str, Any]:
    """The same published model read plainly and through the re-rank at each λ: NDCG@10, coverage, tail."""
    from pipeline.audit.report import trade_off
    from pipeline.keys import pseudonymizer
    from pipeline.serving.layout import Layout
    from pipeline.serving.reader import Reader
    from pipeline.serving.rerank import Rerank

    seen: dict[str, set[str]] = {}
    for r in train_part:
        seen.setdefault(r.content_id, set()).add(r.user_id)
    popularity = {c: len(v) for c, v in seen.items()}
    namespace = Layout.from_settings(s).namespace
    readers = [("none", plain)] + [
        (f"{mode}@{lam:g}", Reader(redis, pseudonymizer(s), Layout(namespace, Rerank(mode, lam))))  # type: ignore[arg-type]
        for lam in lams
    ]
    out: dict[str, Any] = {}
    for name, reader in readers:
        lists = {u: [it.content_id for it in r.items] for u, r in reader.get_many(users, n=10).items()}
        figures = trade_off(lists, heldout, popularity, seen)
        out[name] = {k: round(v, 5) if v is not None else None for k, v in figures.items()}
    base = out["none"]["ndcg_at_10"] or 0.0
    for figures in out.values():
        figures["ndcg_loss"] = round(1 - figures["ndcg_at_10"] / base, 5) if base else None
    return out
