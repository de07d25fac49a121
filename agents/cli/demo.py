"""``privrec demo``: the whole product on the embedded services, in one command.

Starts the services (embedded unless configured) and creates the topics, then
runs the demo (:mod:`agents.processes.demo`: worker(s), a replay of the
synthetic audience or a real dataset with a consent mix and a few broken
messages, training, publishing, reading recommendations back) and prints what
happened.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from agents.cli import services
from agents.cli._output import print_json
from agents.processes.demo import DemoPlan, run_demo
from pipeline.embedded import EmbeddedServices
from pipeline.settings import Settings

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the pipeline end to end on the embedded services")
    p.add_argument("--keep", action="store_true", help="leave the services running afterwards")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--dataset", type=Path, help="replay a real ratings dataset instead of the synthetic one")
    p.add_argument("--format", default="movielens", choices=["movielens", "csv"])
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--items", type=int, default=1000)
    p.add_argument("--events", type=int, default=50_000)
    p.add_argument(
        "--consent", default="0.8,0.1,0.1", help="shares with personalisation, analytics only, none"
    )
    p.add_argument(
        "--gateway-share",
        type=float,
        default=0.2,
        help="share of partitions whose viewers' events go through the HTTP gateway (default 0.2; 0: none)",
    )
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(handler=cmd_demo)


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    embedded = settings.kafka.embedded or settings.redis.embedded
    started_here = embedded and not any(
        r.alive() for r in EmbeddedServices(settings.state_dir).records().values()
    )
    quiet = argparse.Namespace(**vars(args))
    if embedded:
        _quietly(services.cmd_up, settings, quiet, args.json)
    try:
        _quietly(services.cmd_topics_create, settings, quiet, args.json)
        summary = run_demo(settings, _plan(args))
    finally:
        if started_here and not args.keep:
            _quietly(services.cmd_down, settings, quiet, args.json)
    if args.json:
        print_json(summary)
    else:
        print_summary(summary, keep=args.keep)
    return 0


def _plan(args: argparse.Namespace) -> DemoPlan:
    return DemoPlan(
        dataset=args.dataset,
        format=args.format,
        users=args.users,
        items=args.items,
        events=args.events,
        consent=args.consent,
        gateway_share=args.gateway_share,
        workers=args.workers,
        seed=args.seed,
        keep=args.keep,
        quiet=args.json,
    )


def _quietly(fn: Any, settings: Settings, args: argparse.Namespace, quiet: bool) -> None:
    import contextlib
    import io

    if quiet:
        with contextlib.redirect_stdout(io.StringIO()):
            fn(settings, args)
    else:
        fn(settings, args)


def print_summary(s: dict[str, Any], *, keep: bool) -> None:
    st = s["stream"]
    print()
    print(
        f"privrec demo: {s['events_in']:,} playback events from {s['users']:,} viewers "
        f"({s['messages']:,} messages) in {s['seconds']} s"
    )
    print(f"  consent mix         {s['consent']}")
    gw = s["gateway"]
    if gw["requests"]:
        print(
            f"  via the gateway     {gw['accepted']:,} of {gw['events_sent']:,} events accepted "
            f"(POST /v1/events, {gw['requests']:,} requests, {gw['viewers']:,} viewers with their own "
            f"tokens, partitions {gw['partitions']}) in {gw['seconds']} s"
        )
    print(
        f"  stream              received {st['received']:,}, redacted {st['redacted']:,} "
        f"(analytics only {st['analytics_only']:,}), late {st['late']:,}, in {st['seconds']} s"
    )
    print(f"  dropped by reason   {st['dropped'] or '-'}")
    print(f"  dead letters        {st['dlq'] or '-'}")
    print(f"  windows emitted     {st['windows_emitted']:,} (interactions)")
    m = s["model"]
    metrics = m["metrics"]
    print(
        f"  model               {m['version']} ({'published' if m['published'] else 'NOT published'}), "
        f"{m['users']:,} users x {m['items']:,} titles, holdout NDCG@10 "
        f"{metrics.get('ndcg_at_10', float('nan')):.4f}, precision@10 "
        f"{metrics.get('precision_at_10', float('nan')):.4f}, trained in {m['seconds_total']} s"
    )
    for number, ex in enumerate(s["examples"], 1):
        kind = "personalised" if ex["personalized"] else f"not personalised ({ex['source']})"
        print(f"\n  recommendations for sample viewer {number} [{ex['consent']}; {kind}]")
        for it in ex["items"]:
            because = f"  — because you watched {', '.join(it['because'])}" if it["because"] else ""
            print(f"    {it['title']}{because}")
        if ex.get("personalisation"):
            print(f"    ({_figures_line(ex['personalisation'])})")
    if s.get("personalisation"):
        p = s["personalisation"]
        print(
            f"\n  personalisation     top {p['n']} of {p['viewers']:,} personalised viewers: "
            f"{_figures_line(p)}"
        )
    if s["lag"]:
        print("\n  consumer lag")
        for g in s["lag"]:
            print(f"    {g['group']}: {g['lag']} messages, status {g['status']}")
    print(f"\n  ethics audit        {s.get('audit') or 'not written (see the log)'}")
    if keep:
        if gw.get("privacy_url"):
            print("\nprivacy centre of a sample viewer (token in the fragment, valid 12 h):")
            print(f"  {gw['privacy_url']}")
            print(f"gateway left running (pid {gw['pid']}): stop it with `kill {gw['pid']}`")
        print("\nservices left running: try `privrec recs USER`, `privrec lag`, `privrec down` when done")


def _figures_line(p: dict[str, Any]) -> str:
    ratio = "-" if p["in_cluster_ratio"] is None else f"{p['in_cluster_ratio']:.1f}x"
    return (
        f"{p['overlap_with_popular']:.0%} shared with the popular list; "
        f"{p['in_cluster_share']:.0%} from the viewer's taste cluster vs {p['popular_in_cluster_share']:.0%} "
        f"of the popular list ({ratio})"
    )
