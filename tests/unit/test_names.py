"""One name per concept: topics in :class:`Topic`, Redis stats keys in :mod:`pipeline.ops.keys`.

The grep-style checks read the source of ``pipeline/`` and ``agents/``: a
literal topic name passed to ``settings.topic`` or a Redis stats key written
out by hand would give the concept a second home that drifts.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.kafka.topics import SMOKE_TOPIC, TOPICS, Topic
from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(p for folder in ("pipeline", "agents") for p in (ROOT / folder).rglob("*.py"))

#: What the topics were called before the registry: the names on the wire must not move.
WIRE_NAMES = {
    "playback.raw",
    "playback.redacted",
    "playback.dlq",
    "playback.quarantine",
    "consent",
    "interactions",
    "erasure",
    "erasure.stages",
    "receipts",
    "trainer.dlq",
    "dp.ledger",
    "audits",
}


def _hits(pattern: str, *, exempt: tuple[str, ...] = ()) -> list[str]:
    regex = re.compile(pattern)
    return [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in SOURCES
        if str(path.relative_to(ROOT)) not in exempt
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if regex.search(line) and not line.lstrip().startswith((">>>", "..."))  # doctest examples
    ]


def test_every_registered_topic_has_one_spec() -> None:
    names = [spec.name for spec in TOPICS]
    assert sorted(names) == sorted(Topic)  # each member once, nothing unregistered
    for spec in TOPICS:
        assert isinstance(spec.name, Topic)
        assert spec.cleanup in ("delete", "compact")
        assert (spec.retention is None) == (spec.cleanup == "compact"), spec.name
        assert spec.purpose


def test_names_on_the_wire_are_unchanged() -> None:
    assert {str(t) for t in Topic} == WIRE_NAMES
    assert SMOKE_TOPIC not in WIRE_NAMES  # a diagnostic topic, not created with the pipeline's
    settings = Settings(topic_prefix="acme.")
    assert settings.topic(Topic.ERASURE_STAGES) == "acme.erasure.stages"
    assert type(settings.topic(Topic.CONSENT)) is str


def test_no_topic_name_literal_outside_the_registry() -> None:
    assert _hits(r"""\.topic\(\s*f?["']""") == []
    names = "|".join(re.escape(n) for n in WIRE_NAMES)
    spelled = _hits(rf"""\btopic\w*\s*[:=]\s*(str\s*=\s*)?["']({names})["']""")
    assert spelled == []


@pytest.mark.parametrize("prefix", ["privrec:stats:", "privrec:smoke"])
def test_redis_stats_keys_have_one_home(prefix: str) -> None:
    """A string literal starting with the key's prefix (docstrings may name the key)."""
    assert _hits(rf"""["']{re.escape(prefix)}""", exempt=("pipeline/ops/keys.py",)) == []


def test_every_kafka_consumer_comes_from_the_factory() -> None:
    assert _hits(r"(?<!AIO)KafkaConsumer\(", exempt=("pipeline/kafka/consumer.py",)) == []


class _Recorder:
    def __init__(self) -> None:
        self.made: list[dict[str, object]] = []

    def __call__(self, **options: object) -> dict[str, object]:
        self.made.append(options)
        return options


def test_consumer_factory_defaults_and_security(monkeypatch) -> None:
    import kafka

    from pipeline.services.connect import Endpoints, kafka_consumer

    made = _Recorder()
    monkeypatch.setattr(kafka, "KafkaConsumer", made)
    security = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "u",
    }
    endpoints = Endpoints("b:9092", False, "redis://r", False, security)
    kafka_consumer(endpoints, "audit", unique=True, max_partition_fetch_bytes=1)
    kafka_consumer(endpoints, "lag", enable_auto_commit=True)
    first, second = made.made
    assert first["bootstrap_servers"] == "b:9092"
    assert first["enable_auto_commit"] is False and "group_id" not in first
    assert {k: first[k] for k in security} == security
    assert re.fullmatch(r"privrec-audit-[0-9a-f]{6}", str(first["client_id"]))
    assert first["max_partition_fetch_bytes"] == 1
    assert second["client_id"] == "privrec-lag" and second["enable_auto_commit"] is True


def test_consumer_factory_names_the_setting_when_no_broker_answers(monkeypatch) -> None:
    import kafka
    from kafka.errors import KafkaError

    from pipeline.errors import ServiceUnavailable
    from pipeline.kafka.consumer import new_consumer

    def refuse(**options: object) -> None:
        raise KafkaError("no broker")

    monkeypatch.setattr(kafka, "KafkaConsumer", refuse)
    with pytest.raises(ServiceUnavailable, match=r"PRIVREC_KAFKA__BOOTSTRAP_SERVERS.*b:9092"):
        new_consumer("b:9092", {}, "dp-ledger")
