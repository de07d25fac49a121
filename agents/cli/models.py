"""``privrec models``: the model quality history, one line per training round."""

from __future__ import annotations

import argparse
from typing import Any

from agents.cli._output import print_json, print_table, rfc3339
from pipeline.settings import Settings

__all__ = ["register"]


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= value <= 500:
        raise argparse.ArgumentTypeError("must be between 1 and 500")
    return value


def register(sub: Any) -> None:
    p = sub.add_parser(
        "models", help="the model quality history: every training round and the gate's decision"
    )
    p.add_argument("--n", type=_count, default=20, help="rounds shown, newest first (1..500, default 20)")
    p.add_argument("--json", action="store_true", help="JSON: a list of rounds")
    p.set_defaults(handler=cmd_models)


def _ndcg(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def cmd_models(settings: Settings, args: argparse.Namespace) -> int:
    import msgspec

    from pipeline.recs.history import read_runs
    from pipeline.services.connect import redis_client, resolve
    from pipeline.serving.layout import Layout

    client = redis_client(resolve(settings))
    try:
        runs = read_runs(client, Layout.from_settings(settings).model_runs, args.n)
    finally:
        client.close()
    docs = [msgspec.to_builtins(run) | {"at": rfc3339(run.at_ms)} for run in runs]
    if args.json:
        print_json(docs)
        return 0
    if not runs:
        print("no training round recorded yet: run `privrec train`")
        return 0
    print_table(
        ["time", "version", "family", "holdout ndcg@10", "validation", "live before", "decision"],
        [
            [
                d["at"],
                run.version or "-",
                run.family,
                _ndcg(run.holdout_ndcg_at_10),
                _ndcg(run.validation_ndcg_at_10),
                _ndcg(run.live_ndcg_at_10),
                run.decision,
            ]
            for d, run in zip(docs, runs, strict=True)
        ],
    )
    return 0
