"""Prometheus metrics of the pipeline, on a registry the caller owns.

Base units (seconds, messages), ``_total`` counters, and labels that never
carry a user: groups, topics, partitions, stages and reasons only. Reasons
come from code, yet any that does not look like an identifier
(``[a-z][a-z0-9_.-]*``, at most 64 characters) is exported as ``other``, so
a bug elsewhere cannot leak an id into a label or explode cardinality.

The stream workers keep cumulative totals (:class:`~pipeline.stream.counters.StreamCounters`);
they are exposed through a custom collector that yields ``CounterMetricFamily``
from the latest totals handed to :func:`update_from_worker_counters`, so the
totals stay counters without being re-incremented here; the trainer's
counters go the same way through :func:`update_from_trainer_counters`.
Erasure stages report their durations with :meth:`PipelineMetrics.observe_erasure`.

Example::

    >>> from prometheus_client import CollectorRegistry, generate_latest
    >>> metrics = PipelineMetrics(CollectorRegistry())
    >>> update_from_worker_counters(metrics, {"received": 3, "dropped:no_consent_record": 1})
    >>> b'privrec_events_total{stage="received"} 3.0' in generate_latest(metrics.registry)
    True
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Enum,
    Gauge,
    Histogram,
    Info,
    start_http_server,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from pipeline.ops.lag import GroupLag, Status

MODEL_FAMILIES = ("als", "ease", "itemknn", "popular", "unknown")
"""States of ``privrec_model_family``: the trainer's families, the popularity list, anything else."""

__all__ = [
    "DP_DAYS_EXPORTED",
    "ERASURE_BUCKETS",
    "EVENT_STAGES",
    "MODEL_FAMILIES",
    "SECTIONS",
    "PipelineMetrics",
    "TrainerCountersCollector",
    "WorkerCountersCollector",
    "process_registry",
    "serve_metrics",
    "update_dp_spent",
    "update_from_lag",
    "update_from_trainer_counters",
    "update_from_worker_counters",
    "update_model",
]

SECTIONS = frozenset({"lag", "stream", "model", "trainer", "erasure"})
"""Groups of metrics a process can choose to export."""

EVENT_STAGES = ("received", "redacted", "windowed", "analytics_only", "replayed")
"""Worker counters exported as ``privrec_events_total{stage}``."""

ERASURE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0)
"""Erasure durations: a tenth of a second to the 30 s an erasure may take."""


def process_registry(*, auto_describe: bool = False) -> CollectorRegistry:
    """A fresh registry with the standard ``process_*`` and ``python_*`` metrics.

    Each privrec process owns its registry (not the library's global one), so
    these collectors are added here: CPU seconds, resident memory, open file
    descriptors and start time of the process; the interpreter's version and
    its garbage-collector counts, as every Prometheus client exports them.
    """
    registry = CollectorRegistry(auto_describe=auto_describe)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


_LAG_LABELS = ("group", "topic", "partition")
_REASON = re.compile(r"[a-z][a-z0-9_.-]{0,63}")


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _reason(value: str) -> str:
    return value if _REASON.fullmatch(value) else "other"


class _TotalsCollector(Collector):
    """Holds the latest cumulative totals of a process; subclasses turn them into counters."""

    def __init__(self) -> None:
        self._totals: dict[str, int] = {}
        self._lock = threading.Lock()

    def set_totals(self, counters: Mapping[str, int]) -> None:
        totals = {str(k): int(v) for k, v in counters.items()}
        with self._lock:
            self._totals = totals

    def totals(self) -> dict[str, int]:
        with self._lock:
            return self._totals


class WorkerCountersCollector(_TotalsCollector):
    """Counter families read from the latest cumulative worker totals."""

    def collect(self) -> Iterator[Metric]:
        totals = self.totals()
        events = CounterMetricFamily(
            "privrec_events_total", "Events through each stage of the privacy stream.", labels=["stage"]
        )
        for stage in EVENT_STAGES:
            events.add_metric([stage], totals.get(stage, 0))
        yield events
        labelled = {
            "dropped": CounterMetricFamily(
                "privrec_dropped_events_total",
                "Events dropped, by reason (no consent, ...).",
                labels=["reason"],
            ),
            "dlq": CounterMetricFamily(
                "privrec_dlq_total", "Records sent to the dead-letter topic, by reason.", labels=["reason"]
            ),
            "consent": CounterMetricFamily(
                "privrec_consent_updates_total", "Consent records applied, by change.", labels=["change"]
            ),
        }
        sums: dict[str, dict[str, int]] = {name: {} for name in labelled}
        for key, value in totals.items():
            prefix, sep, reason = key.partition(":")
            if sep and prefix in sums:
                bucket = sums[prefix]
                bucket[_reason(reason)] = bucket.get(_reason(reason), 0) + value
        for prefix, family in labelled.items():
            for reason, value in sorted(sums[prefix].items()):
                family.add_metric([reason], value)
            yield family
        for name, key, doc in (
            ("privrec_late_events_total", "late", "Events behind the watermark, outside their window."),
            ("privrec_windows_emitted_total", "windows_emitted", "Closed windows emitted as interactions."),
            ("privrec_windows_purged_total", "windows_purged", "Open windows purged by erasure or consent."),
            ("privrec_redacted_fields_total", "redacted_fields", "Fields removed by redaction."),
        ):
            yield CounterMetricFamily(name, doc, value=totals.get(key, 0))


