"""The privacy stream on the real broker: ground truth, consent classes, DLQ, crash, scale-out.

Each test runs real `privrec worker` processes (Faust) against the session's
broker with its own topic prefix and consumer group.
"""

from __future__ import annotations

import json
import signal
import time
from collections import defaultdict

import pytest
from kafka import KafkaAdminClient

from pipeline.kafka.topics import create_topics
from pipeline.keys import pseudonymizer
from pipeline.replay import close_windows
from tests.integration.harness import (
    Worker,
    produce,
    read_all,
    wait_assigned,
    wait_for,
    wait_processed,
    worker_stats,
)
from tests.integration.stream_harness import (
    dataset,
    envelopes,
    expected_windows,
    interactions,
    send_consents,
    wait_all_processed,
)
from tests.support.stream import event

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOUR = 3_600_000


@pytest.fixture
def stream_settings(make_settings, kafka_bootstrap):
    settings = make_settings(partitions=4, stream={"idle_close_ms": 600_000, "max_message_bytes": 100_000})
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    create_topics(admin, settings)
    admin.close()
    return settings


@pytest.fixture
def workers(stream_settings, tmp_path):
    started: list[Worker] = []

    def start(name: str = "w") -> Worker:
        w = Worker(stream_settings, tmp_path / "logs", name).start()
        started.append(w)
        return w

    yield start
    for w in started:
        w.kill()


def test_ground_truth_and_consent_classes(stream_settings, workers):
    s = stream_settings
    pz = pseudonymizer(s)
    sessions, mix = dataset()
    workers()
    wait_assigned(s, 1)
    send_consents(s, mix)
    msgs = envelopes(sessions)
    ends = produce(s, s.topic("playback.raw"), msgs)
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=s.kafka.bootstrap_servers)
    close_windows(producer, s.topic("playback.raw"), s.partitions)
    producer.close()
    ends = {p: o + 1 for p, o in ends.items()}  # the close marker follows the events
    wait_all_processed(s, ends)

    expected = expected_windows(sessions, mix, pz)
    got, dupes = interactions(s)
    assert dupes == 0  # without a crash each window appears exactly once
    assert got == expected

    by_class = defaultdict(set)
    for u, p in mix.items():
        by_class["none" if p is None else "personalization" if p["personalization"] else "analytics"].add(
            pz.pseudonym(u)
        )
    assert all(by_class.values())
    users_in_interactions = {k[0] for k in got}
    assert users_in_interactions <= by_class["personalization"]
    assert not users_in_interactions & by_class["analytics"]
    redacted = read_all(s, s.topic("playback.redacted"))
    redacted_users = {k.decode() for k, _ in redacted}
    assert by_class["analytics"] <= redacted_users  # analytics-only users are in the redacted stream
    assert not redacted_users & by_class["none"]  # no-consent users appear nowhere downstream
    blob = b"".join(v for _, v in redacted)
    for u in list(mix)[:10]:
        assert u.encode() not in blob  # raw ids never leave the raw topic
    stats = worker_stats(s)
    counters = stats[0]["counters"]
    assert counters["dropped:no_consent_record"] > 0 and counters["analytics_only"] > 0


def test_revoked_user_later_events_excluded(stream_settings, workers):
    s = stream_settings
    pz = pseudonymizer(s)
    workers()
    wait_assigned(s, 1)
    send_consents(
        s,
        {
            "vic": {"analytics": True, "personalization": True, "advertising": False},
            "bob": {"analytics": True, "personalization": True, "advertising": False},
        },
    )
    t0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR

    def ev(user, t, content):
        return (user.encode(), json.dumps(event(user=user, t=t, content=content, watched=60_000)).encode())

    produce(s, s.topic("playback.raw"), [ev("vic", t0 + 1000, "early"), ev("bob", t0 + 1000, "early")])
    # the watermark is per partition: vic's own later event closes vic's first window under consent
    first = produce(s, s.topic("playback.raw"), [ev("vic", t0 + 2 * HOUR, "tick")])
    wait_processed(s, s.topic("playback.raw"), first)
    revoke = {"vic": {"analytics": True, "personalization": False, "advertising": False}}
    send_consents(s, revoke, at=int(time.time() * 1000))
    produce(
        s, s.topic("playback.raw"), [ev("vic", t0 + 2 * HOUR + 5000, "later"), ev("bob", t0 + 5000, "bob2")]
    )
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=s.kafka.bootstrap_servers)
    close_windows(producer, s.topic("playback.raw"), s.partitions)
    producer.close()
    wait_processed(s, s.topic("playback.raw"), {p: 1 for p in range(s.partitions)})
    wait_for(lambda: len(interactions(s)[0]) >= 3, 30, "bob's windows")
    got, _ = interactions(s)
    vic = pz.pseudonym("vic")
    assert (vic, "early", t0) in got  # consented before the revocation
    assert not [k for k in got if k[0] == vic and k[1] in ("later", "tick")]  # never after it
    assert got[(pz.pseudonym("bob"), "early", t0)]["events"] == 1  # others unaffected
    assert (pz.pseudonym("bob"), "bob2", t0) in got


