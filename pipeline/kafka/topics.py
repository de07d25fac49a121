"""The topics privrec owns, and idempotent creation on any Kafka-protocol broker.

:class:`Topic` is the one place a pipeline topic's logical name is spelled: code
asks ``settings.topic(Topic.CONSENT)`` for the full (prefixed) name. Each
topic's retention comes from :class:`pipeline.settings.TopicSettings` and is set
as ``retention.ms`` when the topic is created; ``consent`` and ``dp.ledger`` are
compacted instead. Faust names its own topics (table changelogs, the assignor's)
after the app id, which defaults to ``<topic_prefix>stream`` so that one prefix
covers everything privrec writes (ACLs, retention reviews, clean-up): they are
described in :data:`FAUST_TOPICS`. Every spec says what personal data its topic
may hold, so ``privrec topics list`` can answer a privacy officer from one place.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from pipeline.errors import ServiceUnavailable
from pipeline.settings import Settings

__all__ = [
    "FAUST_TOPICS",
    "SMOKE_TOPIC",
    "TOPICS",
    "FaustTopicSpec",
    "Table",
    "Topic",
    "TopicSpec",
    "app_id_outside_prefix",
    "create_topics",
    "describe_topics",
    "faust_topic_specs",
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


class Table(StrEnum):
    """The worker's Faust tables; each is changelogged to ``<app_id>-<table>-changelog``."""

    WINDOWS = "windows"
    CONSENT = "consent"


#: The stem of the throw-away topics ``privrec smoke`` round-trips one record through
#: (``<prefix>smoke.<run>``, deleted when the check ends). Not a pipeline topic:
#: ``privrec topics create`` leaves it alone, ``privrec topics list`` names a leftover.
SMOKE_TOPIC = "smoke"

Retention = Literal["raw", "redacted", "dlq", "quarantine", "history"]


@dataclass(frozen=True)
class TopicSpec:
    """A logical topic: its name without prefix, role, how long it keeps records, what it may hold.

    ``retention`` names a ``topics.<retention>_retention_ms`` setting; ``None``
    with ``cleanup="compact"`` keeps the latest record per key for ever.
    ``personal_data`` is the worst a record of the topic may carry about a
    viewer (what an ACL, a retention review or an erasure has to reckon with).
    """

    name: Topic
    purpose: str
    retention: Retention | None = None
    cleanup: Literal["delete", "compact"] = "delete"
    personal_data: str = field(kw_only=True)

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


#: What a pseudonymised record may still say about a viewer (a pseudonym is personal data
#: under the GDPR: whoever holds the key can link it back).
_PSEUDONYMOUS = "pseudonyms only (no raw id, IP, device id or free text)"
#: What a record keyed or addressed by the raw viewer id carries.
_RAW_ID = "raw viewer ids"

#: Every topic of the pipeline (names without the configured prefix). The key of
#: ``playback.raw`` and ``consent`` is the raw user id, so the two are
#: co-partitioned: a user's consent and events land on the same partition.
TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        Topic.RAW,
        "raw playback events from clients (key: user id)",
        "raw",
        personal_data="PERSONAL DATA: raw viewer ids, IP addresses, device ids, user agents, "
        "session ids, free text (search queries, error messages), viewing history",
    ),
    TopicSpec(
        Topic.REDACTED,
        "consent-checked, pseudonymised events (key: pseudonym)",
        "redacted",
        personal_data=f"{_PSEUDONYMOUS}; per-event viewing history, country, device class",
    ),
    TopicSpec(
        Topic.DLQ,
        "stream dead letters: reason, field names, source coordinates; no values",
        "dlq",
        personal_data="a pseudonym when the user id parsed; field names, never values",
    ),
    TopicSpec(
        Topic.QUARANTINE,
        "raw bytes of dead messages (stream.dlq_include_raw only): PERSONAL DATA; key: dlq quarantine",
        "quarantine",
        personal_data="PERSONAL DATA: whatever a client sent, as sent (anything playback.raw holds)",
    ),
    TopicSpec(
        Topic.CONSENT,
        "consent state per user (key: user id), compacted",
        None,
        "compact",
        personal_data=f"{_RAW_ID}; each viewer's consent purposes and when they changed",
    ),
    TopicSpec(
        Topic.INTERACTIONS,
        "closed watch windows per user and title (key: pseudonym)",
        "history",
        personal_data=f"{_PSEUDONYMOUS}; per-window watch time and plays per title",
    ),
    TopicSpec(
        Topic.ERASURE,
        "erasure requests (key: user id)",
        "history",
        personal_data=f"{_RAW_ID} (the key) with request ids and times",
    ),
    TopicSpec(
        Topic.ERASURE_STAGES,
        "erasure stage confirmations (key: request id)",
        "history",
        personal_data="pseudonyms with request ids, stages and times",
    ),
    TopicSpec(
        Topic.RECEIPTS,
        "erasure receipts (key: pseudonym)",
        "history",
        personal_data="pseudonyms with request ids, stages and what remains until when",
    ),
    TopicSpec(
        Topic.TRAINER_DLQ,
        "trainer dead letters: records it could not apply; no values",
        "dlq",
        personal_data="source coordinates and reasons; no values",
    ),
    TopicSpec(
        Topic.DP_LEDGER,
        "privacy budget ledger: every DP release (key: release id; partition 0), compacted, kept for ever",
        None,
        "compact",
        personal_data="none: differentially private noisy counts per title, ε and δ spent",
    ),
    TopicSpec(
        Topic.AUDITS,
        "ethics audits (audit.v1 JSON, aggregates only; key: model version)",
        "history",
        personal_data="none: aggregates only",
    ),
)


