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

    p = bench.add_parser("train", help="our trainer (store + CSR + ALS) vs a bare implicit fit, per size")
    p.add_argument(
        "--interactions",
        type=int,
        nargs="+",
        default=[100_000, 1_000_000],
        metavar="N",
        help="synthetic interaction counts (default 100000 1000000; 10000000 needs ~3 GB and minutes)",
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="runs per side; the fastest counts (default 5 up to 1M, then 1)",
    )
    p.add_argument(
        "--gpu",
        action="store_true",
        help="also fit on the CPU and the GPU (trainer.device): seconds and hit rate at 10 (needs a GPU)",
    )
    p.add_argument("--json", action="store_true", help="JSON output (the default; kept for symmetry)")
    p.set_defaults(handler=cmd_bench_train)

    from agents.cli.recs import n_items

    p = bench.add_parser("erase", help="erasure request-to-receipt times with a replay loading the pipeline")
    p.add_argument("--requests", type=int, default=20, help="erasure requests (distinct users)")
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--interval", type=float, default=0.5, help="seconds between requests")
    p.add_argument("--load-rate", type=float, default=5000.0, help="replayed events/s meanwhile")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--json", action="store_true", help="JSON output (the default; kept for symmetry)")
    p.set_defaults(handler=cmd_bench_erase)

    p = bench.add_parser("serve", help="recommendation reader vs raw redis-py GET of the same keys")
    p.add_argument("--users", type=int, default=10_000, help="users published (default 10000)")
    p.add_argument("--reads", type=int, default=20_000, help="single-user reads timed (default 20000)")
    p.add_argument("--n", type=n_items, default=10, help="items per read (default 10)")
    p.add_argument("--json", action="store_true", help="JSON output (the default; kept for symmetry)")
    p.set_defaults(handler=cmd_bench_serve)

    p = bench.add_parser(
        "gateway", help="POST /v1/events vs the Kafka SDK; GET /v1/me/recommendations vs the reader"
    )
    p.add_argument("--events", type=int, default=50_000, help="events sent each way (100 a request)")
    p.add_argument("--clients", type=int, default=8, help="concurrent HTTP connections (default 8)")
    p.add_argument("--users", type=int, default=1000, help="viewers (tokens, published recommendations)")
    p.add_argument("--reads", type=int, default=5000, help="recommendation reads timed each way")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", action="store_true", help="JSON output (the default; kept for symmetry)")
    p.set_defaults(handler=cmd_bench_gateway)


def cmd_bench_train(settings: Settings, args: argparse.Namespace) -> int:
    from agents.bench.train import bench_train

    result = bench_train(
        args.interactions, settings=settings.trainer, seed=args.seed, repeats=args.repeats, gpu=args.gpu
    )
    print_json(result)
    return 0


def cmd_bench_stream(settings: Settings, args: argparse.Namespace) -> int:
    from agents.bench.stream import bench_stream

    print_json(
        bench_stream(events=args.events, workers=args.workers, seed=args.seed, naive_events=args.naive_events)
    )
    return 0


def cmd_bench_erase(settings: Settings, args: argparse.Namespace) -> int:
    from agents.bench.erase import bench_erase
    from agents.cli.evaluate import embedded_services

    with embedded_services(settings, args):
        result = bench_erase(
            settings,
            requests=args.requests,
            users=args.users,
            interval_s=args.interval,
            load_rate=args.load_rate,
            workers=args.workers,
            seed=args.seed,
        )
    print_json(result)
    return 0 if result.get("complete") else 1


def cmd_bench_serve(settings: Settings, args: argparse.Namespace) -> int:
    from agents.bench.serve import bench_serve

    print_json(bench_serve(settings, users=args.users, reads=args.reads, n=args.n))
    return 0


def cmd_bench_gateway(settings: Settings, args: argparse.Namespace) -> int:
    from agents.bench.gateway import bench_gateway
    from agents.cli.evaluate import embedded_services

    with embedded_services(settings, args):
        result = bench_gateway(
            settings,
            events=args.events,
            clients=args.clients,
            users=args.users,
            reads=args.reads,
            seed=args.seed,
        )
    print_json(result)
    return 0
