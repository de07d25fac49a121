"""Topic creation on the real broker: every topic, right partitions, retention, idempotent."""

from __future__ import annotations

import json

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from pipeline.kafka.topics import TOPICS, create_topics, describe_topics
from tests.cli import privrec

pytestmark = pytest.mark.integration

EXPECTED = {
    "playback.raw",
    "playback.redacted",
    "playback.dlq",
    "playback.quarantine",
    "trainer.dlq",
    "consent",
    "interactions",
    "erasure",
    "erasure.stages",
    "receipts",
    "audits",
    "dp.ledger",
}


def test_topic_names_are_fixed():
    assert {spec.name for spec in TOPICS} == EXPECTED
    consent = next(s for s in TOPICS if s.name == "consent")
    assert consent.cleanup == "compact" and consent.retention is None


def test_create_topics_idempotent(kafka_bootstrap, make_settings):
    settings = make_settings(partitions=3)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        first = create_topics(admin, settings)
        assert set(first.values()) == {"created"}
        assert set(first) == {settings.topic(n) for n in EXPECTED}
        second = create_topics(admin, settings)
        assert set(second.values()) == {"exists"}
        parts = describe_topics(admin, list(first))
        assert parts == dict.fromkeys(first, 3)
        # Brokers that report topic configs must show the consent topic compacted.
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, settings.topic("consent"))]
        )
        reported = _config_value(configs, "cleanup.policy")
        assert reported in (None, "compact")
        # ... and the quarantine topic with its one-day retention (Tansu accepts the config).
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, settings.topic("playback.quarantine"))]
        )
        assert _config_value(configs, "retention.ms") in (None, "86400000")
    finally:
        admin.close()


def test_topics_list_prints_retention_and_cleanup(kafka_bootstrap, redis_url, unique_prefix):
    env = {
        "PRIVREC_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PRIVREC_REDIS__URL": redis_url,
        "PRIVREC_TOPIC_PREFIX": unique_prefix,
        "PRIVREC_TOPICS__DLQ_RETENTION_MS": str(36 * 3_600_000),
    }
    created = privrec("topics", "create", env=env)
    assert created.returncode == 0, created.stderr
    listed = privrec("topics", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()[1:] if line.strip()}
    assert listed.stdout.split()[:5] == ["TOPIC", "PARTITIONS", "RETENTION", "CLEANUP", "PURPOSE"]
    assert lines[unique_prefix + "playback.raw"].split()[2:4] == ["7d", "delete"]
    assert lines[unique_prefix + "playback.quarantine"].split()[2:4] == ["1d", "delete"]
    assert lines[unique_prefix + "playback.dlq"].split()[2:4] == ["36h", "delete"]
    assert lines[unique_prefix + "consent"].split()[2:4] == ["-", "compact"]
    rows = {r["topic"]: r for r in json.loads(privrec("topics", "list", "--json", env=env).stdout)}
    assert rows[unique_prefix + "playback.redacted"]["retention_ms"] == 30 * 86_400_000
    assert rows[unique_prefix + "trainer.dlq"]["retention_ms"] == 36 * 3_600_000
    assert rows[unique_prefix + "consent"]["cleanup_policy"] == "compact"
    assert all(r["exists"] for r in rows.values())


def _config_value(response, name):
    """Find a config value in kafka-python's describe_configs answer (shape varies by version)."""
    if isinstance(response, dict):
        for topic_configs in response.get("topic", {}).values():
            if name in topic_configs:
                value = topic_configs[name]
                return value.get("value") if isinstance(value, dict) else value
        return None
    for resp in response if isinstance(response, list) else [response]:
        for resource in getattr(resp, "resources", []):
            for entry in resource[4]:
                if entry[0] == name:
                    return entry[1]
    return None
