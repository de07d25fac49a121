"""The topics privrec uses, and idempotent creation on any Kafka-protocol broker."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import ServiceUnavailable
from pipeline.settings import Settings

__all__ = ["TOPICS", "TopicSpec", "create_topics", "describe_topics", "topic_specs"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    """A logical topic: its name without prefix, role and configuration."""

    name: str
    purpose: str
    config: dict[str, str] = field(default_factory=dict)


#: Every topic of the pipeline (names without the configured prefix). The key of
#: ``playback.raw`` and ``consent`` is the raw user id, so the two are
#: co-partitioned: a user's consent and events land on the same partition.
TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("playback.raw", "raw playback events from clients (key: user id)"),
    TopicSpec("playback.redacted", "consent-checked, pseudonymised events (key: pseudonym)"),
    TopicSpec("playback.dlq", "dead letters: reason, source coordinates, redacted payload"),
    TopicSpec("consent", "consent state per user (key: user id), compacted", {"cleanup.policy": "compact"}),
    TopicSpec("interactions", "closed watch windows per user and title (key: pseudonym)"),
    TopicSpec("erasure", "erasure requests (key: user id)"),
    TopicSpec("erasure.stages", "erasure stage confirmations (key: request id)"),
    TopicSpec("receipts", "erasure receipts (key: pseudonym)"),
)


def topic_specs(settings: Settings) -> list[tuple[str, TopicSpec]]:
    """(full name, spec) for every topic under the configured prefix."""
    return [(settings.topic(spec.name), spec) for spec in TOPICS]


def create_topics(admin: Any, settings: Settings) -> dict[str, str]:
    """Create missing topics; returns ``{full_name: "created" | "exists"}``.

    ``admin`` is a ``kafka.KafkaAdminClient``. Safe to call any number of times.
    """
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    existing = set(admin.list_topics())
    result: dict[str, str] = {}
    new = []
    for name, spec in topic_specs(settings):
        if name in existing:
            result[name] = "exists"
            continue
        new.append(
            NewTopic(name, settings.partitions, settings.replication_factor, topic_configs=spec.config)
        )
    for topic in new:  # one by one: a racing creator must not fail the others
        try:
            admin.create_topics([topic])
            result[topic.name] = "created"
        except TopicAlreadyExistsError:
            result[topic.name] = "exists"
        except KafkaError as exc:
            raise ServiceUnavailable(f"creating topic {topic.name} failed: {exc}") from None
    log.info(
        "topics: %d created, %d existed",
        sum(v == "created" for v in result.values()),
        sum(v == "exists" for v in result.values()),
    )
    return result


def describe_topics(admin: Any, names: list[str]) -> dict[str, int]:
    """Partition count per existing topic among ``names``."""
    existing = set(admin.list_topics())
    wanted = [n for n in names if n in existing]
    if not wanted:
        return {}
    return {t.get("topic", t.get("name")): len(t["partitions"]) for t in admin.describe_topics(wanted)}
