"""The emitter SDK on the real broker: validated, keyed by user, batched, acknowledged."""

from __future__ import annotations

import json

import pytest
from kafka import KafkaProducer

from pipeline.emitter import Emitter
from pipeline.errors import ValidationFailed
from tests.integration.harness import read_all
from tests.support.events import playback_event

pytestmark = pytest.mark.integration


def test_emitter_batches_per_user_in_order(make_settings, make_topic, kafka_bootstrap):
    settings = make_settings()
    topic = make_topic(partitions=settings.partitions)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    emitter = Emitter(producer, topic, max_batch=4, linger_ms=60_000)
    users = ["ann", "bob", "cy"]
    sent: dict[str, list[str]] = {u: [] for u in users}
    for i in range(30):
        user = users[i % 3]
        ev = playback_event(i, user_id=user)
        emitter.emit(ev)
        sent[user].append(ev["event_id"])
    with pytest.raises(ValidationFailed) as err:
        emitter.emit(playback_event(99, user_id="ann", event_type="rewind"))
    assert err.value.reason == "schema_violation"
    emitter.close()

    records = read_all(settings, topic)
    got: dict[str, list[str]] = {u: [] for u in users}
    for key, value in records:
        doc = json.loads(value)
        events = doc["events"] if doc.get("schema") == "playback.batch.v1" else [doc]
        assert len(events) <= 4
        assert {e["user_id"] for e in events} == {key.decode()}
        got[key.decode()].extend(e["event_id"] for e in events)
    assert got == sent  # every valid event once, per-user order kept, the invalid one never sent
    assert emitter.sent_events == 30
    assert emitter.sent_messages == sum(-(-10 // 4) for _ in users)  # 10 events per user, 4 per envelope
