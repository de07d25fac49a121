"""DP trending on the real broker and Redis: ledger across restarts, the reader, ``privrec trending``."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
import redis as redis_lib

from agents.procs import settings_env
from agents.trending import ledger_store, release
from pipeline.dp.bounding import day_start_ms
from pipeline.dp.ledger import BudgetExceeded, spent_by_day
from pipeline.kafka.topics import create_topics
from pipeline.keys import pseudonymizer
from pipeline.services.connect import kafka_admin, kafka_producer, resolve
from pipeline.serving.layout import Layout
from pipeline.serving.reader import Reader
from pipeline.settings import Settings
from pipeline.wire import encode
from pipeline.wire.outbound import Purposes, RedactedBatch, RedactedEvent
from tests.cli import privrec

DAY = "2024-03-05"
T0 = day_start_ms(DAY) + 3_600_000


def _event(user: str, content: str, analytics: bool = True) -> RedactedEvent:
    return RedactedEvent(
        user=user,
        content_id=content,
        event_type="play",
        position_ms=0,
        duration_ms=1000,
        watched_ms=0,
        event_time=T0,
        device_class="tv",
        country="DE",
        purposes=Purposes(analytics=analytics, personalization=True, advertising=False),
    )


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    s: Settings = make_settings(partitions=2)
    admin = kafka_admin(resolve(s))
    try:
        create_topics(admin, s)
    finally:
        admin.close()
    producer = kafka_producer(resolve(s))
    topic = s.topic("playback.redacted")
    for v in range(300):  # 300 analytics viewers of two big titles, a heavy viewer, a rare title
        user = f"k1.{v:032x}"
        events = [_event(user, "big-1"), _event(user, "big-2")] * 3
        producer.send(topic, key=user.encode(), value=encode(RedactedBatch(events)))
    for v in range(300, 600):  # no analytics consent: never counted
        user = f"k1.{v:032x}"
        producer.send(topic, key=user.encode(), value=encode(_event(user, "hidden", analytics=False)))
    producer.send(topic, key=b"k1." + b"f" * 32, value=encode(_event("k1." + "f" * 32, "rare-title")))
    producer.flush()
    producer.close()
    return s


def test_release_is_recorded_served_and_refused_across_a_restart(settings: Settings) -> None:
    endpoints = resolve(settings)
    client = redis_lib.Redis.from_url(endpoints.redis_url)
    reader = Reader(client, pseudonymizer(settings), Layout.from_settings(settings))
    before = reader.get("cold-start-viewer")
    assert before.source == "none" and before.items == []

    record = release(settings, DAY, endpoints=endpoints)
    titles = [i.content_id for i in record.items]
    assert set(titles) == {"big-1", "big-2"}  # rare and non-analytics titles stay hidden
    assert record.status == "released" and record.threshold == 155 and record.scale == 10.0

    served = reader.get("cold-start-viewer", n=5)
    assert served.source == "trending_dp" and not served.personalized
    assert (served.trending_day, served.trending_epsilon) == (DAY, 1.0)
    assert sorted(i.content_id for i in served.items) == sorted(titles)
    body = msgspec.json.decode(msgspec.json.encode(served))
    assert body["source"] == "trending_dp" and body["trending_day"] == DAY

    # a new ledger instance (a restarted process) reads the topic and refuses to overspend
    fresh = ledger_store(settings, endpoints)
    try:
        records = fresh.read()
    finally:
        fresh.close()
    assert spent_by_day(records) == {DAY: (1.0, 1e-6)}
    assert [r.status for r in records] == ["reserved", "released"]
    with pytest.raises(BudgetExceeded):
        release(settings, DAY, endpoints=endpoints)
    client.close()


def test_privrec_trending_cli(settings: Settings) -> None:
    env = settings_env(settings)
    empty = privrec("trending", "--day", DAY, "--json", env=env)
    assert empty.returncode == 0, empty.stderr
    view = json.loads(empty.stdout)
    assert view["items"] == [] and view["epsilon_spent"] == 0 and view["budget_left"] == 1.0

    done = privrec("trending", "--release", "--day", DAY, "--json", "--n", "1", env=env)
    assert done.returncode == 0, done.stderr
    view = json.loads(done.stdout)
    assert {"day", "items", "epsilon_spent", "delta", "epsilon_budget", "budget_left"} <= set(view)
    assert view["day"] == DAY and len(view["items"]) == 1
    assert view["items"][0]["content_id"] in {"big-1", "big-2"}
    assert (view["epsilon_spent"], view["delta"], view["budget_left"]) == (1.0, 1e-6, 0.0)

    refused = privrec("trending", "--release", "--day", DAY, env=env)
    assert refused.returncode == 2
    assert "budget" in refused.stderr and DAY in refused.stderr

    text = privrec("trending", env=env)
    assert text.returncode == 0 and f"trending {DAY}" in text.stdout and "left 0" in text.stdout
