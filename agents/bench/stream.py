"""``privrec bench stream``: our worker vs a naive Faust agent vs a raw aiokafka loop, one run.

All three read from the same embedded broker in the same run:

* **privrec**: ``privrec worker`` processes (consent + redaction + windows), fed
  one-user envelopes as players send them (heartbeats every 15 s, a buffer
  flushed at most every 5 min of event time), every user consenting;
* **naive Faust**: one JSON event per message, a tumbling windowed table
  updated per event (the textbook Faust agent);
* **raw consume**: aiokafka reading the same envelopes and decoding them with
  ``json.loads``, doing nothing else (an upper bound for any Python consumer).

Rates are events per second of processing time (first to last processed
event), so worker start-up and group joins are not counted.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec

from agents.procs import ChildProcess, clear_worker_stats, wait_assigned, wait_until, worker_stats
from pipeline.embedded import EmbeddedServices
from pipeline.kafka.topics import Topic
from pipeline.settings import Settings
from pipeline.sources import batch_sessions, consent_record, ratings_to_sessions, synthetic_ratings

__all__ = ["bench_stream"]

_json = msgspec.json.Encoder()
REPO = Path(__file__).resolve().parents[2]


def bench_events(
    events: int, seed: int, users: int = 2000, items: int = 1000
) -> tuple[list[tuple[str, bytes]], int, list[str]]:
    """(user, envelope) messages holding exactly ``events`` events, in time order."""
    ratings = synthetic_ratings(users=users, items=items, events_target=max(events // 12, 50), seed=seed)
    sessions = []
    total = 0
    for session in ratings_to_sessions(ratings, seed=seed, heartbeat_ms=15_000):
        sessions.append(session[: events - total])
        total += len(sessions[-1])
        if total >= events:
            break
    messages = []
    for user, evs in batch_sessions(sessions, max_hold_ms=300_000):
        value = (
            _json.encode(evs[0])
            if len(evs) == 1
            else _json.encode({"schema": "playback.batch.v1", "events": evs})
        )
        messages.append((user, value))
    users_seen = sorted({u for u, _ in messages})
    return messages, total, users_seen


def _produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]]) -> dict[int, int]:
    """Send everything; the end offset (last + 1) per partition, from the broker's acks."""
    from kafka import KafkaProducer

    from pipeline.kafka.offsets import send_acked

    producer = KafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, batch_size=512 * 1024, max_request_size=8 * 1024 * 1024
    )
    try:
        return send_acked(producer, topic, records)
    finally:
        producer.close()


def _run_privrec(
    settings: Settings,
    messages: list[tuple[str, bytes]],
    users: list[str],
    total: int,
    workers: int,
    log_dir: Path,
) -> dict[str, Any]:
    import redis
    from kafka import KafkaAdminClient

    from pipeline.kafka.offsets import wait_committed
    from pipeline.kafka.topics import create_topics

    bootstrap = settings.kafka.bootstrap_servers or ""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    create_topics(admin, settings)
    r = redis.Redis.from_url(settings.redis.url.get_secret_value() if settings.redis.url else "")

    def start(tag: str) -> list[ChildProcess]:
        return [
            ChildProcess(
                settings, log_dir / f"worker-{tag}-{i}.log", ["worker", "--loglevel", "info"]
            ).start()
            for i in range(workers)
        ]

    def stop(children: list[ChildProcess]) -> None:
        for c in children:
            c.stop()

    # 1. consent first, applied by the workers, so no event waits on it
    procs = start("consent")
    try:
        wait_assigned(r, settings, workers)
        at = 1  # before every replayed event: consent is judged at event time too
        consent = [
            (
                u.encode(),
                _json.encode(
                    consent_record(
                        u,
                        {"analytics": True, "personalization": True, "advertising": False},
                        updated_at_ms=at,
                    )
                ),
            )
            for u in users
        ]
        ends = _produce(bootstrap, settings.topic(Topic.CONSENT), consent)
        if not wait_committed(admin, settings.app_id, settings.topic(Topic.CONSENT), ends, 120):
            raise TimeoutError("bench: workers did not apply consent")
    finally:
        stop(procs)
    clear_worker_stats(r, settings.app_id)

    # 2. the events, then workers that only process
    _produce(bootstrap, settings.topic(Topic.RAW), [(u.encode(), v) for u, v in messages])
    procs = start("run")
    try:

        def done() -> list[dict[str, Any]] | None:
            stats = worker_stats(r, settings.app_id)
            received = sum(s["counters"].get("received", 0) for s in stats)
            return stats if received >= total else None

        stats = wait_until(done, 900, "workers to process every event")
    finally:
        stop(procs)
    admin.close()
    first = min(s["first_at"] for s in stats if s.get("first_at"))
    last = max(s["last_at"] for s in stats if s.get("last_at"))
    seconds = max((last - first) / 1000, 1e-3)
    counters: dict[str, int] = {}
    for s in stats:
        for k, v in s["counters"].items():
            counters[k] = counters.get(k, 0) + v
    return {"seconds": seconds, "events_per_s": total / seconds, "counters": counters}


