"""The replay tool without Kafka: consent dated before each viewer's first event, accepted by the stream."""

from __future__ import annotations

import json
from collections import Counter
from types import SimpleNamespace

from pipeline.replay import CONSENT_LEAD_MS, consent_times, replay_ratings
from pipeline.sources import Rating, synthetic_ratings
from tests.support.stream import make


class FakeProducer:
    """Records every send, in order; acknowledges at once with increasing offsets."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []

    def send(self, topic, key=None, value=None, partition=None):
        self.sent.append((topic, key, value))
        meta = SimpleNamespace(partition=0, offset=len(self.sent) - 1)
        return SimpleNamespace(get=lambda timeout=None: meta)

    def flush(self, timeout=None) -> None:
        pass


def replay(ratings) -> FakeProducer:
    producer = FakeProducer()
    replay_ratings(
        ratings,
        producer=producer,
        raw_topic="raw",
        consent_topic="consent",
        consent_spec="0.6,0.2,0.2",
        seed=3,
    )
    return producer


def events_of(value: bytes) -> list[dict]:
    doc = json.loads(value)
    return doc["events"] if doc.get("schema") == "playback.batch.v1" else [doc]


def test_consent_times_precede_each_users_first_rating():
    ratings = [Rating("a", "c1", 1.0, 200), Rating("a", "c2", 1.0, 100), Rating("b", "c1", 1.0, 50)]
    assert consent_times(ratings) == {"a": 100_000 - CONSENT_LEAD_MS, "b": 50_000 - CONSENT_LEAD_MS}


def test_replay_writes_each_viewers_consent_before_their_first_event():
    producer = replay(synthetic_ratings(users=30, items=20, events_target=600, seed=5))
    consent = {
        json.loads(v)["user_id"]: json.loads(v)["updated_at"] for t, _k, v in producer.sent if t == "consent"
    }
    first: dict[str, int] = {}
    for topic, _key, value in producer.sent:
        if topic == "raw":
            for e in events_of(value):
                first[e["user_id"]] = min(first.get(e["user_id"], e["event_time"]), e["event_time"])
    assert consent and set(consent) <= set(first)
    assert all(consent[u] < first[u] for u in consent)


def test_the_stream_judges_a_replay_by_its_consent_mix_alone():
    """Consent first, then events: nothing is refused for its event time."""
    producer = replay(synthetic_ratings(users=30, items=20, events_target=600, seed=5))
    proc, table = make(), {}
    mix: Counter[str] = Counter()
    personal: set[str] = set()
    for offset, (topic, key, value) in enumerate(producer.sent):
        if topic == "consent":
            record = json.loads(value)
            if record["purposes"]["personalization"]:
                personal.add(record["user_id"])
            table.update(proc.on_consent(0, offset, key, value, table.get).consent)
        else:
            proc.on_playback(0, offset, key, value, table.get)
            mix["personal" if key.decode() in personal else "other"] += len(events_of(value))
    assert not any(k.endswith("at_event_time") for k in proc.counters)
    assert proc.counters["windowed"] + proc.counters.get("late", 0) == mix["personal"] > 0
