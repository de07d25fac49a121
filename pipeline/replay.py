"""Replays: ratings (or the synthetic source) to consent records and playback envelopes.

Consent records go first and, when a worker group is named, the replay waits
until the workers have applied them, so no event is judged before its user's
consent is known. Events go out in event-time order as one-user envelopes.

Consent is judged at each event's time as well as now (see
:mod:`pipeline.privacy.consent_history`), so a replay of historical data dates
each viewer's consent :data:`CONSENT_LEAD_MS` before their first event
(:func:`consent_times`): the replayed history starts before it is needed, and
a newer choice already held by the workers stays in force.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from pipeline.errors import ReplayInterrupted
from pipeline.kafka.offsets import send_acked
from pipeline.privacy.identity import DEFAULT_CASEFOLD_USER_IDS, user_key
from pipeline.replay_guard import ReplayState, consent_decision
from pipeline.sources import (
    Rating,
    batch_sessions,
    consent_mix,
    consent_record,
    ratings_to_sessions,
)
from pipeline.stream.control import CONTROL_KEY, Control, encode_control

__all__ = ["CONSENT_LEAD_MS", "ReplayReport", "close_windows", "consent_times", "replay_ratings"]

_json = msgspec.json.Encoder()

CONSENT_LEAD_MS = 60_000
"""How long before a viewer's first replayed event their replayed consent is dated."""


@dataclass
class ReplayReport:
    """What a replay sent (counts only)."""

    users: int = 0
    consent_records: int = 0
    consent_applied: bool | None = None
    events: int = 0
    messages: int = 0
    seconds: float = 0.0
    consent: dict[str, int] = field(default_factory=dict)
    #: of ``events``/``messages``: the batches ``divert`` took instead of Kafka
    diverted_events: int = 0
    diverted_messages: int = 0
    #: consent records not sent, by :data:`~pipeline.replay_guard.ConsentDecision` (never ``send``)
    consent_refused: dict[str, int] = field(default_factory=dict)
    #: leading messages not sent (``skip_messages``: resuming an interrupted replay)
    skipped_messages: int = 0
    #: stopped by SIGINT: ``events``/``messages`` are what was acknowledged before it
    interrupted: bool = False


class Progress:
    """A minimal stderr progress line (only on a terminal)."""

    def __init__(self, total: int, label: str, enabled: bool | None = None) -> None:
        self.total, self.label = total, label
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._last = 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if self.enabled and (now - self._last > 0.2 or done >= self.total):
            self._last = now
            pct = 100 * done / max(self.total, 1)
            sys.stderr.write(f"\r{self.label}: {done:,}/{self.total:,} events ({pct:5.1f}%)")
            if done >= self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def close_windows(producer: Any, topic: str, partitions: int) -> str:
    """Send a ``close_windows`` marker to every partition of ``topic``; returns its id."""
    import uuid

    marker = Control(command="close_windows", id=uuid.uuid4().hex, at=int(time.time() * 1000))
    value = encode_control(marker)
    for p in range(partitions):
        producer.send(topic, key=CONTROL_KEY, value=value, partition=p)
    producer.flush()
    return marker.id