def _run_naive(
    bootstrap: str, events: list[dict[str, Any]], partitions: int, workdir: Path
) -> dict[str, Any]:
    topic = f"bench.naive.{uuid.uuid4().hex[:8]}"
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, partitions, 1)])
    admin.close()
    _produce(bootstrap, topic, [(e["user_id"].encode(), _json.encode(e)) for e in events])
    out = workdir / "naive.json"
    env = {
        **os.environ,
        "NAIVE_BROKER": f"kafka://{bootstrap}",
        "NAIVE_TOPIC": topic,
        "NAIVE_APP": f"naive-{uuid.uuid4().hex[:8]}",
        "NAIVE_OUT": str(out),
        "NAIVE_PARTITIONS": str(partitions),
        "PYTHONPATH": str(REPO),
    }
    log = open(workdir / "naive.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "agents.bench.naive_faust"],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def done() -> dict[str, Any] | None:
            try:
                data = json.loads(out.read_text())
            except (OSError, ValueError):
                return None
            return data if data["n"] >= len(events) else None

        data = wait_until(done, 900, "the naive Faust agent")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    seconds = max(data["last_at"] - data["first_at"], 1e-3)
    return {"seconds": seconds, "events_per_s": len(events) / seconds}


def _run_raw(bootstrap: str, topic: str, total: int, partitions: int) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def consume() -> tuple[int, float]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
            await consumer.seek_to_beginning()
            n = 0
            start = None
            loads = json.loads
            deadline = time.monotonic() + 300
            while n < total:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"bench: raw consumer read {n} of {total} events")
                batch = await consumer.getmany(timeout_ms=1000)
                if start is None and batch:
                    start = time.perf_counter()
                for records in batch.values():
                    for record in records:
                        doc = loads(record.value)
                        n += len(doc["events"]) if "events" in doc else 1
            return n, time.perf_counter() - (start or time.perf_counter())
        finally:
            await consumer.stop()

    n, seconds = asyncio.run(consume())
    return {"seconds": seconds, "events_per_s": n / max(seconds, 1e-6)}


def bench_stream(
    *, events: int, workers: int = 1, seed: int = 7, naive_events: int | None = None, partitions: int = 8
) -> dict[str, Any]:
    """Run all three on fresh embedded services; returns the JSON report."""
    with tempfile.TemporaryDirectory(prefix="privrec-bench-") as tmp:
        workdir = Path(tmp)
        services = EmbeddedServices(workdir / "state")
        records = services.up()
        try:
            settings = Settings(
                kafka={"bootstrap_servers": records["kafka"].url},
                redis={"url": records["redis"].url},
                topic_prefix=f"bench{uuid.uuid4().hex[:6]}.",
                app_id=f"privrec-bench-{uuid.uuid4().hex[:6]}",
                partitions=partitions,
                state_dir=workdir / "state",
                pseudonym={"keys": "bench:base64:" + base64.b64encode(os.urandom(32)).decode()},
                stream={"idle_close_ms": 600_000},
            )
            messages, total, users = bench_events(events, seed)
            ours = _run_privrec(settings, messages, users, total, workers, workdir)
            raw = _run_raw(records["kafka"].url, settings.topic(Topic.RAW), total, partitions)
            n_naive = min(naive_events or min(total, 20_000), total)
            flat = [e for _, v in messages for e in _flatten(v)][:n_naive]
            naive = _run_naive(records["kafka"].url, flat, partitions, workdir)
        finally:
            services.down()
    per_worker = ours["events_per_s"] / workers
    return {
        "events": total,
        "messages": len(messages),
        "events_per_message": round(total / len(messages), 1),
        "workers": workers,
        "privrec_events_per_s": round(per_worker),
        "privrec_total_events_per_s": round(ours["events_per_s"]),
        "naive_faust_events_per_s": round(naive["events_per_s"]),
        "naive_faust_events": n_naive,
        "raw_consume_events_per_s": round(raw["events_per_s"]),
        "ratio_vs_naive_faust": round(per_worker / naive["events_per_s"], 2),
        "ratio_vs_raw_consume": round(per_worker / raw["events_per_s"], 3),
        "privrec_counters": ours["counters"],
    }


def _flatten(value: bytes) -> list[dict[str, Any]]:
    doc = json.loads(value)
    return doc.get("events", [doc])
