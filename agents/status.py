"""What ``privrec status`` reports: services, workers, trainer, lag, model, last receipt, metrics.

Everything is read from where the processes publish it (worker and trainer
stats in Redis, the recommendation cache, consumer-group offsets, the
``receipts`` topic); a part that cannot be read is ``null`` in the JSON, and
``missing`` says in words what is absent. The exit status is
:func:`agents.cli.status.exit_status` (the worst finding). Liveness comes from
heartbeats with expiry: a worker is live while its stats are at most
:data:`STALE_S` old, a trainer while its own are at most
:data:`agents.liveness.TRAINER_LIVE_S` old; the trainer group's members come from
those heartbeats (``members_from: "heartbeat"``), since the trainer reads with
manual assignment and the broker counts no member for it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from agents.liveness import TRAINER_LIVE_S, trainer_liveness
from pipeline.embedded import EmbeddedServices
from pipeline.embedded.redis_server import running_version, version_warning
from pipeline.errors import ServiceUnavailable
from pipeline.kafka.topics import Topic
from pipeline.keys import key_source
from pipeline.services.connect import Endpoints, resolve
from pipeline.services.health import kafka_reachable, redis_reachable
from pipeline.settings import Settings, mask_url

__all__ = ["STALE_S", "health_summary", "service_status"]

log = logging.getLogger(__name__)

STALE_S = 10.0
"""Workers publish stats every 2 s; older than this, a worker is listed as stale, not live."""


def service_status(settings: Settings) -> dict[str, Any]:
    """Per service: embedded or external, address, reachable, pid."""
    records = EmbeddedServices(settings.state_dir).records()
    out: dict[str, Any] = {}
    if settings.kafka.embedded:
        rec = records.get("kafka")
        alive = rec is not None and rec.alive()
        out["kafka"] = {
            "mode": "embedded",
            "address": rec.display_url if rec else None,
            "pid": rec.pid if alive and rec else None,
            "reachable": bool(alive and rec and kafka_reachable(rec.url, 2.0)),
        }
    else:
        addr = settings.kafka.bootstrap_servers or ""
        out["kafka"] = {
            "mode": "external",
            "address": addr,
            "pid": None,
            "reachable": kafka_reachable(addr, 3.0, **settings.kafka.client_options()),
        }
    if settings.redis.embedded:
        rec = records.get("redis")
        alive = rec is not None and rec.alive()
        url = rec.url if alive and rec else ""
        out["redis"] = {
            "mode": "embedded",
            "address": rec.display_url if rec else None,
            "pid": rec.pid if alive and rec else None,
            "reachable": bool(url and redis_reachable(url)),
        }
    else:
        url = settings.redis.url.get_secret_value() if settings.redis.url else ""
        out["redis"] = {
            "mode": "external",
            "address": mask_url(url),
            "pid": None,
            "reachable": redis_reachable(url),
        }
    version = running_version(url) if out["redis"]["reachable"] else None
    out["redis"].update(version=version, version_warning=version and version_warning(version))
    return out


def _now_ms() -> int:
    return int(time.time() * 1000)


def _liveness(report: Any, live_s: float) -> dict[str, Any]:
    """A report as status shows it: ``live`` while its heartbeat is fresh and its process has not
    exited (``exited``: seen gone on this host, e.g. the worker of a finished ``demo --keep``)."""
    exited = report.exited()
    return report.to_dict() | {"live": report.age_s <= live_s and not exited, "exited": exited}


def _processes(settings: Settings, endpoints: Endpoints, now_ms: int) -> dict[str, Any]:
    from pipeline.ops.summary import live_model, process_reports
    from pipeline.services.connect import redis_client
    from pipeline.serving.layout import Layout

    client = redis_client(endpoints, socket_timeout=3.0, socket_connect_timeout=3.0)
    try:
        workers = process_reports(client, settings.app_id, "worker", now_ms)
        trainers = process_reports(client, settings.app_id, "trainer", now_ms)
        model = live_model(client, Layout.from_settings(settings))
    finally:
        client.close()
    return {
        "workers": [_liveness(w, STALE_S) for w in workers],
        "trainers": [_liveness(t, TRAINER_LIVE_S) for t in trainers],
        "model": model.to_dict(now_ms) if model else None,
    }


def _lag(collector: Any, groups: list[str], samples: int, interval_s: float) -> dict[str, Any]:
    from pipeline.ops.lag import LagWindow

    window = LagWindow(size=max(samples, 1))
    infos: dict[str, Any] = {}
    for i in range(samples):
        if i:
            time.sleep(max(0.0, interval_s))  # the window's span: Burrow's rules compare samples over time
        taken, infos = collector.sample(groups)
        window.extend(taken)
    rows = []
    for group in window.evaluate(groups):
        info = infos.get(group.group)
        seconds = group.max_lag_seconds
        rows.append(
            {
                "group": group.group,
                "status": group.status.name,
                "total_lag": group.total_lag,
                "max_lag_seconds": None if seconds is None else round(seconds, 3),
                "committed_partitions": len(group.partitions),
                "state": info.state if info else None,
                "members": info.members if info else None,
                "members_from": info.via if info else None,
            }
        )
    return {"samples": samples, "interval_s": interval_s, "groups": rows}


def _kafka_parts(
    settings: Settings, endpoints: Endpoints, samples: int, interval_s: float, now_ms: int
) -> dict[str, Any]:
    from agents.metrics import lag_collector
    from pipeline.ops.collect import log_end_offsets, pipeline_groups
    from pipeline.ops.summary import last_receipt

    collector = lag_collector(endpoints, trainer_liveness(settings, endpoints))
    try:
        lag = _lag(collector, pipeline_groups(settings), samples, interval_s) if samples > 0 else None
        topic = settings.topic(Topic.RECEIPTS)
        partitions = collector.consumer.partitions_for_topic(topic)
        receipt = None
        if partitions:
            ends = log_end_offsets(
                collector.consumer,
                [(topic, p) for p in sorted(partitions)],
                bootstrap=endpoints.kafka_bootstrap,
                client_options=endpoints.kafka_options,
                timeout_s=endpoints.request_timeout_s,
            )
            receipt = last_receipt(collector.consumer, ends, timeout_s=endpoints.request_timeout_s)
        if receipt is not None:
            receipt["age_s"] = round(max(0, now_ms - receipt["completed_at_ms"]) / 1000, 1)
    finally:
        collector.consumer.close()
        collector.admin.close()
    return {"lag": lag, "last_receipt": receipt, "receipts_topic": bool(partitions)}


def _missing(settings: Settings, out: dict[str, Any]) -> list[str]:
    notes = [f"{name} does not answer" for name, s in out["services"].items() if not s["reachable"]]
    workers, trainers = out.get("workers"), out.get("trainers")
    if workers is not None:
        live = [w for w in workers if w["live"]]
        if not live:
            notes.append(
                "no live worker (none running that published stats in the last 10 s): run `privrec worker`"
            )
        else:
            held = sorted(p for w in live for p in w["assigned"])
            unheld = sorted(set(range(settings.partitions)) - set(held))
            if unheld:
                notes.append(f"partitions held by no live worker: {unheld} (rebalancing?)")
    if trainers is not None and not any(t["live"] for t in trainers):
        notes.append("no continuous trainer reporting: run `privrec train`")
    if workers is not None and out["model"] is None:
        notes.append("no model published yet")
    if out.get("receipts_topic") is False:
        notes.append("no receipts topic: run `privrec topics create`")
    return notes


def health_summary(
    settings: Settings, *, lag_samples: int = 3, lag_interval_s: float = 1.5
) -> dict[str, Any]:
    """The whole picture as JSON-ready data; parts behind an unreachable service are ``None``."""
    services = service_status(settings)
    out: dict[str, Any] = {"services": services, "pseudonym_keys": key_source(settings)}
    out.update(workers=None, trainers=None, model=None, lag=None, last_receipt=None)
    try:
        endpoints = resolve(settings)
    except ServiceUnavailable:
        endpoints = None
    now_ms = _now_ms()
    errors: list[str] = []
    if endpoints is not None and services["redis"]["reachable"]:
        try:
            out.update(_processes(settings, endpoints, now_ms))
        except Exception as exc:  # redis went away between the probe and now
            errors.append(f"redis: could not read worker stats or the model ({type(exc).__name__})")
    if endpoints is not None and services["kafka"]["reachable"]:
        try:
            out.update(_kafka_parts(settings, endpoints, lag_samples, lag_interval_s, now_ms))
        except (ServiceUnavailable, OSError) as exc:
            errors.append(f"kafka: could not read lag or receipts ({exc})")
    out["metrics_endpoints"] = [
        {"kind": p["kind"], "id": p["id"], "url": p["metrics"]}
        for p in (out["workers"] or []) + (out["trainers"] or [])
        if p["live"] and p["metrics"]
    ]
    out["missing"] = _missing(settings, out) + errors
    out.pop("receipts_topic", None)
    return out