class TrainerCountersCollector(_TotalsCollector):
    """``privrec_trainer_events_total{event}`` from the trainer's cumulative counters."""

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "privrec_trainer_events_total",
            "Trainer counters by name (interactions, interactions_invalid, users_forgotten, ...).",
            labels=["event"],
        )
        sums: dict[str, int] = {}
        for key, value in self.totals().items():
            sums[_reason(key)] = sums.get(_reason(key), 0) + value
        for event, value in sorted(sums.items()):
            family.add_metric([event], value)
        yield family


class PipelineMetrics:
    """Every privrec metric; those of ``sections`` are registered on ``registry``.

    The registry is the caller's, never the global default. ``sections``
    (``lag``, ``stream``, ``model``, ``trainer``, ``erasure``; default all)
    says what this process exports: a lag monitor should not export a zero
    NDCG. Metrics of other sections still exist and accept updates, unexported.
    A worker exports ``lag``, ``stream`` and ``model``; the trainer ``model``,
    ``trainer`` and ``erasure``.
    """

    def __init__(self, registry: CollectorRegistry, sections: Iterable[str] = SECTIONS) -> None:
        chosen = frozenset(sections)
        if not chosen <= SECTIONS:
            raise ValueError(f"unknown metric sections: {sorted(chosen - SECTIONS)}")
        self.registry = registry
        self.sections = chosen
        lag, model, erasure = (registry if s in chosen else None for s in ("lag", "model", "erasure"))
        self.consumer_lag_messages = Gauge(
            "privrec_consumer_lag_messages",
            "Messages between a group's committed offset and the log end.",
            _LAG_LABELS,
            registry=lag,
        )
        self.consumer_lag_seconds = Gauge(
            "privrec_consumer_lag_seconds",
            "How far behind a group is in time (interpolated, or the oldest unconsumed message's age).",
            _LAG_LABELS,
            unit="seconds",
            registry=lag,
        )
        self.consumer_group_status = Enum(
            "privrec_consumer_group_status",
            "Burrow-style status of a consumer group.",
            ["group"],
            states=[s.name for s in Status],
            registry=lag,
        )
        self.worker_counters = WorkerCountersCollector()
        if "stream" in chosen:
            registry.register(self.worker_counters)
        self.trainer_counters = TrainerCountersCollector()
        if "trainer" in chosen:
            registry.register(self.trainer_counters)
        self.model_version = Info(
            "privrec_model_version", "The recommendation model being served.", registry=model
        )
        self.model_ndcg_at_10 = Gauge(
            "privrec_model_ndcg_at_10", "NDCG@10 of the served model on its holdout.", registry=model
        )
        self.model_validation_ndcg = Gauge(
            "privrec_model_validation_ndcg",
            "NDCG@10 of the served model's self-tuned setting on the tuner's validation split.",
            registry=model,
        )
        self.model_family = Enum(
            "privrec_model_family",
            "The served model's family (popular: the popularity list, no personal model passed the gate).",
            states=list(MODEL_FAMILIES),
            registry=model,
        )
        self.model_setting = Info(
            "privrec_model_setting", "The served model's family and (self-tuned) setting.", registry=model
        )
        self.model_publish_timestamp_seconds = Gauge(
            "privrec_model_publish_timestamp_seconds",
            "When the served model was published (Unix time).",
            unit="seconds",
            registry=model,
        )
        self.model_publish_duration_seconds = Gauge(
            "privrec_model_publish_duration_seconds",
            "How long writing and switching the last model published by this trainer took.",
            unit="seconds",
            registry=registry if "trainer" in chosen else None,
        )
        self.dp_epsilon_spent = Gauge(
            "privrec_dp_epsilon_spent",
            "Privacy budget (epsilon) spent by DP trending releases per UTC day, from the dp.ledger topic.",
            ["day"],
            registry=registry if "trainer" in chosen else None,
        )
        self.dp_epsilon_budget = Gauge(
            "privrec_dp_epsilon_budget",
            "The per-day privacy budget (dp.epsilon_per_day).",
            registry=registry if "trainer" in chosen else None,
        )
        self._dp_days: set[str] = set()
        self.erasure_duration_seconds = Histogram(
            "privrec_erasure_duration_seconds",
            "From an erasure request to the end of a stage (stream, trainer, cache) or its receipt.",
            ["stage"],
            unit="seconds",
            buckets=ERASURE_BUCKETS,
            registry=erasure,
        )
        self._lag_series: set[tuple[str, str, str]] = set()
        self._seconds_series: set[tuple[str, str, str]] = set()
        self._groups: set[str] = set()
        self._lock = threading.Lock()

    def observe_erasure(self, stage: str, seconds: float) -> None:
        """Record how long an erasure took from its request to the end of ``stage``.

        ``stage`` is ``stream``, ``trainer``, ``cache`` or ``receipt`` (the whole
        erasure); anything not shaped like an identifier is recorded as ``other``.
        """
        self.erasure_duration_seconds.labels(_reason(stage)).observe(max(0.0, seconds))


