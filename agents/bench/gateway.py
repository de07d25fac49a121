"""``privrec bench gateway``: the HTTP collector against the Kafka SDK, and recs through the gateway.

One run, on the configured (else embedded) broker and Redis, under throwaway
topics (``bench-gw-<id>.``) and a throwaway cache namespace (app id
``bench-gw-<id>``), both removed afterwards:

* **collector**: a real ``privrec gateway`` child process; ``clients`` concurrent
  aiohttp connections POST ``/v1/events`` with 100 events a request, each request
  with its viewer's bearer token (verified, rate-limited in Redis with limits set
  out of the way, validated, produced idempotently with acks=all before the 202);
* **SDK**: the same events through :class:`pipeline.emitter.Emitter` (kafka-python,
  acks=all) to the same topic, 100 events an envelope, flushed;
* **recommendations**: synthetic recommendations published for ``users`` viewers;
  ``GET /v1/me/recommendations?n=10`` one at a time (token verification included),
  against :class:`pipeline.serving.AsyncReader.get` called directly on the same data.

Both sides share the machine with the broker, Redis and each other: on a 2-core
box the client side's own CPU (aiohttp, JSON) is part of what limits the figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from pathlib import Path
from typing import Any

from agents.gateway_client import EventPoster, GatewayProcess, viewer_token
from pipeline.kafka.topics import Topic, create_topics, topic_specs
from pipeline.services.connect import kafka_admin, kafka_producer, resolve
from pipeline.settings import Settings

__all__ = ["TARGET_EVENTS_PER_S", "TARGET_RECS_P99_MS", "bench_gateway", "bench_settings", "synthetic_event"]

TARGET_EVENTS_PER_S = 20_000
TARGET_RECS_P99_MS = 5.0
BATCH = 100
UNLIMITED = "100000000/minute"


def bench_settings(settings: Settings, run_id: str) -> Settings:
    """The deployment's settings with throwaway topics and cache, and rate limits out of the way."""
    from pipeline.settings import GatewayLimits

    gateway = settings.gateway.model_copy(
        update={"limits": GatewayLimits(events=UNLIMITED, recs=UNLIMITED, privacy=UNLIMITED)}
    )
    return settings.model_copy(
        update={"topic_prefix": f"bench-gw-{run_id}.", "app_id": f"bench-gw-{run_id}", "gateway": gateway}
    )


def synthetic_event(rng: random.Random, user_id: str, now_ms: int) -> dict[str, Any]:
    """A ``playback.v1`` event the contract accepts (ids, a heartbeat, client fields)."""
    duration = rng.randrange(600_000, 7_200_000)
    position = rng.randrange(duration)
    return {
        "schema": "playback.v1",
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "user_id": user_id,
        "session_id": f"s-{rng.randrange(10**9)}",
        "device_id": f"d-{rng.randrange(10**9)}",
        "content_id": f"title-{rng.randrange(5000):05d}",
        "event_type": "heartbeat",
        "position_ms": position,
        "duration_ms": duration,
        "watched_ms": min(position, 30_000),
        "event_time": now_ms - rng.randrange(3_600_000),
        "client": {
            "ip": "203.0.113.7",
            "user_agent": "bench/1",
            "app_version": "1.0",
            "device_class": "web",
            "country": "DE",
        },
        "gpc": False,
    }


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


