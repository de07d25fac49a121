"""Drive the whole stream the way an operator would: workers, replay, close, wait.

Shared by ``privrec demo``, ``privrec eval`` and the benchmarks: real
``privrec worker`` processes on the configured (or embedded) broker, a replay
through the emitter's wire format, a ``close_windows`` marker, and a wait on the
workers' committed offsets, so "done" means the broker has every window.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agents.procs import ChildProcess, clear_worker_stats, wait_assigned, wait_until, worker_stats
from pipeline.errors import ServiceUnavailable
from pipeline.kafka.end_offsets import probe_end_offsets
from pipeline.kafka.offsets import wait_committed
from pipeline.kafka.topics import Topic, create_topics
from pipeline.replay import ReplayReport, close_windows, replay_ratings
from pipeline.services.connect import (
    Endpoints,
    kafka_admin,
    kafka_consumer,
    kafka_producer,
    redis_client,
    resolve,
)
from pipeline.settings import Settings
from pipeline.sources import Rating
from pipeline.sources.titles import save_titles

__all__ = ["PipelineRun", "sum_counters"]

log = logging.getLogger(__name__)


def sum_counters(stats: Sequence[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in stats:
        for name, value in s.get("counters", {}).items():
            out[name] = out.get(name, 0) + int(value)
    return out


class PipelineRun:
    """Workers running against one deployment for the duration of a ``with`` block."""

    def __init__(self, settings: Settings, log_dir: Path, *, workers: int = 1) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.n_workers = workers
        self.endpoints: Endpoints = resolve(settings)
        self.redis = redis_client(self.endpoints)
        self.children: list[ChildProcess] = []

    # -- lifecycle -----------------------------------------------------------------

    def __enter__(self) -> PipelineRun:
        admin = kafka_admin(self.endpoints)
        try:
            create_topics(admin, self.settings)
        finally:
            admin.close()
        clear_worker_stats(self.redis, self.settings.app_id)
        args = ["worker", "--loglevel", "info"]
        self.children = [
            ChildProcess(self.settings, self.log_dir / f"worker-{i}.log", args).start()
            for i in range(self.n_workers)
        ]
        try:
            wait_assigned(self.redis, self.settings, self.n_workers, timeout=180)
        except TimeoutError:
            self.stop()
            raise ServiceUnavailable(f"workers did not join within 180 s (logs in {self.log_dir})") from None
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        for child in self.children:
            child.stop()
        self.children = []

    # -- data ------------------------------------------------------------------------

    def replay(
        self,
        ratings: Sequence[Rating],
        *,
        consent: str,
        seed: int,
        titles: dict[str, str] | None = None,
        progress: bool | None = None,
        heartbeat_ms: int | None = None,
        divert: Callable[[str, list[dict[str, Any]]], bool] | None = None,
    ) -> ReplayReport:
        if titles:
            save_titles(self.settings.state_dir, self.settings.app_id, titles)  # for `privrec recs`
        producer = kafka_producer(self.endpoints)
        try:
            return replay_ratings(
                ratings,
                producer=producer,
                raw_topic=self.settings.topic(Topic.RAW),
                consent_topic=self.settings.topic(Topic.CONSENT),
                consent_spec=consent,
                seed=seed,
                titles=titles,
                max_hold_ms=self.settings.stream.window_grace_ms,
                heartbeat_ms=heartbeat_ms,
                wait_consent=self._wait_consent,
                progress=progress,
                casefold_user_ids=self.settings.pseudonym.casefold_user_ids,
                divert=divert,
            )
        finally:
            producer.close()

    def send_raw(self, records: Sequence[tuple[bytes | None, bytes]]) -> None:
        """Send raw messages as a client would (e.g. malformed ones, to show the DLQ)."""
        producer = kafka_producer(self.endpoints)
        try:
            for key, value in records:
                producer.send(self.settings.topic(Topic.RAW), key=key, value=value)
            producer.flush()
        finally:
            producer.close()

    def close_and_wait(self, timeout_s: float = 300.0) -> None:
        """Close every window after all events sent so far; wait until the workers passed it."""
        producer = kafka_producer(self.endpoints)
        try:
            close_windows(producer, self.settings.topic(Topic.RAW), self.settings.partitions)
        finally:
            producer.close()
        self.wait_processed(timeout_s)

    def wait_processed(self, timeout_s: float = 300.0) -> None:
        """Wait until the workers committed past the current end of ``playback.raw``."""
        topic = self.settings.topic(Topic.RAW)
        ends = self.true_end_offsets(topic)
        admin = kafka_admin(self.endpoints)
        try:
            if not wait_committed(admin, self.settings.app_id, topic, ends, timeout_s):
                raise ServiceUnavailable(
                    f"workers did not process {topic} within {timeout_s:g} s (logs in {self.log_dir})"
                )
        finally:
            admin.close()

    def true_end_offsets(self, topic: str) -> dict[int, int]:
        from kafka import TopicPartition

        consumer = kafka_consumer(self.endpoints, "end-offsets")
        try:
            tps = [TopicPartition(topic, p) for p in range(self.settings.partitions)]
            reported = consumer.end_offsets(tps)
        finally:
            consumer.close()
        ends = probe_end_offsets(self.endpoints.kafka_bootstrap, reported, **self.endpoints.kafka_options)
        return {tp.partition: end for tp, end in ends.items()}

    def counters(self, timeout_s: float = 30.0) -> dict[str, int]:
        """Summed worker counters, from stats every live worker published after this call.

        Call it once :meth:`wait_processed` returned: stats published later include
        everything the workers committed.
        """
        since = time.time() * 1000
        app_id = self.settings.app_id

        def fresh() -> list[dict[str, Any]] | None:
            stats = worker_stats(self.redis, app_id)
            live = [s for s in stats if s.get("assigned")]
            return live if live and all(s["at"] > since for s in live) else None

        try:
            return sum_counters(wait_until(fresh, timeout_s, "workers to publish their counters"))
        except TimeoutError:
            log.warning("workers did not publish fresh counters within %.0f s", timeout_s)
            return sum_counters(worker_stats(self.redis, app_id))

    def _wait_consent(self, ends: dict[int, int]) -> bool:
        admin = kafka_admin(self.endpoints)
        try:
            return wait_committed(
                admin, self.settings.app_id, self.settings.topic(Topic.CONSENT), ends, 120.0
            )
        finally:
            admin.close()