def replay_ratings(
    ratings: Sequence[Rating],
    *,
    producer: Any,
    raw_topic: str,
    consent_topic: str,
    consent_spec: str,
    seed: int = 7,
    titles: dict[str, str] | None = None,
    rate: float | None = None,
    max_hold_ms: int = 60_000,
    heartbeat_ms: int | None = None,
    wait_consent: Callable[[dict[int, int]], bool] | None = None,
    progress: bool | None = None,
    casefold_user_ids: bool = DEFAULT_CASEFOLD_USER_IDS,
    divert: Callable[[str, list[dict[str, Any]]], bool] | None = None,
    state: ReplayState | None = None,
    skip_messages: int = 0,
) -> ReplayReport:
    """Send consent records, then every rating as a playback session.

    Both are keyed by the canonical user id (``casefold_user_ids`` as
    configured), the key the stream checks.

    ``wait_consent`` receives the consent topic's end offsets after the
    consent records were sent and returns whether the workers applied them.
    ``divert(user_id, events)`` sees each event batch first; a batch it takes
    (returns True) is not sent here (the demo hands some viewers' batches to
    the HTTP gateway, as their clients would). Consent is sent for everyone
    whose record :func:`~pipeline.replay_guard.consent_decision` allows given
    ``state`` (what the topics already hold; None: everyone).

    The first ``skip_messages`` messages are not sent (resuming an interrupted
    replay with the same source, seed and times). A ``KeyboardInterrupt``
    flushes what was handed to the producer and raises
    :class:`~pipeline.errors.ReplayInterrupted` with the report so far.
    """
    report = ReplayReport()
    started = time.monotonic()
    users = sorted({r.user_id for r in ratings})
    report.users = len(users)
    mix = consent_mix(users, spec=consent_spec, seed=seed)
    dated = consent_times(ratings)
    consent: list[tuple[bytes | None, bytes | None]] = []
    for user in users:
        purposes = mix[user]
        kind = (
            "none"
            if purposes is None
            else ("personalization" if purposes["personalization"] else "analytics_only")
        )
        report.consent[kind] = report.consent.get(kind, 0) + 1
        if purposes is None:
            continue
        key = user_key(user, casefold=casefold_user_ids)
        decision = "send" if state is None else consent_decision(key, dated[user], state)
        if decision != "send":
            report.consent_refused[decision] = report.consent_refused.get(decision, 0) + 1
            continue
        record = consent_record(user, purposes, updated_at_ms=dated[user])
        consent.append((key, _json.encode(record)))
    report.consent_records = len(consent)
    ends = send_acked(producer, consent_topic, consent)
    if wait_consent is not None and ends:
        report.consent_applied = wait_consent(ends)

    extra = {} if heartbeat_ms is None else {"heartbeat_ms": heartbeat_ms}
    sessions = ratings_to_sessions(ratings, seed=seed, titles=titles, **extra)
    total = _estimate_events(ratings)
    bar = Progress(total, "replay", progress)
    try:
        _send_sessions(
            batch_sessions(sessions, max_hold_ms=max_hold_ms),
            report,
            producer=producer,
            raw_topic=raw_topic,
            rate=rate,
            started=started,
            bar=bar,
            total=total,
            casefold_user_ids=casefold_user_ids,
            divert=divert,
            skip_messages=skip_messages,
        )
    except KeyboardInterrupt:
        producer.flush()
        report.interrupted = True
        report.seconds = time.monotonic() - started
        raise ReplayInterrupted(report) from None
    producer.flush()
    bar.total = report.events
    bar.update(report.events)
    report.seconds = time.monotonic() - started
    return report


def _send_sessions(
    batches: Iterable[tuple[str, list[dict[str, Any]]]],
    report: ReplayReport,
    *,
    producer: Any,
    raw_topic: str,
    rate: float | None,
    started: float,
    bar: Progress,
    total: int,
    casefold_user_ids: bool,
    divert: Callable[[str, list[dict[str, Any]]], bool] | None,
    skip_messages: int,
) -> None:
    """Send each user's batch as one message; ``report`` counts what was handed over."""
    for user, events in batches:
        if report.skipped_messages < skip_messages:
            report.skipped_messages += 1
            continue
        if divert is not None and divert(user, events):
            report.events += len(events)
            report.messages += 1
            report.diverted_events += len(events)
            report.diverted_messages += 1
            continue
        value = (
            _json.encode(events[0])
            if len(events) == 1
            else _json.encode({"schema": "playback.batch.v1", "events": events})
        )
        producer.send(raw_topic, key=user_key(user, casefold=casefold_user_ids), value=value)
        report.events += len(events)
        report.messages += 1
        if rate:
            ahead = report.events / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        if report.messages % 256 == 0:
            bar.update(min(report.events, total))


def consent_times(ratings: Iterable[Rating], lead_ms: int = CONSENT_LEAD_MS) -> dict[str, int]:
    """``user_id -> updated_at`` for replayed consent: ``lead_ms`` before the user's first event.

    A session's first event is at its rating's timestamp and the rest are later
    (:mod:`pipeline.sources.sessions`), so the earliest rating bounds them all.
    """
    first: dict[str, int] = {}
    for r in ratings:
        t = r.timestamp_s * 1000
        if r.user_id not in first or t < first[r.user_id]:
            first[r.user_id] = t
    return {user: t - lead_ms for user, t in first.items()}


def _estimate_events(ratings: Iterable[Rating]) -> int:
    import numpy as np

    from pipeline.sources import expected_events_per_session

    weights = np.array([r.weight for r in ratings], dtype=float)
    if weights.size == 0:
        return 0
    return int(expected_events_per_session(weights / max(weights.max(), 1e-9)).sum())
