"""Collect a viewer's data export (Art. 15/20) from Kafka and Redis: the reading side.

Interactions are judged by the trainer's own rules: an :class:`ExportView`
feeds the trainer's core (:class:`pipeline.trainer.Admission`) in the order the
trainer reads at start (:func:`agents.trainer.catch_up`), with every record
that is not the viewer's dropped *before* it is applied. So the export holds exactly the
windows a trainer started now would hold for them, by the same rules.

The document itself is assembled by :mod:`pipeline.rights.export`. Neither
the raw user id nor the payload is ever logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from agents.trainer import TOPICS as TRAINER_TOPICS
from agents.trainer import catch_up, trainer_topics
from pipeline.kafka.consumer import BULK_FETCH_BYTES
from pipeline.keys import pseudonymizer
from pipeline.privacy.identity import canonical_user_id
from pipeline.privacy.pseudonym import Pseudonymizer
from pipeline.rights.export import (
    LogRecord,
    Selector,
    assemble,
    changelog_topics,
    consent_section,
    erasure_section,
    interactions_section,
    latest_by_key,
    open_windows,
    stream_consent,
)
from pipeline.services.connect import Endpoints, kafka_consumer, redis_client, topic_tail
from pipeline.serving.controls import get_controls
from pipeline.serving.layout import Layout
from pipeline.serving.reader import MAX_N, Reader
from pipeline.settings import Settings
from pipeline.trainer import Admission

__all__ = ["ExportView", "collect_export"]

log = logging.getLogger(__name__)


class ExportView:
    """The trainer's rules (:class:`pipeline.trainer.Admission`) over one viewer's records only.

    Each record passes :meth:`keeps` first; the core's effects are not
    performed (no Redis, no producer): a withdrawal or erasure only drops the
    rows in memory, which the core does itself.
    """

    def __init__(self, topics: dict[str, str], pz: Pseudonymizer, selector: Selector) -> None:
        self.topics = topics
        self.core = Admission(topics, pz)
        self.selector = selector
        self.kept: dict[str, list[LogRecord]] = {name: [] for name in topics}
        self._names = {topic: name for name, topic in topics.items()}

    def keeps(self, record: LogRecord) -> bool:
        name = self._names.get(record.topic)
        s = self.selector
        if name in ("consent", "erasure"):
            return s.by_user_id(record.key)
        if name == "receipts":
            return s.by_pseudonym(record.key)
        if name == "stages":
            return s.stage(record.value) is not None
        return name == "interactions" and s.interaction(record.key, record.value)

    def take(self, record: Any) -> None:
        """One record as the tail reads it: kept and applied if it is the viewer's."""
        if self.keeps(record):
            self.kept[self._names[record.topic]].append(record)
            self.core.apply([record])

    @property
    def counters(self) -> dict[str, int]:
        return self.core.counters

    def held(self) -> list[dict[str, Any]]:
        return [r for p in self.selector.pseudonyms for r in self.core.store.records(p)]


@dataclass
class Changelogs:
    """The latest value per key of the viewer's entries in the workers' changelogs."""

    windows: dict[bytes, bytes | None] = field(default_factory=dict)
    consent: dict[bytes, bytes | None] = field(default_factory=dict)
    found: dict[str, bool] = field(default_factory=dict)


def _consumer(endpoints: Endpoints) -> Any:
    return kafka_consumer(endpoints, "export", unique=True, max_partition_fetch_bytes=BULK_FETCH_BYTES)


def read_trainer_view(
    settings: Settings, endpoints: Endpoints, pz: Pseudonymizer, selector: Selector, timeout_s: float
) -> ExportView:
    """Consent, erasure, stages, receipts, then interactions, as the trainer reads them at start."""
    consumer = _consumer(endpoints)
    try:
        tail = topic_tail(
            endpoints, consumer, [settings.topic(t) for t in TRAINER_TOPICS], settings.partitions
        )
        view = ExportView(trainer_topics(settings), pz, selector)
        catch_up(tail, view.take, view.topics, timeout_s)
        return view
    finally:
        consumer.close()


def _read_latest(
    endpoints: Endpoints, consumer: Any, topic: str, keep: Callable[[bytes | None], bool], timeout_s: float
) -> dict[bytes, bytes | None]:
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        return {}
    records: list[LogRecord] = []
    tail = topic_tail(endpoints, consumer, [topic], max(partitions) + 1)
    tail.read_to_end(lambda r: records.append(r) if keep(r.key) else None, timeout_s)
    return latest_by_key(records, keep)