def test_malformed_input_goes_to_dlq_and_processing_continues(stream_settings, workers):
    s = stream_settings
    pz = pseudonymizer(s)
    workers()
    wait_assigned(s, 1)
    send_consents(s, {"carol": {"analytics": True, "personalization": True, "advertising": False}})
    good = event(user="carol", t=1_700_000_000_000)
    bad = [
        (b"carol", b"\xff\xfe not json"),
        (b"carol", json.dumps({**good, "schema": "playback.v7"}).encode()),
        (b"carol", json.dumps({**good, "watched_ms": -1, "search_query": "me@example.org"}).encode()),
        (b"carol", json.dumps({**good, "event_time": int(time.time() * 1000) + 3 * 86_400_000}).encode()),
        (b"carol", b"{" + b" " * 150_000 + b"}"),
        (
            b"carol",
            json.dumps(
                {"schema": "playback.batch.v1", "events": [good, {**good, "user_id": "dave"}]}
            ).encode(),
        ),
    ]
    produce(s, s.topic("playback.raw"), bad)
    ends = produce(s, s.topic("playback.raw"), [(b"carol", json.dumps(good).encode())])
    wait_processed(s, s.topic("playback.raw"), ends)
    dlq = [json.loads(v) for _, v in read_all(s, s.topic("playback.dlq"))]
    reasons = sorted(d["reason"] for d in dlq)
    assert reasons == sorted(
        [
            "invalid_json",
            "unknown_schema",
            "schema_violation",
            "future_event_time",
            "oversize",
            "envelope_mixed_users",
            "envelope_mixed_users",
        ]
    )
    for d in dlq:
        assert d["source"]["topic"] == s.topic("playback.raw") and d["source"]["offset"] >= 0
        assert d["schema"] == "dlq.v2" and "payload" not in d and "raw_b64" not in d
    blob = json.dumps(dlq)
    assert "carol" not in blob and "me@example.org" not in blob and "203.0.113.9" not in blob
    redacted = [json.loads(v) for k, v in read_all(s, s.topic("playback.redacted"))]
    assert any(r.get("user") == pz.pseudonym("carol") for r in redacted)  # the good event went through


def test_sigkill_mid_stream_gives_same_interactions(stream_settings, workers):
    s = stream_settings
    pz = pseudonymizer(s)
    sessions, mix = dataset(users=50, events=4000, seed=9)
    w = workers("a")
    wait_assigned(s, 1)
    send_consents(s, mix)
    msgs = envelopes(sessions)
    half = len(msgs) // 2
    first = produce(s, s.topic("playback.raw"), msgs[:half])
    # kill once some but not all of the first half was processed
    from pipeline.kafka.offsets import committed_offsets

    admin = KafkaAdminClient(bootstrap_servers=s.kafka.bootstrap_servers)
    wait_for(
        lambda: sum(committed_offsets(admin, s.app_id, s.topic("playback.raw")).values()) > 0,
        60,
        "some progress before the kill",
    )
    admin.close()
    w.kill(signal.SIGKILL)
    rest = produce(s, s.topic("playback.raw"), msgs[half:])
    workers("b")
    wait_assigned(s, 1, timeout=120)
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=s.kafka.bootstrap_servers)
    close_windows(producer, s.topic("playback.raw"), s.partitions)
    producer.close()
    ends = {p: max(first.get(p, 0), rest.get(p, 0)) + 1 for p in range(s.partitions)}
    wait_all_processed(s, ends)
    got, _dupes = interactions(s)
    assert got == expected_windows(sessions, mix, pz)  # none lost, none counted twice


def test_two_workers_share_partitions_same_result(stream_settings, workers):
    s = stream_settings
    pz = pseudonymizer(s)
    sessions, mix = dataset(users=40, events=2500, seed=13)
    workers("a")
    workers("b")
    wait_assigned(s, 2, timeout=120)
    send_consents(s, mix)
    ends = produce(s, s.topic("playback.raw"), envelopes(sessions))
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=s.kafka.bootstrap_servers)
    close_windows(producer, s.topic("playback.raw"), s.partitions)
    producer.close()
    wait_all_processed(s, {p: ends.get(p, 0) + 1 for p in range(s.partitions)})
    got, dupes = interactions(s)
    assert dupes == 0
    assert got == expected_windows(sessions, mix, pz)
    stats = [st for st in worker_stats(s) if st.get("assigned")]
    assert len(stats) == 2 and all(st["counters"].get("received", 0) > 0 for st in stats)
