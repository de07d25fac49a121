"""The demo run: the whole product on the configured (or embedded) services, step by step.

``privrec demo`` parses its arguments into a :class:`DemoPlan`, calls
:func:`run_demo` and prints the summary it returns. The steps: load the
audience (synthetic, or a real dataset), stream it through worker(s) (part of
it through the HTTP gateway, as clients send it, plus a few broken messages),
train and publish once, read sample recommendations back through the reader,
measure how personal they are (on the synthetic world, whose taste clusters are
known: :mod:`pipeline.recs.personalisation`), then measure consumer lag and
write the ethics audit.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.gateway_client import GatewayProcess, PartitionLanes, events_limit_raised
from pipeline.settings import Settings

__all__ = ["BROKEN_MESSAGES", "DemoPlan", "run_demo"]

#: What a broken client might send: each lands in the DLQ with its reason.
BROKEN_MESSAGES: list[tuple[bytes | None, bytes]] = [
    (b"broken-client", b"{not json"),
    (b"broken-client", json.dumps({"schema": "playback.v1", "event_id": "x"}).encode()),
    (b"broken-client", json.dumps({"schema": "playback.v9", "events": []}).encode()),
]


@dataclass(frozen=True)
class DemoPlan:
    """What the demo replays and how (the options of ``privrec demo``)."""

    dataset: Path | None = None
    format: str = "movielens"
    users: int = 2000
    items: int = 1000
    events: int = 50_000
    consent: str = "0.8,0.1,0.1"  # shares with personalisation, analytics only, none
    gateway_share: float = 0.2  # share of partitions whose viewers' events go through the gateway
    workers: int = 1
    seed: int = 7
    keep: bool = False  # leave the gateway running (the privacy-centre link is then in the summary)
    quiet: bool = False  # no progress lines (the summary is printed as JSON)


@dataclass
class _Streamed:
    """What streaming the audience through the worker(s) produced."""

    replay: Any
    gateway: dict[str, Any]
    counters: dict[str, int]
    seconds: float


@dataclass
class _Trained:
    report: Any
    counters: dict[str, Any]
    seconds: float


def run_demo(settings: Settings, plan: DemoPlan) -> dict[str, Any]:
    """Run every step on services that are up with topics created; returns the summary."""
    from agents.audit import demo_audit

    started = time.monotonic()
    ratings, titles = _audience(plan)
    streamed = _stream(settings, plan, ratings, titles)
    trained = _train_once(settings)
    return {
        "gateway": streamed.gateway,
        "events_in": streamed.replay.events,
        "messages": streamed.replay.messages,
        "users": streamed.replay.users,
        "consent": streamed.replay.consent,
        "stream": _stream_summary(streamed),
        "model": _model_summary(trained),
        **_read_back(settings, plan, ratings, titles),
        "lag": _lag(settings),
        "audit": demo_audit(settings),  # the ethics audit's HTML path
        "seconds": round(time.monotonic() - started, 1),
    }


def _audience(plan: DemoPlan) -> tuple[list[Any], dict[str, str]]:
    """The ratings to replay and the titles' names: a real dataset, else a synthetic audience."""
    from pipeline.sources import read_ratings, read_titles, synthetic_ratings, synthetic_titles

    if plan.dataset:
        return read_ratings(plan.dataset, plan.format), read_titles(plan.dataset, plan.format)
    ratings = synthetic_ratings(users=plan.users, items=plan.items, events_target=plan.events, seed=plan.seed)
    return ratings, synthetic_titles(plan.items, plan.seed)


def _stream(settings: Settings, plan: DemoPlan, ratings: list[Any], titles: dict[str, str]) -> _Streamed:
    """Replay the audience (some viewers through the gateway) and the broken messages; close windows."""
    from agents.pipeline_run import PipelineRun

    log_dir = Path(settings.state_dir) / "logs" / "demo"
    lanes = PartitionLanes(
        settings.partitions, plan.gateway_share, casefold_user_ids=settings.pseudonym.casefold_user_ids
    )
    with (
        PipelineRun(settings, log_dir, workers=plan.workers) as run,
        GatewayProcess(events_limit_raised(settings), log_dir / "gateway.log") as gateway,
    ):
        t0 = time.monotonic()
        replay = run.replay(
            ratings,
            consent=plan.consent,
            seed=plan.seed,
            titles=titles,
            progress=False if plan.quiet else None,
            divert=_start_gateway_lanes(settings, gateway.url, lanes) if lanes.queues else None,
        )
        via_gateway = _gateway_summary(lanes, lanes.finish())
        if plan.keep:
            via_gateway["privacy_url"], via_gateway["pid"] = _privacy_url(settings, gateway, ratings)
        run.send_raw(BROKEN_MESSAGES)
        run.close_and_wait()
        seconds = time.monotonic() - t0
        counters = run.counters()
    return _Streamed(replay, via_gateway, counters, seconds)