def read_changelogs(
    settings: Settings, endpoints: Endpoints, selector: Selector, timeout_s: float
) -> Changelogs:
    """The workers' window-state and consent tables; a changelog not created yet reads as empty."""
    topics = changelog_topics(settings.app_id)
    keeps = {"windows": lambda k: selector.changelog_key(k) is not None, "consent": selector.by_pseudonym}
    out = Changelogs()
    consumer = _consumer(endpoints)
    try:
        existing = consumer.topics()  # metadata of every topic: creates none
        for name, topic in topics.items():
            out.found[name] = topic in existing
            if out.found[name]:
                setattr(out, name, _read_latest(endpoints, consumer, topic, keeps[name], timeout_s))
    finally:
        consumer.close()
    return out


def read_serving(
    settings: Settings, endpoints: Endpoints, pz: Pseudonymizer, user_id: str, names: list[str], n: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Recommendations through the reader, and the controls it applies."""
    client = redis_client(endpoints)
    try:
        layout = Layout.from_settings(settings)
        response = Reader(client, pz, layout).get(user_id, n)
        controls = get_controls(client, layout, names)
    finally:
        client.close()
    stored = msgspec.to_builtins(controls)
    stored["hidden"] = sorted(stored["hidden"])
    return msgspec.to_builtins(response), stored


def _sources(settings: Settings, view: ExportView, logs: Changelogs, n: int) -> dict[str, Any]:
    kept = {name: len(rows) for name, rows in view.kept.items()}
    layout = Layout.from_settings(settings)
    topics = changelog_topics(settings.app_id)
    return {
        "consent": {"topic": view.topics["consent"], "key": "user id", "records": kept["consent"]},
        "consent.stream_table": {"topic": topics["consent"], "exists": logs.found.get("consent", False)},
        "erasure": {
            "topics": {t: view.topics[t] for t in ("erasure", "stages", "receipts")},
            "records": {t: kept[t] for t in ("erasure", "stages", "receipts")},
        },
        "interactions": {
            "topic": view.topics["interactions"],
            "records": kept["interactions"],
            "how": "read after the consent and erasure topics, judged by the trainer's ingestion",
        },
        "open_windows": {
            "topic": topics["windows"],
            "exists": logs.found.get("windows", False),
            "entries": sum(v is not None for v in logs.windows.values()),
        },
        "recommendations": {"redis": "the reader (as services get them)", "n": n},
        "controls": {"redis": f"{layout.controls_prefix}<pseudonym>, the first pseudonym that has any"},
    }


def _count_export(settings: Settings, endpoints: Endpoints) -> None:
    """One more export served, for the ethics audit (a count only; a failure only logs)."""
    from pipeline.ops.keys import exports_key

    client = redis_client(endpoints)
    try:
        client.incr(exports_key(settings.app_id))
    except Exception:
        log.warning("export counter not updated")
    finally:
        client.close()


def collect_export(
    settings: Settings,
    endpoints: Endpoints,
    user_id: str,
    *,
    n: int | None = None,
    timeout_s: float = 120.0,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """The ``export.v1`` document of ``user_id`` (see :mod:`pipeline.rights.export`).

    ``user_id`` is brought to its canonical form first: records are keyed by it.
    ``timeout_s`` bounds the whole collection, not each read: past it, :class:`TimeoutError`.
    """
    user_id = canonical_user_id(user_id, casefold=settings.pseudonym.casefold_user_ids)
    pz = pseudonymizer(settings)
    names = pz.candidates(user_id)
    selector = Selector(user_id, names)
    n = min(n or settings.trainer.top_n, MAX_N)
    t0 = time.monotonic()

    def left() -> float:
        remaining = t0 + timeout_s - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"export not collected within {timeout_s:g} s")
        return remaining

    view = read_trainer_view(settings, endpoints, pz, selector, left())
    logs = read_changelogs(settings, endpoints, selector, left())
    recs, controls = read_serving(settings, endpoints, pz, user_id, names, n)
    left()
    log.info("export collected in %.2f s", time.monotonic() - t0)
    _count_export(settings, endpoints)
    consent = consent_section(view.kept["consent"]) | {"stream_table": stream_consent(logs.consent)}
    return assemble(
        user_id=user_id,
        pseudonyms=names,
        generated_at_ms=int(clock() * 1000),
        consent=consent,
        erasure=erasure_section(view.kept["erasure"], view.kept["stages"], view.kept["receipts"]),
        interactions=interactions_section(view.held(), len(view.kept["interactions"]), view.counters),
        windows=open_windows(logs.windows, selector, settings.stream.window_size_ms),
        recommendations=recs,
        controls=controls,
        sources=_sources(settings, view, logs, n),
    )
