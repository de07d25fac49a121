"""Every topic's creation config comes from settings: retention per topic, consent compacted."""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigError
from pipeline.kafka.topics import TOPICS, create_topics, topic_specs
from pipeline.settings import Settings, load_settings

DAY = 86_400_000


class Admin:
    """The two calls :func:`create_topics` makes of a ``KafkaAdminClient``."""

    def __init__(self) -> None:
        self.created: list = []

    def list_topics(self) -> list[str]:
        return []

    def create_topics(self, topics: list) -> None:
        self.created.extend(topics)


def configs(settings: Settings) -> dict[str, dict[str, str]]:
    return {spec.name: spec.config(settings) for spec in TOPICS}


def test_default_retention_of_every_topic() -> None:
    got = configs(Settings())
    assert got["playback.raw"] == {"cleanup.policy": "delete", "retention.ms": str(7 * DAY)}
    assert got["playback.dlq"]["retention.ms"] == str(7 * DAY)
    assert got["trainer.dlq"]["retention.ms"] == str(7 * DAY)
    assert got["playback.quarantine"]["retention.ms"] == str(DAY)
    assert got["playback.redacted"]["retention.ms"] == str(30 * DAY)
    assert got["consent"] == {"cleanup.policy": "compact"}
    for name in ("interactions", "erasure", "erasure.stages", "receipts", "audits"):
        assert got[name]["retention.ms"] == str(90 * DAY)
    assert all(c["cleanup.policy"] == "compact" or "retention.ms" in c for c in got.values())


def test_retention_settings_reach_topic_creation(monkeypatch) -> None:
    monkeypatch.setenv("PRIVREC_TOPICS__QUARANTINE_RETENTION_MS", "3600000")
    settings = load_settings(topics={"raw_retention_ms": -1})
    admin = Admin()
    create_topics(admin, settings)
    made = {t.name: dict(t.topic_configs) for t in admin.created}
    assert set(made) == {name for name, _ in topic_specs(settings)}
    assert made[settings.topic("playback.quarantine")]["retention.ms"] == "3600000"
    assert made[settings.topic("playback.raw")]["retention.ms"] == "-1"


@pytest.mark.parametrize("value", [0, -2])
def test_retention_must_be_positive_or_forever(value: int) -> None:
    with pytest.raises(ConfigError, match=r"topics\.dlq_retention_ms"):
        load_settings(topics={"dlq_retention_ms": value})
