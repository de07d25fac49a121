"""Every topic privrec owns on a broker: the registry's, Faust's, and whatever else sits under the prefix.

``privrec topics list`` answers "what does privrec keep, for how long, and
what could it say about a viewer" for every topic a deployment's ACLs and
retention reviews must cover, so nothing under the prefix is hidden: a topic
the registry does not know is listed as ``unknown`` rather than left out (a
crashed smoke check's, a scratch run's, a changelog of an earlier app id).
:func:`owned_topics` is pure; :func:`broker_topics` asks the broker.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pipeline.kafka.topics import (
    FAUST_TOPICS,
    SMOKE_TOPIC,
    app_id_outside_prefix,
    faust_topic_specs,
    topic_specs,
)
from pipeline.settings import Settings

__all__ = ["BrokerTopic", "OwnedTopic", "broker_topics", "is_owned", "owned_topics"]

log = logging.getLogger(__name__)

Kind = Literal["pipeline", "faust", "smoke", "unknown"]
_Config = tuple[int | None, str | None]

_UNKNOWN = "unknown: not in privrec's topic registry; inspect before relying on or deleting it"


@dataclass(frozen=True)
class BrokerTopic:
    """What the broker says about one topic: partitions, and the configs it reports (maybe none)."""

    partitions: int
    configs: Mapping[str, str]


@dataclass(frozen=True)
class OwnedTopic:
    """One row of ``privrec topics list``.

    ``retention_ms`` and ``cleanup_policy`` are the broker's when it reports
    them (``config_source="broker"``), else what privrec creates the topic with
    (``"privrec"``), else unknown (``None``). ``retention_ms`` ``None`` with
    ``compact`` means "latest record per key, no time limit"; ``-1`` is forever.
    """

    topic: str
    kind: Kind
    exists: bool
    partitions: int | None
    retention_ms: int | None
    cleanup_policy: str | None
    config_source: Literal["broker", "privrec"] | None
    purpose: str
    personal_data: str
    under_prefix: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_owned(name: str, settings: Settings) -> bool:
    """Whether a topic is privrec's: under the prefix, Faust's for this app id, or an older app id's.

    ``<prefix without its dot>-`` catches the changelogs of the app id used
    before Faust's topics moved under the prefix (``privrec-windows-changelog``).
    """
    legacy = settings.topic_prefix.rstrip(".") + "-"
    starts = (settings.topic_prefix, f"{settings.app_id}-") + ((legacy,) if legacy != "-" else ())
    return name.startswith(starts)


def _is_smoke(name: str, settings: Settings) -> bool:
    stem = settings.topic(SMOKE_TOPIC)
    return name == stem or name.startswith(stem + ".")


def _broker_config(found: BrokerTopic | None) -> _Config | None:
    if found is None or "cleanup.policy" not in found.configs:
        return None
    policy = found.configs["cleanup.policy"]
    retention = found.configs.get("retention.ms") if "delete" in policy else None  # compact: per key
    return (int(retention) if retention is not None else None), policy


def owned_topics(settings: Settings, on_broker: Mapping[str, BrokerTopic]) -> list[OwnedTopic]:
    """The registry's topics (present or missing), Faust's, then every other owned topic on the broker."""
    rows: list[OwnedTopic] = []
    prefix = settings.topic_prefix

    def row(name: str, kind: Kind, spec_config: _Config | None, purpose: str, pd: str) -> None:
        found = on_broker.get(name)
        reported = _broker_config(found)
        config = reported or spec_config
        source: Literal["broker", "privrec"] | None = (
            "broker" if reported else ("privrec" if spec_config else None)
        )
        rows.append(
            OwnedTopic(
                topic=name,
                kind=kind,
                exists=found is not None,
                partitions=found.partitions if found else None,
                retention_ms=config[0] if config else None,
                cleanup_policy=config[1] if config else None,
                config_source=source,
                purpose=purpose,
                personal_data=pd,
                under_prefix=name.startswith(prefix),
            )
        )

    for name, spec in topic_specs(settings):
        row(name, "pipeline", (spec.retention_ms(settings), spec.cleanup), spec.purpose, spec.personal_data)
    faust_warning = app_id_outside_prefix(settings)
    for name, fspec in faust_topic_specs(settings):
        purpose = fspec.purpose if faust_warning is None else f"{fspec.purpose}; OUTSIDE the topic prefix"
        row(name, "faust", (None, fspec.cleanup), purpose, fspec.personal_data)
    listed = {r.topic for r in rows}
    for name in sorted(n for n in on_broker if n not in listed and is_owned(n, settings)):
        other_app = next((f for f in FAUST_TOPICS if name.endswith(f"-{f.suffix}")), None)
        if _is_smoke(name, settings):
            row(name, "smoke", None, "leftover of a `privrec smoke` run", "none: a random marker")
        elif other_app is not None:  # e.g. the changelogs of the app id used before this one
            app = name[: -len(other_app.suffix) - 1]
            purpose = f"Faust topic of app id {app!r}, not this one"
            row(name, "unknown", None, purpose, other_app.personal_data)
        else:
            row(name, "unknown", None, "not created by this version of privrec", _UNKNOWN)
    return rows


def broker_topics(admin: Any) -> dict[str, BrokerTopic]:
    """Every topic on the broker with its partition count and the configs it reports.

    ``admin`` is a ``kafka.KafkaAdminClient``. Configs are best effort: a
    broker that reports none (the embedded Tansu) or refuses (ACLs) leaves
    them empty, and the registry's values stand in.
    """
    names = sorted(admin.list_topics())
    if not names:
        return {}
    parts = {t.get("topic", t.get("name")): len(t["partitions"]) for t in admin.describe_topics(names)}
    configs: dict[str, dict[str, str]] = {}
    try:
        from kafka.admin import ConfigResource, ConfigResourceType

        response = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
        configs = _configs_of(response)
    except Exception as exc:  # configs are a nicety: the listing stands without them
        log.info("topic configs not available: %s", type(exc).__name__)
    return {n: BrokerTopic(parts.get(n, 0), configs.get(n, {})) for n in names if n in parts}


def _configs_of(response: Any) -> dict[str, dict[str, str]]:
    """``{topic: {name: value}}`` from kafka-python's ``describe_configs`` answer (two shapes)."""
    out: dict[str, dict[str, str]] = {}
    if isinstance(response, dict):
        for topic, entries in (response.get("topic") or {}).items():
            out[topic] = {
                k: str(v.get("value") if isinstance(v, dict) else v)
                for k, v in (entries or {}).items()
                if (v.get("value") if isinstance(v, dict) else v) is not None
            }
        return out
    for resp in response if isinstance(response, list) else [response]:
        for resource in getattr(resp, "resources", []):
            out[resource[3]] = {e[0]: e[1] for e in resource[4] if e[1] is not None}
    return out
