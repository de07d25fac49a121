"""``privrec demo``: the whole product on the embedded services, in one command.

Starts the services (embedded unless configured), creates the topics, runs
worker(s), replays the synthetic audience (or a real dataset) with a consent
mix and a few broken messages, closes the windows, trains, publishes to Redis,
reads recommendations back through the reader and prints what happened.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from agents.cli import services
from agents.cli._output import print_json
from agents.gateway_client import GatewayProcess, PartitionLanes, events_limit_raised
from pipeline.embedded import EmbeddedServices
from pipeline.settings import Settings

__all__ = ["register"]

#: What a broken client might send: each lands in the DLQ with its reason.
BROKEN_MESSAGES: list[tuple[bytes | None, bytes]] = [
    (b"broken-client", b"{not json"),
    (b"broken-client", json.dumps({"schema": "playback.v1", "event_id": "x"}).encode()),
    (b"broken-client", json.dumps({"schema": "playback.v9", "events": []}).encode()),
]


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
        summary = run_demo(settings, args)
    finally:
        if started_here and not args.keep:
            _quietly(services.cmd_down, settings, quiet, args.json)
    if args.json:
        print_json(summary)
    else:
        print_summary(summary, keep=args.keep)
    return 0


def _quietly(fn: Any, settings: Settings, args: argparse.Namespace, quiet: bool) -> None:
    import contextlib
    import io

    if quiet:
        with contextlib.redirect_stdout(io.StringIO()):
            fn(settings, args)
    else:
        fn(settings, args)


def run_demo(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    from agents.audit import demo_audit
    from agents.cli.train import report_dict
    from agents.pipeline_run import PipelineRun
    from agents.processes.trainer import close_trainer, make_trainer
    from pipeline.keys import pseudonymizer
    from pipeline.services.connect import redis_client, resolve
    from pipeline.serving.layout import Layout
    from pipeline.serving.reader import Reader
    from pipeline.sources import consent_mix, read_ratings, read_titles, synthetic_ratings, synthetic_titles

    started = time.monotonic()
    if args.dataset:
        ratings = read_ratings(args.dataset, args.format)
        titles = read_titles(args.dataset, args.format)
    else:
        ratings = synthetic_ratings(
            users=args.users, items=args.items, events_target=args.events, seed=args.seed
        )
        titles = synthetic_titles(args.items, args.seed)
    log_dir = Path(settings.state_dir) / "logs" / "demo"
    lanes = PartitionLanes(
        settings.partitions, args.gateway_share, casefold_user_ids=settings.pseudonym.casefold_user_ids
    )
    with (
        PipelineRun(settings, log_dir, workers=args.workers) as run,
        GatewayProcess(events_limit_raised(settings), log_dir / "gateway.log") as gateway,
    ):
        t0 = time.monotonic()
        replay = run.replay(
            ratings,
            consent=args.consent,
            seed=args.seed,
            titles=titles,
            progress=False if args.json else None,
            divert=_start_gateway_lanes(settings, gateway.url, lanes) if lanes.queues else None,
        )
        via_gateway = _gateway_summary(lanes, lanes.finish())
        if args.keep:
            via_gateway["privacy_url"], via_gateway["pid"] = _privacy_url(settings, gateway, ratings)
        run.send_raw(BROKEN_MESSAGES)
        run.close_and_wait()
        stream_s = time.monotonic() - t0
        counters = run.counters()
    t1 = time.monotonic()
    trainer = make_trainer(settings)
    try:
        trainer.catch_up()
        trainer.tail.commit()
        report = trainer.train_and_publish()
    finally:
        close_trainer(trainer)
    train_s = time.monotonic() - t1

    endpoints = resolve(settings)
    pz = pseudonymizer(settings)
    reader = Reader(redis_client(endpoints), pz, Layout.from_settings(settings))
    mix = consent_mix(sorted({r.user_id for r in ratings}), spec=args.consent, seed=args.seed)
    personal = [u for u, p in mix.items() if p and p["personalization"]]
    analytics_only = [u for u, p in mix.items() if p and not p["personalization"]]
    sample = personal[:2] + analytics_only[:1]
    examples = []
    for user in sample:
        resp = reader.get(user, n=5)
        examples.append(
            {
                "user_id": user,
                "consent": "personalization" if user in personal else "analytics only",
                "personalized": resp.personalized,
                "source": resp.source,
                "items": [
                    {
                        "content_id": it.content_id,
                        "title": titles.get(it.content_id, it.content_id),
                        "score": round(float(it.score), 4),
                        "because": [titles.get(b, b) for b in it.because],
                    }
                    for it in resp.items
                ],
            }
        )
    return {
        "gateway": via_gateway,
        "events_in": replay.events,
        "messages": replay.messages,
        "users": replay.users,
        "consent": replay.consent,
        "stream": {
            "received": counters.get("received", 0),
            "redacted": counters.get("redacted", 0),
            "analytics_only": counters.get("analytics_only", 0),
            "dropped": {k.split(":", 1)[1]: v for k, v in counters.items() if k.startswith("dropped:")},
            "dlq": {k.split(":", 1)[1]: v for k, v in counters.items() if k.startswith("dlq:")},
            "late": counters.get("late", 0),
            "windows_emitted": counters.get("windows_emitted", 0),
            "seconds": round(stream_s, 1),
        },
        "model": report_dict(report)
        | {"trainer_counters": trainer.counters, "seconds_total": round(train_s, 1)},
        "examples": examples,
        "lag": _lag(settings),
        "audit": demo_audit(settings),  # the ethics audit's HTML path
        "seconds": round(time.monotonic() - started, 1),
    }


def _start_gateway_lanes(settings: Settings, url: str, lanes: PartitionLanes) -> PartitionLanes:
    """Post the diverted viewers' batches as their clients would (own tokens), during the replay."""
    from agents.gateway_client import EventPoster, viewer_token
    from pipeline.gateway import EVENTS_WRITE

    def mint(user: str) -> str:
        return viewer_token(settings, user, [EVENTS_WRITE])

    return lanes.start(EventPoster(url, mint, clients=max(1, len(lanes.queues))))


