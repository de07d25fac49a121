"""``privrec bench erase``: request-to-receipt time of erasures while a replay loads the pipeline.

In a scratch namespace (own topic prefix and app id, topics deleted after):

1. workers start; a synthetic history (every user consenting to
   personalisation) is replayed, its windows closed;
2. a continuous trainer starts (in this process) and publishes a model;
3. a load thread replays more playback events of the same users, as fast as
   the broker takes them, for the whole measurement;
4. erasure requests for distinct users who have recommendations are sent one
   every ``interval_s``; each is timed from just before its send to the moment
   its ``receipt.v1`` is read back from the ``receipts`` topic.

The JSON reports p50/p95/max of those end-to-end times, the per-stage times
from the receipts (request to the end of each stage), and how much load ran
meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.errors import ServiceUnavailable
from pipeline.kafka.topics import Topic
from pipeline.settings import Settings

__all__ = ["bench_erase"]

log = logging.getLogger(__name__)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_s": round(statistics.median(values), 3),
        "p95_s": round(_quantile(values, 0.95), 3),
        "max_s": round(max(values), 3),
    }


class _Load:
    """Replays envelopes into playback.raw in a thread until stopped (cycling if it runs out)."""

    def __init__(
        self, producer: Any, topic: str, messages: list[tuple[str, bytes]], per_message: float, rate: float
    ) -> None:
        self.producer, self.topic, self.messages = producer, topic, messages
        self.per_message = per_message
        self.messages_per_s = rate / per_message
        self.sent_messages = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="bench-erase-load", daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        i = 0
        while not self.stop.is_set():
            user, value = self.messages[i % len(self.messages)]
            self.producer.send(self.topic, key=user.encode(), value=value)
            self.sent_messages += 1
            i += 1
            ahead = start + i / self.messages_per_s - time.monotonic()
            if ahead > 0:  # paced: a replay at a steady rate, not an ever-growing backlog
                self.stop.wait(ahead)

    @property
    def sent_events(self) -> int:
        return round(self.sent_messages * self.per_message)

    def __enter__(self) -> _Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self.producer.flush()


def bench_erase(
    settings: Settings,
    *,
    requests: int = 20,
    users: int = 1000,
    history_events: int = 30_000,
    load_events: int = 60_000,
    load_rate: float = 5_000.0,
    interval_s: float = 0.5,
    workers: int = 1,
    seed: int = 11,
    timeout_s: float = 120.0,
) -> dict[str, Any]:
    from agents.bench.stream import bench_events
    from agents.pipeline_run import PipelineRun
    from agents.processes.scratch import drop_scratch_topics
    from pipeline.keys import ensure_dev_key, pseudonymizer
    from pipeline.services.connect import kafka_admin, redis_client, resolve
    from pipeline.serving.layout import Layout
    from pipeline.sources import synthetic_ratings

    run_id = uuid.uuid4().hex[:8]
    s = _scratch(settings, run_id)
    ensure_dev_key(s)
    endpoints = resolve(s)
    redis = redis_client(endpoints)
    items = max(50, users // 2)
    ratings = synthetic_ratings(users=users, items=items, events_target=history_events, seed=seed)
    load, total, _ = bench_events(load_events, seed + 1, users=users, items=items)
    events_per_message = total / max(1, len(load))
    result: dict[str, Any] = {
        "requests": requests,
        "workers": workers,
        "interval_s": interval_s,
        "load_rate_target": load_rate,
    }
    t_start = time.monotonic()
    try:
        with PipelineRun(s, Path(s.state_dir) / "logs" / f"bench-erase-{run_id}", workers=workers) as run:
            replay = run.replay(ratings, consent="1,0,0", seed=seed, progress=False)
            run.close_and_wait()
            result["history_events"] = replay.events
            with _trainer_with_a_model(s, redis, Layout.from_settings(s)) as trainer:
                known = set(trainer.model.user_ids) if trainer.model else set()
                result["model_users"] = len(known)
                victims = _victims(sorted({r.user_id for r in ratings}), pseudonymizer(s), known, requests)
                measured = _measure(
                    s, endpoints, victims, load, events_per_message, load_rate, interval_s, timeout_s
                )
                result.update(measured)
                result["trainer_counters"] = {
                    k: v for k, v in trainer.counters.items() if k.startswith(("erasure", "receipt"))
                }
    finally:
        redis.close()
        drop_scratch_topics(kafka_admin(endpoints), s)
        shutil.rmtree(Path(s.state_dir) / "models" / s.app_id, ignore_errors=True)
    result["seconds_total"] = round(time.monotonic() - t_start, 1)
    return result


def _scratch(settings: Settings, run_id: str) -> Settings:
    """The settings of a scratch namespace: its own topic prefix and app id (so its own models)."""
    return settings.model_copy(
        update={
            "topic_prefix": f"{settings.topic_prefix}bench-erase-{run_id}.",
            "app_id": f"{settings.app_id}-bench-erase-{run_id}",
            # erasure needs a model to erase from, whether or not it beats popularity on this world
            "trainer": settings.trainer.model_copy(update={"gate_popularity": False}),
        }
    )


def _victims(user_ids: list[str], pz: Any, known: set[str], requests: int) -> list[str]:
    """Up to ``requests`` users with recommendations (pseudonym in the model), spread over the ids."""
    victims = [u for u in user_ids if pz.pseudonym(u) in known]
    return victims[:: max(1, len(victims) // requests)][:requests]


@contextlib.contextmanager
def _trainer_with_a_model(s: Settings, redis: Any, layout: Any) -> Iterator[Any]:
    """A continuous trainer in a thread of this process, once it has published a model; stopped after."""
    from agents.processes.trainer import close_trainer, make_trainer
    from agents.procs import wait_until
    from pipeline.serving.publish import live_version

    trainer = make_trainer(s)
    stop = threading.Event()
    thread = threading.Thread(target=trainer.run, args=(stop,), name="bench-erase-trainer")
    thread.start()
    try:
        # the trainer publishes to Redis a moment before it holds the model: wait for both
        with contextlib.suppress(TimeoutError):
            wait_until(
                lambda: (trainer.model is not None and live_version(redis, layout)) or not thread.is_alive(),
                300,
                "a published model the trainer holds",
            )
        if trainer.model is None or live_version(redis, layout) is None:
            raise ServiceUnavailable("bench erase: the trainer published no model")
        yield trainer
    finally:
        stop.set()
        thread.join(timeout=120)
        close_trainer(trainer)


def _measure(
    s: Settings,
    endpoints: Any,
    victims: list[str],
    load_messages: list[tuple[str, bytes]],
    events_per_message: float,
    load_rate: float,
    interval_s: float,
    timeout_s: float,
) -> dict[str, Any]:
    from agents.processes.clients import receipt_watcher
    from pipeline.rights.requests import send_erasure
    from pipeline.services.connect import kafka_producer

    watcher = receipt_watcher(s, endpoints)
    requester = kafka_producer(endpoints, client_id="privrec-bench-erase")
    loader = _Load(
        kafka_producer(endpoints, client_id="privrec-bench-load"),
        s.topic(Topic.RAW),
        load_messages,
        events_per_message,
        load_rate,
    )
    sent_at: dict[str, float] = {}
    try:
        with loader:
            time.sleep(2.0)  # let the load build up before the first request
            t0, sent0 = time.monotonic(), loader.sent_events
            for user in victims:
                before = time.monotonic()
                request_id, _ = send_erasure(requester, s, user)
                sent_at[request_id] = before
                while time.monotonic() < before + interval_s:
                    watcher.poll(timeout_ms=50)
            complete = watcher.wait(list(sent_at), timeout_s)
            load_s = time.monotonic() - t0
            load_events = loader.sent_events - sent0
        latencies = [watcher.seen_at[r] - t for r, t in sent_at.items() if r in watcher.seen_at]
        stages: dict[str, list[float]] = {}
        for r in sent_at:
            receipt = watcher.receipts.get(r)
            if receipt is None:
                continue
            for stage, at in receipt.stages.items():
                stages.setdefault(stage, []).append((at - receipt.requested_at) / 1000)
        out: dict[str, Any] = {
            "requests": len(sent_at),
            "receipts": len(latencies),
            "complete": complete,
            **(_summary(latencies) if latencies else {}),
            "stages": {k: _summary(v) for k, v in stages.items()},
            "load_events_sent": load_events,
            "load_events_per_s": round(load_events / load_s) if load_s else 0,
        }
        return out
    finally:
        requester.close()
        loader.producer.close()
        watcher.consumer.close()