@dataclass(frozen=True)
class FaustTopicSpec:
    """A topic Faust creates and names ``<app_id>-<suffix>`` (privrec does not create it).

    ``cleanup`` is what Faust asks for: tables are changelogged to compacted
    topics (the latest state per key, no time limit); the assignor's topic gets
    the broker's defaults and stays empty.
    """

    suffix: str
    purpose: str
    cleanup: Literal["delete", "compact"]
    personal_data: str

    def full_name(self, settings: Settings) -> str:
        """``<app_id>-<suffix>``: under the topic prefix unless ``app_id`` was set outside it."""
        return f"{settings.app_id}-{self.suffix}"


#: Faust's own topics of ``privrec worker`` (see :class:`Table`). Kept in step with the app by
#: ``tests/integration/test_topics.py``, which lists them after a worker ran.
FAUST_TOPICS: tuple[FaustTopicSpec, ...] = (
    FaustTopicSpec(
        f"{Table.WINDOWS}-changelog",
        "changelog of the workers' window state (key: partition/pseudonym), compacted",
        "compact",
        f"{_PSEUDONYMOUS}; per-pseudonym open-window watch sums per title, replay offsets",
    ),
    FaustTopicSpec(
        f"{Table.CONSENT}-changelog",
        "changelog of the workers' consent table (key: pseudonym), compacted",
        "compact",
        f"{_PSEUDONYMOUS}; each viewer's last consent changes (times and purposes)",
    ),
    FaustTopicSpec(
        "__assignor-__leader",
        "Faust's partition-assignor leader topic (one partition, never written)",
        "delete",
        "none",
    ),
)


def topic_specs(settings: Settings) -> list[tuple[str, TopicSpec]]:
    """(full name, spec) for every topic under the configured prefix."""
    return [(settings.topic(spec.name), spec) for spec in TOPICS]


def faust_topic_specs(settings: Settings) -> list[tuple[str, FaustTopicSpec]]:
    """(full name, spec) for every topic Faust makes for the worker."""
    return [(spec.full_name(settings), spec) for spec in FAUST_TOPICS]


def app_id_outside_prefix(settings: Settings) -> str | None:
    """Why Faust's topics escape the topic prefix (``app_id`` set to something else), or None.

    Not a configuration error: a deployment may keep an older app id (its consumer
    group and changelogs) on purpose. But ACLs and reviews written for the prefix
    then miss those topics, so the worker and ``privrec topics list`` say so.
    """
    if settings.app_id.startswith(settings.topic_prefix):
        return None
    return (
        f"app_id {settings.app_id!r} does not start with topic_prefix {settings.topic_prefix!r}: "
        f"Faust's changelog and assignor topics ({settings.app_id}-*) fall outside the prefix "
        "(unset PRIVREC_APP_ID to use <topic_prefix>stream)"
    )


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