DP_DAYS_EXPORTED = 31
"""Days of ``privrec_dp_epsilon_spent`` exported (the newest), so the label set stays bounded."""


def update_dp_spent(
    metrics: PipelineMetrics, spent: Mapping[str, tuple[float, float]], budget: float
) -> None:
    """Set ε spent per day (``pipeline.dp.ledger.spent_by_day``) for the newest days; drop older series."""
    days = sorted(d for d in spent if _DAY.fullmatch(d))[-DP_DAYS_EXPORTED:]
    with metrics._lock:
        for day in metrics._dp_days - set(days):
            metrics.dp_epsilon_spent.remove(day)
        for day in days:
            metrics.dp_epsilon_spent.labels(day).set(spent[day][0])
        metrics._dp_days = set(days)
    metrics.dp_epsilon_budget.set(budget)


def update_from_worker_counters(metrics: PipelineMetrics, counters: Mapping[str, int]) -> None:
    """Expose the workers' cumulative totals (names as in :mod:`pipeline.stream.processor`).

    ``received``, ``redacted``, ``windowed``, ``analytics_only``, ``replayed``
    → ``privrec_events_total{stage}``; ``dropped:<reason>`` →
    ``privrec_dropped_events_total{reason}``; ``dlq:<reason>`` →
    ``privrec_dlq_total{reason}``; ``consent:updated|withdrawn`` →
    ``privrec_consent_updates_total{change}``; ``late``, ``windows_emitted``,
    ``windows_purged``, ``redacted_fields`` → their own ``_total``. Other names
    are not exported. Pass the totals of every processor of this process.
    """
    metrics.worker_counters.set_totals(counters)


def update_from_trainer_counters(metrics: PipelineMetrics, counters: Mapping[str, int]) -> None:
    """Expose the trainer's cumulative counters (``Trainer.counters``) as ``privrec_trainer_events_total``."""
    metrics.trainer_counters.set_totals(counters)


def update_from_lag(metrics: PipelineMetrics, evaluation: Iterable[GroupLag]) -> None:
    """Set lag gauges and group statuses; series of partitions no longer reported are removed."""
    lag: dict[tuple[str, str, str], float] = {}
    seconds: dict[tuple[str, str, str], float] = {}
    statuses: dict[str, str] = {}
    for group in evaluation:
        statuses[group.group] = group.status.name
        for p in group.partitions:
            labels = (p.group, p.topic, str(p.partition))
            lag[labels] = p.lag
            if p.lag_seconds is not None:
                seconds[labels] = p.lag_seconds
    with metrics._lock:
        for gauge, values, known in (
            (metrics.consumer_lag_messages, lag, metrics._lag_series),
            (metrics.consumer_lag_seconds, seconds, metrics._seconds_series),
        ):
            for labels, value in values.items():
                gauge.labels(*labels).set(value)
            for labels in known - values.keys():
                gauge.remove(*labels)
            known.clear()
            known.update(values)
        for name, state in statuses.items():
            metrics.consumer_group_status.labels(name).state(state)
        for name in metrics._groups - statuses.keys():
            metrics.consumer_group_status.remove(name)
        metrics._groups = set(statuses)


def update_model(
    metrics: PipelineMetrics,
    version: str,
    ndcg_at_10: float | None = None,
    published_s: float | None = None,
    *,
    publish_duration_s: float | None = None,
    validation_ndcg: float | None = None,
    setting: Mapping[str, Any] | None = None,
    family: str | None = None,
) -> None:
    """Record the model now served: its version, family, quality, publish time (Unix seconds).

    ``publish_duration_s`` is for the trainer that just published it;
    ``validation_ndcg`` and ``setting`` come from self-tuning (the chosen
    family and setting, as label values).
    """
    metrics.model_version.info({"version": version})
    if family is not None:
        metrics.model_family.state(family if family in MODEL_FAMILIES else "unknown")
    if ndcg_at_10 is not None:
        metrics.model_ndcg_at_10.set(ndcg_at_10)
    if validation_ndcg is not None:
        metrics.model_validation_ndcg.set(validation_ndcg)
    if setting:
        metrics.model_setting.info({str(k): str(v) for k, v in setting.items()})
    if published_s is not None:
        metrics.model_publish_timestamp_seconds.set(published_s)
    if publish_duration_s is not None:
        metrics.model_publish_duration_seconds.set(publish_duration_s)


def serve_metrics(registry: CollectorRegistry, host: str = "127.0.0.1", port: int = 9464) -> Any:
    """Serve ``registry`` at ``http://host:port/metrics`` from a daemon thread.

    Returns the server; ``server.shutdown()`` stops it and ``server.server_port``
    is the port bound (useful with ``port=0``).
    """
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server
