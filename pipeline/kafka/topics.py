"""The topics privrec uses, and idempotent creation on any Kafka-protocol broker.

:class:`Topic` is the one place a topic's logical name is spelled: code asks
``settings.topic(Topic.CONSENT)`` for the full (prefixed) name. Each topic's
retention comes from :class:`pipeline.settings.TopicSettings` and is set as
``retention.ms`` when the topic is created; ``consent`` and ``dp.ledger`` are
compacted instead. ``privrec topics list`` prints both per topic.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pipeline.errors import ServiceUnavailable
from pipeline.settings import Settings

__all__ = [
    "SMOKE_TOPIC",
    "TOPICS",
    "Topic",
    "TopicSpec",
    "create_topics",
    "describe_topics",
    "topic_specs",
]

log = logging.getLogger(__name__)


class Topic(StrEnum):
    """The logical name of every pipeline topic, without the configured prefix.

    A member is a ``str``, so it goes wherever a name does; :data:`TOPICS`
    gives each one its role and retention (a unit test keeps the two in step).
    """

    RAW = "playback.raw"
    REDACTED = "playback.redacted"
    DLQ = "playback.dlq"
    QUARANTINE = "playback.quarantine"
    CONSENT = "consent"
    INTERACTIONS = "interactions"
    ERASURE = "erasure"
    ERASURE_STAGES = "erasure.stages"
    RECEIPTS = "receipts"
    TRAINER_DLQ = "trainer.dlq"
    DP_LEDGER = "dp.ledger"
    AUDITS = "audits"


#: The throw-away topic ``privrec smoke`` round-trips one record through. Not a
#: pipeline topic: ``privrec topics create`` leaves it alone, the smoke check makes it.
SMOKE_TOPIC = "smoke"

Retention = Literal["raw", "redacted", "dlq", "quarantine", "history"]


@dataclass(frozen=True)
class TopicSpec:
    """A logical topic: its name without prefix, role, and how long it keeps records.

    ``retention`` names a ``topics.<retention>_retention_ms`` setting; ``None``
    with ``cleanup="compact"`` keeps the latest record per key for ever.
    """

    name: Topic
    purpose: str
    retention: Retention | None = None
    cleanup: Literal["delete", "compact"] = "delete"

    def retention_ms(self, settings: Settings) -> int | None:
        """The configured ``retention.ms`` (-1: forever), or ``None`` for a compacted topic."""
        if self.retention is None:
            return None
        return int(getattr(settings.topics, f"{self.retention}_retention_ms"))

    def config(self, settings: Settings) -> dict[str, str]:
        """Topic configs to create it with (Kafka spelling, string values)."""
        out: dict[str, str] = {"cleanup.policy": self.cleanup}
        retention = self.retention_ms(settings)
        if retention is not None:
            out["retention.ms"] = str(retention)
        return out


#: Every topic of the pipeline (names without the configured prefix). The key of
#: ``playback.raw`` and ``consent`` is the raw user id, so the two are
#: co-partitioned: a user's consent and events land on the same partition.
TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(Topic.RAW, "raw playback events from clients (key: user id)", "raw"),
    TopicSpec(Topic.REDACTED, "consent-checked, pseudonymised events (key: pseudonym)", "redacted"),
    TopicSpec(Topic.DLQ, "stream dead letters: reason, field names, source coordinates; no values", "dlq"),
    TopicSpec(
        Topic.QUARANTINE,
        "raw bytes of dead messages (stream.dlq_include_raw only): PERSONAL DATA; key: dlq quarantine",
        "quarantine",
    ),
    TopicSpec(Topic.CONSENT, "consent state per user (key: user id), compacted", None, "compact"),
    TopicSpec(Topic.INTERACTIONS, "closed watch windows per user and title (key: pseudonym)", "history"),
    TopicSpec(Topic.ERASURE, "erasure requests (key: user id)", "history"),
    TopicSpec(Topic.ERASURE_STAGES, "erasure stage confirmations (key: request id)", "history"),
    TopicSpec(Topic.RECEIPTS, "erasure receipts (key: pseudonym)", "history"),
    TopicSpec(Topic.TRAINER_DLQ, "trainer dead letters: records it could not apply; no values", "dlq"),
    TopicSpec(
        Topic.DP_LEDGER,
        "privacy budget ledger: every DP release (key: release id; partition 0), compacted, kept for ever",
        None,
        "compact",
    ),
    TopicSpec(Topic.AUDITS, "ethics audits (audit.v1 JSON, aggregates only; key: model version)", "history"),
)


def topic_specs(settings: Settings) -> list[tuple[str, TopicSpec]]:
    """(full name, spec) for every topic under the configured prefix."""
    return [(settings.topic(spec.name), spec) for spec in TOPICS]


def create_topics(admin: Any, settings: Settings) -> dict[str, str]:
    """Create missing topics; returns ``{full_name: "created" | "exists"}``.

    ``admin`` is a ``kafka.KafkaAdminClient``. Safe to call any number of times.
    An existing topic keeps its configuration.
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
            NewTopic(
                name,
                settings.partitions,
                settings.replication_factor,
                topic_configs=spec.config(settings),
            )
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
