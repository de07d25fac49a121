"""``privrec status``: services, workers, trainer, lag, model, last erasure receipt, metrics endpoints.

Everything is read from where the processes publish it (worker and trainer
stats in Redis, the recommendation cache, consumer-group offsets, the
``receipts`` topic); a part that cannot be read is ``null`` in the JSON, and
``missing`` says in words what is absent. The exit status follows the worst
finding (:func:`exit_status`): 0 healthy, 1 a service does not answer, 3 the
services answer but the pipeline is not processing (a consumer group STALL,
STOP or REWIND, or no live worker while the worker group has lag); 2 stays the
code of usage and configuration errors, as for every command.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from agents.cli._output import print_table
from agents.cli.services import service_status
from pipeline.connect import Endpoints, resolve
from pipeline.errors import ServiceUnavailable
from pipeline.keys import key_source
from pipeline.settings import Settings

__all__ = [
    "EXIT_OK",
    "EXIT_SERVICE_DOWN",
    "EXIT_UNHEALTHY",
    "STALE_S",
    "exit_status",
    "health_summary",
    "print_health",
]

log = logging.getLogger(__name__)

STALE_S = 10.0
"""Workers publish stats every 2 s; older than this, a worker is listed as stale, not live."""


EXIT_OK = 0
EXIT_SERVICE_DOWN = 1
EXIT_UNHEALTHY = 3


def exit_status(out: dict[str, Any], worker_group: str) -> int:
    """The worst finding of :func:`health_summary` as an exit status (module docstring)."""
    from pipeline.ops.lag import Status

    if not all(s["reachable"] for s in out["services"].values()):
        return EXIT_SERVICE_DOWN
    groups = (out.get("lag") or {}).get("groups") or []
    if any(Status[g["status"]].is_error for g in groups):
        return EXIT_UNHEALTHY
    workers = out.get("workers")
    lagging = any(g["group"] == worker_group and (g["total_lag"] or 0) > 0 for g in groups)
    if workers is not None and lagging and not any(w["live"] for w in workers):
        return EXIT_UNHEALTHY
    return EXIT_OK


def _now_ms() -> int:
    return int(time.time() * 1000)


def _processes(settings: Settings, endpoints: Endpoints, now_ms: int) -> dict[str, Any]:
    from pipeline.connect import redis_client
    from pipeline.ops.summary import live_model, process_reports
    from pipeline.serving.layout import Layout

    client = redis_client(endpoints, socket_timeout=3.0, socket_connect_timeout=3.0)
    try:
        workers = process_reports(client, settings.app_id, "worker", now_ms)
        trainers = process_reports(client, settings.app_id, "trainer", now_ms)
        model = live_model(client, Layout.from_settings(settings))
    finally:
        client.close()
    return {
        "workers": [w.to_dict() | {"live": w.age_s <= STALE_S} for w in workers],
        "trainers": [t.to_dict() | {"live": t.age_s <= STALE_S * 3} for t in trainers],
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
            }
        )
    return {"samples": samples, "interval_s": interval_s, "groups": rows}


def _kafka_parts(
    settings: Settings, endpoints: Endpoints, samples: int, interval_s: float, now_ms: int
) -> dict[str, Any]:
    from agents.metrics import lag_collector
    from pipeline.ops.collect import log_end_offsets, pipeline_groups
    from pipeline.ops.summary import last_receipt

    collector = lag_collector(endpoints)
    try:
        lag = _lag(collector, pipeline_groups(settings), samples, interval_s) if samples > 0 else None
        topic = settings.topic("receipts")
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
            notes.append("no live worker (none published stats in the last 10 s): run `privrec worker`")
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


def _when(ms: int | None) -> str:
    if ms is None:
        return "?"
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit} ago"
    return f"{seconds:.0f}s ago"


def print_health(out: dict[str, Any]) -> None:
    """The human form: one table or line per part, then what is missing."""
    rows = [
        [name, s["mode"], s["address"] or "-", "yes" if s["reachable"] else "NO", s["pid"] or "-"]
        for name, s in out["services"].items()
    ]
    print_table(["SERVICE", "MODE", "ADDRESS", "REACHABLE", "PID"], rows)
    redis = out["services"]["redis"]
    if redis.get("version"):
        warning = redis.get("version_warning")
        print(f"redis version: {redis['version']}" + (f" (WARNING: {warning})" if warning else ""))
    print(f"pseudonym keys: {out['pseudonym_keys']}")
    procs = (out["workers"] or []) + (out["trainers"] or [])
    if procs:
        print()
        print_table(
            ["PROCESS", "ID", "STATS-AGE", "PARTITIONS", "METRICS"],
            [
                [
                    p["kind"] + ("" if p["live"] else " (stale)"),
                    p["id"],
                    f"{p['age_s']:.1f}s",
                    ",".join(map(str, p["assigned"])) or "-",
                    p["metrics"] or "-",
                ]
                for p in procs
            ],
        )
    lag = out["lag"]
    if lag is not None:
        n = lag["samples"]
        spread = f" {lag['interval_s']:g} s apart" if n > 1 else ""
        print(f"\nlag ({n} sample{'s' if n > 1 else ''}{spread}; COMMITTED: partitions with an offset):")
        print_table(
            ["GROUP", "STATUS", "LAG", "MAX-LAG-S", "COMMITTED", "STATE", "MEMBERS"],
            [
                [
                    g["group"],
                    g["status"],
                    g["total_lag"],
                    "-" if g["max_lag_seconds"] is None else f"{g['max_lag_seconds']:.1f}",
                    g["committed_partitions"],
                    g["state"] or "?",
                    "?" if g["members"] is None else g["members"],
                ]
                for g in lag["groups"]
            ],
        )
    print()
    m = out["model"]
    if out["workers"] is None:
        print("model: unknown (Redis not read)")
    elif m is None:
        print("model: none published")
    else:
        ndcg = "?" if m["ndcg_at_10"] is None else f"{m['ndcg_at_10']:.4f}"
        print(
            f"model: {m['version']} (holdout NDCG@10 {ndcg}), trained {_ago(m['age_s'])}; "
            f"last published {_when(m['published_at_ms'])} ({_ago(m['published_age_s'])})"
        )
    r = out["last_receipt"]
    if not out["services"]["kafka"]["reachable"]:
        print("last erasure receipt: unknown (Kafka not read)")
    elif r is None:
        print("last erasure receipt: none")
    else:
        took = "" if r["duration_s"] is None else f", {r['duration_s']:g} s after its request"
        print(
            f"last erasure receipt: request {r['request_id'] or '?'} completed "
            f"{_when(r['completed_at_ms'])} ({_ago(r['age_s'])}){took}"
        )
    for note in out["missing"]:
        print(f"missing: {note}")