def _stream_summary(streamed: _Streamed) -> dict[str, Any]:
    counters = streamed.counters
    return {
        "received": counters.get("received", 0),
        "redacted": counters.get("redacted", 0),
        "analytics_only": counters.get("analytics_only", 0),
        "dropped": {k.split(":", 1)[1]: v for k, v in counters.items() if k.startswith("dropped:")},
        "dlq": {k.split(":", 1)[1]: v for k, v in counters.items() if k.startswith("dlq:")},
        "late": counters.get("late", 0),
        "windows_emitted": counters.get("windows_emitted", 0),
        "seconds": round(streamed.seconds, 1),
    }


def _train_once(settings: Settings) -> _Trained:
    """One catch-up of the trainer on everything streamed, one training, one publication."""
    from agents.processes.trainer import close_trainer, make_trainer

    t1 = time.monotonic()
    trainer = make_trainer(settings)
    try:
        trainer.catch_up()
        trainer.tail.commit()
        report = trainer.train_and_publish()
    finally:
        close_trainer(trainer)
    return _Trained(report, trainer.counters, time.monotonic() - t1)


def _model_summary(trained: _Trained) -> dict[str, Any]:
    from agents.processes.trainer import report_dict

    return report_dict(trained.report) | {
        "trainer_counters": trained.counters,
        "seconds_total": round(trained.seconds, 1),
    }


FIGURES_N = 10
"""List length of the personalisation figures (the popular list is cut to the same length)."""


def _read_back(
    settings: Settings, plan: DemoPlan, ratings: list[Any], titles: dict[str, str]
) -> dict[str, Any]:
    """Recommendations read back through the reader: two personalised viewers, one analytics-only.

    On the synthetic world, also the personalisation figures of every
    personalised viewer's top 10 against the list a non-personalised viewer gets.
    """
    from pipeline.keys import pseudonymizer
    from pipeline.services.connect import redis_client, resolve
    from pipeline.serving.layout import Layout
    from pipeline.serving.reader import Reader
    from pipeline.sources import consent_mix

    reader = Reader(redis_client(resolve(settings)), pseudonymizer(settings), Layout.from_settings(settings))
    mix = consent_mix(sorted({r.user_id for r in ratings}), spec=plan.consent, seed=plan.seed)
    personal = [u for u, p in mix.items() if p and p["personalization"]]
    analytics_only = [u for u, p in mix.items() if p and not p["personalization"]]
    figures = _figures(plan, reader.get_many(personal, FIGURES_N), reader.get(analytics_only[0], FIGURES_N))
    examples = []
    for user in personal[:2] + analytics_only[:1]:
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
                **({"personalisation": figures["viewers"][user]} if user in figures["viewers"] else {}),
            }
        )
    return {"examples": examples, "personalisation": figures["overall"]}


def _figures(plan: DemoPlan, responses: dict[str, Any], fallback: Any) -> dict[str, Any]:
    """Overall and per-viewer :func:`pipeline.recs.personalisation.personalisation` (synthetic only)."""
    from pipeline.recs.personalisation import personalisation
    from pipeline.sources.synthetic import content_id, synthetic_world, user_id

    if plan.dataset:  # a real dataset's taste clusters are unknown
        return {"overall": None, "viewers": {}}
    world = synthetic_world(users=plan.users, items=plan.items, seed=plan.seed)
    users = {user_id(i): int(c) for i, c in enumerate(world.user_cluster.tolist())}
    items = {content_id(i): int(c) for i, c in enumerate(world.item_cluster.tolist())}
    popular = [it.content_id for it in fallback.items]
    lists = {u: [it.content_id for it in r.items] for u, r in responses.items() if r.personalized}
    overall = personalisation(lists, popular, users, items).to_dict()
    viewers = {u: personalisation({u: ids}, popular, users, items).to_dict() for u, ids in lists.items()}
    return {"overall": overall | {"n": FIGURES_N, "popular_source": fallback.source}, "viewers": viewers}


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
