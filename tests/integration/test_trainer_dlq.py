"""Real broker: an interaction the trainer cannot apply goes to trainer.dlq once; training goes on."""

from __future__ import annotations

import json

import pytest
from kafka import KafkaAdminClient

from agents.processes.trainer import close_trainer, make_trainer
from pipeline.kafka.topics import create_topics
from pipeline.keys import pseudonymizer
from pipeline.sources import consent_record
from pipeline.wire import DeadLetter, decode_as
from tests.integration.harness import produce, read_all

pytestmark = pytest.mark.integration

HOUR = 3_600_000
T0 = 1_700_000_000_000


def _interaction(user: str, content: str, watched: int) -> bytes:
    return (
        f'{{"schema":"interaction.v1","user":"{user}","content_id":"{content}","window_start":{T0},'
        f'"window_end":{T0 + HOUR},"watched_ms":{watched},"plays":1,"completed":false,"events":2}}'
    ).encode()


def test_overflowing_interaction_is_dead_lettered_once_and_the_trainer_trains(make_settings, kafka_bootstrap):
    s = make_settings(partitions=2, trainer={"factors": 4, "iterations": 2, "holdout_fraction": 0.25})
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        create_topics(admin, s)
    finally:
        admin.close()
    pz = pseudonymizer(s)
    users = [f"viewer-{i}" for i in range(8)]
    purposes = {"analytics": True, "personalization": True, "advertising": False}
    produce(
        s,
        s.topic("consent"),
        [(u.encode(), json.dumps(consent_record(u, purposes, updated_at_ms=1)).encode()) for u in users],
    )
    rows = []
    for i, u in enumerate(users):
        p = pz.pseudonym(u)
        rows += [(p.encode(), _interaction(p, f"c{(i + j) % 9}", 60_000 * (j + 1))) for j in range(5)]
    bad_user = pz.pseudonym(users[0])
    rows.insert(7, (bad_user.encode(), _interaction(bad_user, "c1", 2**64)))
    produce(s, s.topic("interactions"), rows)

    for run in range(2):  # a restart re-reads everything but does not dead-letter the record again
        trainer = make_trainer(s)
        try:
            trainer.catch_up(timeout_s=60)
            assert trainer.counters["interactions"] == 40 and trainer.counters["interactions_invalid"] == 1
            report = trainer.train_and_publish(force=True)
            assert report.published, report.reason
            trainer.tail.commit()
        finally:
            close_trainer(trainer)
        assert trainer.counters.get("dead_letters", 0) == (1 if run == 0 else 0)

    (letter,) = [decode_as(v, DeadLetter) for _, v in read_all(s, s.topic("trainer.dlq"))]
    assert letter.reason == "invalid_interaction" and letter.path == "$.watched_ms"
    assert letter.source.topic == s.topic("interactions")