def bench_gateway(
    settings: Settings,
    *,
    events: int = 50_000,
    clients: int = 8,
    users: int = 1000,
    reads: int = 5000,
    seed: int = 7,
    log_dir: Path | None = None,
) -> dict[str, Any]:
    """Run the benchmark; returns the JSON report (events/s, milliseconds)."""
    run_id = uuid.uuid4().hex[:8]
    s = bench_settings(settings, run_id)
    endpoints = resolve(s)
    rng = random.Random(seed)
    user_ids = [f"bench-viewer-{i}" for i in range(users)]
    requests = max(1, events // BATCH)
    now_ms = int(time.time() * 1000)
    batches = [
        (user, [synthetic_event(rng, user, now_ms) for _ in range(BATCH)])
        for user in (user_ids[i % users] for i in range(requests))
    ]
    admin = kafka_admin(endpoints)
    try:
        create_topics(admin, s)
    finally:
        admin.close()
    log_dir = log_dir or Path(s.state_dir) / "logs" / "bench-gateway"
    try:
        with GatewayProcess(s, log_dir / f"gateway-{run_id}.log") as gateway:
            from pipeline.gateway import EVENTS_WRITE, RECS_READ_SELF

            tokens = {u: viewer_token(s, u, [EVENTS_WRITE, RECS_READ_SELF]) for u in user_ids}
            poster = EventPoster(gateway.url, tokens, clients=clients)
            bodies = [(user, poster.body(evs)) for user, evs in batches]
            warm = bodies[: min(len(bodies), 2 * clients)]
            poster.post_sync([warm[i::clients] for i in range(clients)])  # connections, caches, producer
            collector = poster.post_sync([bodies[i::clients] for i in range(clients)])
            sdk = _sdk(s, endpoints, batches)
            recs = asyncio.run(_recs(s, endpoints, gateway.url, tokens, user_ids, reads, seed))
    finally:
        _drop_topics(s, endpoints)
    sent = requests * BATCH
    collector_rate = collector.accepted / collector.seconds if collector.seconds else 0.0
    return {
        "bench": "gateway",
        "events": sent,
        "events_per_request": BATCH,
        "clients": clients,
        "users": users,
        "collector_events_per_s": round(collector_rate),
        "collector_accepted": collector.accepted,
        "collector_statuses": {str(k): v for k, v in sorted(collector.statuses.items())},
        "collector_request_p50_ms": round(_pct(collector.latencies_ms, 0.5), 2),
        "collector_request_p99_ms": round(_pct(collector.latencies_ms, 0.99), 2),
        "sdk_events_per_s": round(sdk["events_per_s"]),
        "collector_vs_sdk": round(collector_rate / sdk["events_per_s"], 2) if sdk["events_per_s"] else None,
        "reads": reads,
        **recs,
        "target": {"collector_events_per_s_min": TARGET_EVENTS_PER_S, "recs_p99_ms_max": TARGET_RECS_P99_MS},
        "meets_target": collector_rate >= TARGET_EVENTS_PER_S and recs["recs_p99_ms"] <= TARGET_RECS_P99_MS,
    }


def _sdk(s: Settings, endpoints: Any, batches: list[tuple[str, list[dict[str, Any]]]]) -> dict[str, float]:
    """The same events through the Kafka SDK (validated per event, one envelope per 100, acks=all)."""
    from pipeline.emitter import Emitter

    emitter = Emitter(
        kafka_producer(endpoints, client_id="privrec-bench-sdk"),
        s.topic(Topic.RAW),
        max_batch=BATCH,
        casefold_user_ids=s.pseudonym.casefold_user_ids,
    )
    try:
        for user, evs in batches[:20]:  # warm-up: metadata, connections
            emitter.emit_batch(user, evs)
            emitter.send_user(user)
        emitter.flush()
        started = time.perf_counter()
        before = emitter.sent_events
        for user, evs in batches:
            emitter.emit_batch(user, evs)
            emitter.send_user(user)
        emitter.flush()
        seconds = time.perf_counter() - started
        sent = emitter.sent_events - before
    finally:
        emitter.close()
    return {"events_per_s": sent / seconds if seconds else 0.0}


async def _recs(
    s: Settings,
    endpoints: Any,
    url: str,
    tokens: dict[str, str],
    user_ids: list[str],
    reads: int,
    seed: int,
) -> dict[str, Any]:
    """Publish synthetic recommendations, then time the gateway's route and the reader directly."""
    import aiohttp
    import redis
    import redis.asyncio as aredis

    from agents.bench.serve import _cleanup, synthetic_recs
    from pipeline.keys import pseudonymizer
    from pipeline.serving import AsyncReader, Layout, publish

    pz = pseudonymizer(s)
    layout = Layout.from_settings(s)
    ids, recs, popular = synthetic_recs(pz, len(user_ids), top_n=s.trainer.top_n, seed=seed)
    rename = dict(zip(ids, user_ids, strict=True))
    recs = {pz.pseudonym(rename[u]): recs[pz.pseudonym(u)] for u in ids}
    sync = redis.Redis.from_url(endpoints.redis_url)
    client = aredis.Redis.from_url(endpoints.redis_url)
    rng = random.Random(seed + 1)
    sample = [rng.choice(user_ids) for _ in range(reads)]
    gateway_ms: list[float] = []
    reader_ms: list[float] = []
    statuses: dict[int, int] = {}
    try:
        publish(sync, layout, "bench-v1", recs, popular, {"bench": True}, 3600)
        reader = AsyncReader(client, pz, layout)
        clock = time.perf_counter
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
            route = f"{url.rstrip('/')}/v1/me/recommendations?n=10"

            async def one(user: str) -> float:
                t0 = clock()
                async with session.get(route, headers={"Authorization": f"Bearer {tokens[user]}"}) as resp:
                    body = await resp.read()
                took = (clock() - t0) * 1000
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
                if resp.status == 200 and b"pseudonym" in body:
                    raise AssertionError("the gateway's answer carries the pseudonym")
                return took

            for user in sample[: min(200, reads)]:  # warm-up: connection, script cache
                await one(user)
                await reader.get(user, 10)
            for user in sample:
                gateway_ms.append(await one(user))
                t0 = clock()
                await reader.get(user, 10)
                reader_ms.append((clock() - t0) * 1000)
    finally:
        _cleanup(sync, layout)
        sync.close()
        await client.aclose()
    return {
        "recs_statuses": {str(k): v for k, v in sorted(statuses.items())},
        "recs_p50_ms": round(_pct(gateway_ms, 0.5), 3),
        "recs_p99_ms": round(_pct(gateway_ms, 0.99), 3),
        "reader_p50_ms": round(_pct(reader_ms, 0.5), 3),
        "reader_p99_ms": round(_pct(reader_ms, 0.99), 3),
    }


def _drop_topics(s: Settings, endpoints: Any) -> None:
    """Delete the bench's topics (best effort: a broker may refuse deletion)."""
    admin = kafka_admin(endpoints)
    try:
        with contextlib.suppress(Exception):
            admin.delete_topics([name for name, _ in topic_specs(s)])
    finally:
        admin.close()
