"""Assemble a replay: read what the topics hold, place the replay after the watermark, send.

``privrec replay`` parses and prints; this module reads the stream's state
(:func:`pipeline.replay_guard.read_replay_state`), shifts the ratings past every
partition's watermark unless told to keep their times, and runs
:func:`pipeline.replay.replay_ratings` with the consent guard.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agents.processes.clients import lag_consumer
from pipeline.kafka.end_offsets import probe_end_offsets
from pipeline.kafka.topics import Topic
from pipeline.replay import ReplayReport, close_windows, replay_ratings
from pipeline.replay_guard import ReplayState, read_replay_state, replay_start_ms, shift_ratings
from pipeline.services.connect import Endpoints, kafka_producer
from pipeline.settings import Settings
from pipeline.sources import Rating
from pipeline.sources.titles import save_titles
from pipeline.stream.effects import StreamConfig
from pipeline.windows.spec import WindowSpec

__all__ = ["ReplayPlan", "plan_replay", "run_replay"]


@dataclass
class ReplayPlan:
    """Where a replay goes in time and what it found on the topics."""

    ratings: list[Rating]
    state: ReplayState
    #: the first event time used (ms); None when the topics held no event and times are kept
    start_ms: int | None
    shift_s: int
    #: ratings older than the watermark's reach (only with kept times): the stream drops them as late
    behind_watermark: int


def read_state(settings: Settings, endpoints: Endpoints) -> ReplayState:
    consumer = lag_consumer(endpoints)
    try:
        return read_replay_state(
            consumer,
            raw_topic=settings.topic(Topic.RAW),
            consent_topic=settings.topic(Topic.CONSENT),
            erasure_topic=settings.topic(Topic.ERASURE),
            partitions=settings.partitions,
            config=StreamConfig.from_settings(settings),
            now_ms=int(time.time() * 1000),
            end_offsets=lambda tps: probe_end_offsets(
                endpoints.kafka_bootstrap, consumer.end_offsets(tps), **endpoints.kafka_options
            ),
        )
    finally:
        consumer.close()


def plan_replay(
    settings: Settings,
    ratings: Sequence[Rating],
    state: ReplayState,
    *,
    keep_times: bool = False,
    start_ms: int | None = None,
) -> ReplayPlan:
    """Shift ``ratings`` to ``start_ms`` (default: past every watermark); never with ``keep_times``."""
    spec = WindowSpec(size_ms=settings.stream.window_size_ms, grace_ms=settings.stream.window_grace_ms)
    safe = replay_start_ms(state.newest_event_ms, spec)
    if keep_times:
        behind = 0 if safe is None else sum(1 for r in ratings if r.timestamp_s * 1000 < safe)
        return ReplayPlan(list(ratings), state, None, 0, behind)
    target = start_ms if start_ms is not None else safe
    # whole windows (when the size is in whole seconds): the replay cuts the same windows as its source
    step_s = spec.size_ms // 1000 if spec.size_ms % 1000 == 0 else 1
    shifted, shift_s = shift_ratings(ratings, target, step_s)
    first = min((r.timestamp_s for r in shifted), default=None)
    return ReplayPlan(shifted, state, None if first is None else first * 1000, shift_s, 0)


def run_replay(
    settings: Settings,
    endpoints: Endpoints,
    plan: ReplayPlan,
    *,
    consent_spec: str,
    seed: int,
    titles: dict[str, str],
    rate: float | None,
    wait_consent: Any,
    close: bool,
    skip_messages: int = 0,
    progress: bool | None = None,
) -> ReplayReport:
    """Send the planned replay (and a close marker when ``close``); raises ReplayInterrupted on SIGINT."""
    save_titles(settings.state_dir, settings.app_id, titles)  # for `privrec recs`
    producer = kafka_producer(endpoints)
    try:
        report = replay_ratings(
            plan.ratings,
            producer=producer,
            raw_topic=settings.topic(Topic.RAW),
            consent_topic=settings.topic(Topic.CONSENT),
            consent_spec=consent_spec,
            seed=seed,
            titles=titles,
            rate=rate,
            # holding a user's events for up to the grace keeps every event on time (see batch_sessions)
            max_hold_ms=settings.stream.window_grace_ms,
            wait_consent=wait_consent,
            casefold_user_ids=settings.pseudonym.casefold_user_ids,
            state=plan.state,
            skip_messages=skip_messages,
            progress=progress,
        )
        if close:
            close_windows(producer, settings.topic(Topic.RAW), settings.partitions)
    finally:
        producer.close()
    return report
