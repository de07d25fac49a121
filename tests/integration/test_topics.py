"""Topic creation on the real broker: every topic, right partitions, idempotent."""

from __future__ import annotations

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from pipeline.topics import TOPICS, create_topics, describe_topics

pytestmark = pytest.mark.integration

EXPECTED = {
    "playback.raw",
    "playback.redacted",
    "playback.dlq",
    "consent",
    "interactions",
    "erasure",
    "erasure.stages",
    "receipts",
}


def test_topic_names_are_fixed():
    assert {spec.name for spec in TOPICS} == EXPECTED
    consent = next(s for s in TOPICS if s.name == "consent")
    assert consent.config == {"cleanup.policy": "compact"}


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
    finally:
        admin.close()


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
