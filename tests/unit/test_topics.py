"""The topic specs: retention per topic from settings, one prefix for every topic, what each may hold."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.worker_log import assignment_line, banner, logging_config
from pipeline.errors import ConfigError
from pipeline.kafka.assignment import describe_assignment, partition_ranges
from pipeline.kafka.topics import (
    FAUST_TOPICS,
    TOPICS,
    app_id_outside_prefix,
    create_topics,
    faust_topic_specs,
    topic_specs,
)
from pipeline.kafka.topics_owned import BrokerTopic, is_owned, owned_topics
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


# -- one prefix, what each topic may hold, what `topics list` shows ----------------------------


def test_every_topic_privrec_owns_starts_with_the_prefix_by_default() -> None:
    for prefix in ("privrec.", "acme.prod."):
        settings = Settings(topic_prefix=prefix)
        assert settings.app_id == f"{prefix}stream"  # the worker's consumer group follows
        names = [n for n, _ in topic_specs(settings)] + [n for n, _ in faust_topic_specs(settings)]
        assert names and all(n.startswith(prefix) for n in names), names
        assert app_id_outside_prefix(settings) is None
    faust = {n for n, _ in faust_topic_specs(Settings())}
    assert faust == {
        "privrec.stream-windows-changelog",
        "privrec.stream-consent-changelog",
        "privrec.stream-__assignor-__leader",
    }


def test_an_app_id_outside_the_prefix_is_kept_but_named() -> None:
    settings = load_settings(app_id="privrec")
    assert settings.app_id == "privrec"
    why = app_id_outside_prefix(settings)
    assert why is not None and "'privrec'" in why and "'privrec.'" in why
    with pytest.raises(ConfigError, match="app_id"):
        load_settings(app_id="no spaces")


def test_every_spec_says_what_personal_data_it_may_hold() -> None:
    held = {spec.name: spec.personal_data for spec in TOPICS}
    held |= {spec.suffix: spec.personal_data for spec in FAUST_TOPICS}
    assert all(text.strip() for text in held.values())
    for raw in ("playback.raw", "playback.quarantine"):  # the topics with raw personal data say so loudly
        assert held[raw].startswith("PERSONAL DATA")
    assert all(k in held["playback.raw"] for k in ("raw viewer ids", "IP", "device ids", "free text"))
    for raw_keyed in ("consent", "erasure"):
        assert "raw viewer ids" in held[raw_keyed]
    for pseudonymous in ("playback.redacted", "interactions", "windows-changelog", "consent-changelog"):
        assert held[pseudonymous].startswith("pseudonyms only")
    for aggregate in ("dp.ledger", "audits", "__assignor-__leader"):
        assert held[aggregate].startswith("none")
    assert [s.cleanup for s in FAUST_TOPICS] == ["compact", "compact", "delete"]


def _broker(*names: str, parts: int = 3, **configs: dict[str, str]) -> dict[str, BrokerTopic]:
    return {n: BrokerTopic(parts, configs.get(n.replace(".", "_").replace("-", "_"), {})) for n in names}


def test_owned_topics_lists_registry_faust_and_leftovers_under_the_prefix() -> None:
    settings = Settings(topic_prefix="p.")
    on_broker = _broker(
        "p.playback.raw",
        "p.stream-windows-changelog",
        "p.smoke",
        "p.smoke.1a2b3c4d",
        "p.mystery",
        "p-consent-changelog",  # an earlier app id's changelog (before one prefix)
        "other.playback.raw",  # not ours
        "__consumer_offsets",
    )
    rows = {r.topic: r for r in owned_topics(settings, on_broker)}
    assert "other.playback.raw" not in rows and "__consumer_offsets" not in rows
    assert [r.kind for r in rows.values()][: len(TOPICS)] == ["pipeline"] * len(TOPICS)
    raw = rows["p.playback.raw"]
    assert (raw.exists, raw.partitions, raw.retention_ms, raw.cleanup_policy) == (True, 3, 7 * DAY, "delete")
    assert raw.config_source == "privrec" and raw.under_prefix
    assert not rows["p.consent"].exists and rows["p.consent"].partitions is None
    windows = rows["p.stream-windows-changelog"]
    assert (windows.kind, windows.exists, windows.cleanup_policy) == ("faust", True, "compact")
    assert not rows["p.stream-__assignor-__leader"].exists
    assert rows["p.smoke"].kind == rows["p.smoke.1a2b3c4d"].kind == "smoke"
    mystery = rows["p.mystery"]
    assert (mystery.kind, mystery.retention_ms, mystery.cleanup_policy, mystery.config_source) == (
        "unknown",
        None,
        None,
        None,
    )
    assert mystery.personal_data.startswith("unknown")
    legacy = rows["p-consent-changelog"]
    assert legacy.kind == "unknown" and not legacy.under_prefix
    assert legacy.personal_data == FAUST_TOPICS[1].personal_data  # what that kind of topic holds


def test_broker_reported_configs_win_over_the_registry() -> None:
    settings = Settings(topic_prefix="p.")
    on_broker = {
        "p.playback.raw": BrokerTopic(8, {"cleanup.policy": "delete", "retention.ms": "3600000"}),
        "p.consent": BrokerTopic(8, {"cleanup.policy": "compact", "retention.ms": "604800000"}),
    }
    rows = {r.topic: r for r in owned_topics(settings, on_broker)}
    assert (rows["p.playback.raw"].retention_ms, rows["p.playback.raw"].config_source) == (
        3_600_000,
        "broker",
    )
    assert rows["p.consent"].retention_ms is None  # compacted: kept per key, whatever retention.ms says


def test_faust_topics_outside_the_prefix_are_flagged() -> None:
    settings = Settings(topic_prefix="p.", app_id="legacy")
    rows = {r.topic: r for r in owned_topics(settings, _broker("legacy-windows-changelog"))}
    row = rows["legacy-windows-changelog"]
    assert row.kind == "faust" and row.exists and not row.under_prefix
    assert "OUTSIDE the topic prefix" in row.purpose


@pytest.mark.parametrize(
    ("name", "owned"),
    [("p.x", True), ("p-windows-changelog", True), ("app-x", True), ("px", False), ("q.x", False)],
)
def test_is_owned(name: str, owned: bool) -> None:
    assert is_owned(name, Settings(topic_prefix="p.", app_id="app")) is owned


@given(st.sets(st.integers(min_value=0, max_value=40)))
def test_partition_ranges_round_trip(partitions: set[int]) -> None:
    text = partition_ranges(partitions)
    back: set[int] = set()
    if text != "-":
        for span in text.split(","):
            lo, _, hi = span.partition("-")
            back |= set(range(int(lo), int(hi or lo) + 1))
    assert back == partitions


def test_assignment_line_counts_and_names_topics_only() -> None:
    tps = [
        ("p.playback.raw", 0),
        ("p.playback.raw", 1),
        ("p.consent", 0),
        ("p.consent", 1),
        ("p.x-changelog", 5),
    ]
    line = assignment_line("assigned", tps, stream_topic="p.playback.raw", partitions=8)
    assert line == (
        "partitions assigned: 2 of 8 stream partitions (0-1), 5 topic-partitions: "
        "p.consent[0-1] p.playback.raw[0-1] p.x-changelog[5]"
    )
    assert describe_assignment([]) == "-"


def test_worker_banner_and_log_config() -> None:
    from pipeline.services.connect import Endpoints

    settings = Settings(topic_prefix="p.", partitions=4)
    endpoints = Endpoints("127.0.0.1:9092", True, "redis://:secret@127.0.0.1:1/0", True, {})
    text = banner(settings, endpoints, "http://127.0.0.1:9/metrics", pid=42)
    for part in (
        "app id p.stream",
        "consumer group p.stream",
        "127.0.0.1:9092 (embedded)",
        "p.*",
        "4 partitions",
    ):
        assert part in text
    assert "http://127.0.0.1:9/metrics" in text and "secret" not in text
    config = logging_config("warning")
    assert config["root"]["level"] == logging.WARNING
    assert config["loggers"]["agents.worker_log"]["level"] == logging.INFO  # banner at the default level
    assert "color" not in str(config).lower() and config["disable_existing_loggers"] is False
    assert logging_config("error")["loggers"]["agents.worker_log"]["level"] == logging.ERROR