def _gateway_summary(lanes: PartitionLanes, report: Any) -> dict[str, Any]:
    return {
        "partitions": lanes.partitions,
        "viewers": lanes.poster.viewers if lanes.poster else 0,
        "events_sent": lanes.events,
        "requests": report.requests,
        "accepted": report.accepted,
        "rejected": report.rejected,
        "statuses": {str(k): v for k, v in sorted(report.statuses.items())},
        "seconds": round(report.seconds, 1),
    }


def _privacy_url(settings: Settings, gateway: GatewayProcess, ratings: Any) -> tuple[str, int]:
    """A sample viewer's privacy-centre link (token in the fragment); the gateway keeps running."""
    from urllib.parse import quote

    from agents.gateway_client import viewer_token
    from pipeline.gateway import VIEWER_SCOPES

    viewer = min(r.user_id for r in ratings)
    token = viewer_token(settings, viewer, sorted(VIEWER_SCOPES), ttl_s=12 * 3600)
    return f"{gateway.url}/privacy#token={quote(token, safe='')}", gateway.detach()


def _lag(settings: Settings, samples: int = 2) -> list[dict[str, Any]]:
    """Consumer lag of the pipeline's groups (a short Burrow-style window)."""
    from agents.processes.clients import lag_consumer
    from pipeline.ops.collect import LagCollector, pipeline_groups
    from pipeline.ops.lag import LagWindow
    from pipeline.services.connect import kafka_admin, resolve

    endpoints = resolve(settings)
    admin, consumer = kafka_admin(endpoints), lag_consumer(endpoints)
    try:
        collector = LagCollector(
            admin, consumer, bootstrap=endpoints.kafka_bootstrap, client_options=endpoints.kafka_options
        )
        window = LagWindow(size=samples)
        groups = pipeline_groups(settings)
        for i in range(samples):
            if i:
                time.sleep(1.0)
            window.extend(collector.sample(groups)[0])
        return [
            {"group": g.group, "lag": g.total_lag, "status": g.status.name} for g in window.evaluate(groups)
        ]
    finally:
        consumer.close()
        admin.close()


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
