"""The stream's ground truth on the real broker: a seeded dataset, what the worker must emit, and reads of it.

Shared by the stream tests and the fault tests (which check the same ground
truth under crashes and restarts).
"""

from __future__ import annotations

import json
from collections import defaultdict

from pipeline.replay import close_windows
from pipeline.sources import (
    batch_sessions,
    consent_mix,
    consent_record,
    ratings_to_sessions,
    synthetic_ratings,
)
from tests.integration.harness import produce, read_all, wait_processed

__all__ = [
    "CONSENT_AT",
    "HOUR",
    "dataset",
    "envelopes",
    "expected_windows",
    "interactions",
    "run_close",
    "send_consents",
    "wait_all_processed",
]

HOUR = 3_600_000


def dataset(users=40, events=2500, seed=5):
    ratings = synthetic_ratings(users=users, items=30, events_target=events, seed=seed)
    sessions = list(ratings_to_sessions(ratings, seed=seed))
    mix = consent_mix(sorted({r.user_id for r in ratings}), spec="0.6,0.2,0.2", seed=seed)
    return sessions, mix


def envelopes(sessions, hold_ms=600_000):
    out = []
    for user, evs in batch_sessions(sessions, max_hold_ms=hold_ms):
        value = json.dumps(
            evs[0] if len(evs) == 1 else {"schema": "playback.batch.v1", "events": evs}
        ).encode()
        out.append((user.encode(), value))
    return out


def expected_windows(sessions, mix, pz, size=HOUR):
    """Independent ground truth: group-by of every personalisation-consented event."""
    agg: dict = defaultdict(lambda: [0, 0, False, 0])
    for session in sessions:
        for e in session:
            purposes = mix[e["user_id"]]
            if not (purposes and purposes["analytics"] and purposes["personalization"]):
                continue
            start = e["event_time"] - e["event_time"] % size
            a = agg[(pz.pseudonym(e["user_id"]), e["content_id"], start)]
            a[0] += e["watched_ms"]
            a[1] += e["event_type"] == "play"
            a[2] = a[2] or e["event_type"] == "complete"
            a[3] += 1
    return {k: {"watched_ms": v[0], "plays": v[1], "completed": v[2], "events": v[3]} for k, v in agg.items()}


def interactions(settings):
    got: dict = {}
    dupes = 0
    for _, value in read_all(settings, settings.topic("interactions")):
        rec = json.loads(value)
        key = (rec["user"], rec["content_id"], rec["window_start"])
        body = {k: rec[k] for k in ("watched_ms", "plays", "completed", "events")}
        assert rec["window_end"] == rec["window_start"] + HOUR
        if key in got:
            assert got[key] == body, "a re-emitted window must be identical"
            dupes += 1
        got[key] = body
    return got, dupes


CONSENT_AT = 1_600_000_000_000
"""When test consent was given: before every test event (consent is judged at event time too)."""


def send_consents(settings, mix, at: int = CONSENT_AT):
    records = [
        (u.encode(), json.dumps(consent_record(u, p, updated_at_ms=at)).encode())
        for u, p in mix.items()
        if p is not None
    ]
    ends = produce(settings, settings.topic("consent"), records)
    wait_processed(settings, settings.topic("consent"), ends)


def run_close(settings):
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers)
    close_windows(producer, settings.topic("playback.raw"), settings.partitions)
    producer.close()
    ends = {p: 0 for p in range(settings.partitions)}
    return ends


def wait_all_processed(settings, ends_raw):
    wait_processed(settings, settings.topic("playback.raw"), ends_raw, timeout=180)
