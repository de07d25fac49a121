"""``privrec bench ...``: benchmarks printing JSON (ratios measured in one run)."""

from __future__ import annotations

import argparse
from typing import Any

from agents.cli._output import print_json
from pipeline.settings import Settings

__all__ = ["register"]


def register(sub: Any) -> None:
    bench = sub.add_parser("bench", help="benchmarks (JSON)").add_subparsers(dest="bench_cmd", required=True)
    p = bench.add_parser(
        "stream", help="privacy stream vs naive Faust vs raw aiokafka, on the embedded broker"
    )
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument(
        "--naive-events",
        type=int,
        default=None,
        help="events for the (slow) naive Faust baseline; default min(events, 20000)",
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", action="store_true", help="JSON output (the default; kept for symmetry)")
    p.set_defaults(handler=cmd_bench_stream)


def cmd_bench_stream(settings: Settings, args: argparse.Namespace) -> int:
    from agents.bench.stream import bench_stream

    print_json(
        bench_stream(events=args.events, workers=args.workers, seed=args.seed, naive_events=args.naive_events)
    )
    return 0
