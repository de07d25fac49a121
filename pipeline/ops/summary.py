"""What ``privrec status`` reads: process reports in Redis, the live model, the last erasure receipt.

Workers publish their stats every 2 s and the trainer its own, under the keys
of :mod:`pipeline.ops.keys` (JSON, with a TTL); both carry ``metrics``, the URL
of their ``/metrics`` when served.
These functions read them with clients passed in and return plain data: no
payloads, no user ids (a receipt's pseudonym is never read out).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.ops.keys import StatsKind, stats_pattern
from pipeline.ops.times import rfc3339
from pipeline.serving.layout import Layout
from pipeline.serving.publish import live_version, read_meta

__all__ = [
    "LiveModel",
    "ProcessReport",
    "last_receipt",
    "live_model",
    "process_identity",
    "process_reports",
]


def process_identity() -> dict[str, Any]:
    """What a process puts into its stats so readers on its host can tell it has exited:
    ``pid``, ``host`` and the kernel's ``start_time`` (a reused pid is not the same process)."""
    import os
    import socket

    from pipeline.embedded.process import process_start_time

    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "start_time": process_start_time(pid)}


log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProcessReport:
    """One worker's or trainer's latest stats: who, how old, what it holds, where it is scraped."""

    kind: str
    id: str
    age_s: float
    assigned: tuple[int, ...]
    metrics: str | None
    counters: Mapping[str, int]
    pid: int | None = None
    host: str | None = None
    start_time: int | None = None

    def exited(self) -> bool:
        """Whether the process is known to be gone: it ran on this host and its pid (with the
        same start time) no longer runs. Stats from elsewhere, or without a pid, cannot tell."""
        import socket

        from pipeline.embedded.process import is_alive

        if self.pid is None or self.host != socket.gethostname():
            return False
        return not is_alive(self.pid, self.start_time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "age_s": round(self.age_s, 1),
            "assigned": list(self.assigned),
            "metrics": self.metrics,
            "pid": self.pid,
            "host": self.host,
        }


def process_reports(
    redis: Any, app_id: str, kind: StatsKind, now_ms: int | None = None
) -> list[ProcessReport]:
    """Every ``kind`` (``worker``/``trainer``) process of ``app_id`` whose stats have not expired."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    out = []
    for key in redis.scan_iter(stats_pattern(kind, app_id)):
        raw = redis.get(key)
        if not raw:
            continue
        try:
            data = json.loads(raw)
            at = int(data["at"])
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable %s stats in Redis", kind)
            continue
        out.append(
            ProcessReport(
                kind=kind,
                id=str(data.get(kind) or data.get("worker") or ""),
                age_s=max(0.0, (now - at) / 1000),
                assigned=tuple(sorted(int(p) for p in data.get("assigned") or ())),
                metrics=data.get("metrics"),
                counters={str(k): int(v) for k, v in (data.get("counters") or {}).items()},
                pid=_int_or_none(data.get("pid")),
                host=data.get("host") if isinstance(data.get("host"), str) else None,
                start_time=_int_or_none(data.get("start_time")),
            )
        )
    return sorted(out, key=lambda r: (r.age_s, r.id))


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class LiveModel:
    """The model being served: its version, holdout NDCG@10, when trained and made live (ms)."""

    version: str
    ndcg_at_10: float | None
    trained_at_ms: int | None
    published_at_ms: int | None
    validation_ndcg_at_10: float | None = None
    """The self-tuned setting's NDCG@10 on the tuner's validation split (None: not tuned)."""
    tuning: dict[str, Any] = field(default_factory=dict)
    """Family, setting, trials and seconds of the self-tuning round (``pipeline.recs.tune``)."""
    family: str | None = None  # "als", "ease", "itemknn", or "popular" (no model passed the gate)

    def to_dict(self, now_ms: int) -> dict[str, Any]:
        def age(ms: int | None) -> float | None:
            return None if ms is None else round(max(0.0, (now_ms - ms) / 1000), 1)

        return {
            "version": self.version,
            "family": self.family,
            "ndcg_at_10": self.ndcg_at_10,
            "trained_at_ms": self.trained_at_ms,
            "trained_at": rfc3339(self.trained_at_ms),
            "age_s": age(self.trained_at_ms),
            "published_at_ms": self.published_at_ms,
            "published_at": rfc3339(self.published_at_ms),
            "published_age_s": age(self.published_at_ms),
            "validation_ndcg_at_10": self.validation_ndcg_at_10,
            "tuning": self.tuning,
        }


def live_model(redis: Any, layout: Layout) -> LiveModel | None:
    """The live model from the recommendation cache, or None when nothing is published."""
    version = live_version(redis, layout)
    if version is None:
        return None
    meta = read_meta(redis, layout, version) or {}
    metrics = meta.get("metrics") or {}
    ndcg = metrics.get("ndcg_at_10")
    validation = metrics.get("validation_ndcg_at_10")
    trained = meta.get("trained_at")
    switched = redis.zscore(layout.versions, version)  # scored by the time it went live (ms)
    return LiveModel(
        version=version,
        ndcg_at_10=None if ndcg is None else float(ndcg),
        trained_at_ms=None if trained is None else int(trained),
        published_at_ms=None if switched is None else int(switched),
        validation_ndcg_at_10=None if validation is None else float(validation),
        tuning=dict(metrics.get("tuning") or {}),
        family=str(meta.get("family", "als")),
    )


def _receipt_summary(value: bytes | None, timestamp_ms: int) -> dict[str, Any]:
    try:
        data = json.loads(value or b"")
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    completed = data.get("completed_at")
    requested = data.get("requested_at")
    duration = None
    if isinstance(completed, int) and isinstance(requested, int):
        duration = round(max(0, completed - requested) / 1000, 3)
    completed_at_ms = completed if isinstance(completed, int) else timestamp_ms
    return {
        "request_id": data.get("request_id"),
        "completed_at_ms": completed_at_ms,
        "completed_at": rfc3339(completed_at_ms),
        "duration_s": duration,
        "stages": sorted(data.get("stages") or {}) if isinstance(data.get("stages"), dict) else [],
    }


def last_receipt(
    consumer: Any, ends: Mapping[tuple[str, int], int], timeout_s: float = 5.0
) -> dict[str, Any] | None:
    """The newest erasure receipt among the last record of each partition, or None when none.

    ``ends`` maps (topic, partition) to its true log-end offset
    (:func:`pipeline.ops.collect.log_end_offsets`); ``consumer`` is a group-less
    kafka-python consumer. Only the request id, times and stage names are read.
    """
    from kafka import TopicPartition

    last = {TopicPartition(t, p): end - 1 for (t, p), end in ends.items() if end > 0}
    if not last:
        return None
    newest: tuple[int, bytes | None] | None = None
    consumer.assign(list(last))
    try:
        for tp, offset in last.items():
            consumer.seek(tp, offset)
        pending = set(last)
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=200).items():
                for r in records:
                    if r.offset >= last[tp] and (newest is None or r.timestamp >= newest[0]):
                        newest = (int(r.timestamp), r.value)
                    if r.offset >= last[tp]:
                        pending.discard(tp)
            for tp in list(pending):  # a last batch of control records only: nothing to read
                if consumer.position(tp) > last[tp]:
                    pending.discard(tp)
    finally:
        consumer.unsubscribe()
    if newest is None:
        return None
    return _receipt_summary(newest[1], newest[0])
