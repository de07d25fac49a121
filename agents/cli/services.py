"""``privrec up|down|status|config show|topics|smoke``: services and topics."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from agents.cli._output import print_json, print_table
from pipeline.embedded import EmbeddedServices
from pipeline.errors import PrivrecError, ServiceUnavailable
from pipeline.kafka.topics import SMOKE_TOPIC, create_topics
from pipeline.keys import ensure_dev_key, load_keys
from pipeline.ops.keys import SMOKE_KEY
from pipeline.services.connect import kafka_admin, kafka_consumer, kafka_producer, redis_client, resolve
from pipeline.settings import Settings, mask_url

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("up", help="start the embedded broker and Redis (when not configured externally)")
    p.add_argument("--json", action="store_true", help="per service: mode, state, address, pid, log")
    p.set_defaults(handler=cmd_up)
    p = sub.add_parser(
        "down",
        help="stop every privrec process of the state dir, save the broker's data, stop the services",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='{"stopped": [service, ...], "processes": [...], "snapshot": {...}}',
    )
    p.add_argument(
        "--no-snapshot",
        action="store_true",
        help="do not save the broker's topics (the next `up` restores the previous snapshot, if any)",
    )
    p.set_defaults(handler=cmd_down)
    p = sub.add_parser(
        "status",
        help="health summary: services, workers, trainer, lag, model, last erasure receipt, metrics",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--lag-samples", type=int, default=3, metavar="K", help="lag samples per group (default 3; 0: none)"
    )
    p.add_argument(
        "--lag-interval", type=float, default=1.5, metavar="S", help="seconds between them (default 1.5)"
    )
    p.set_defaults(handler=cmd_status)

    config = sub.add_parser("config", help="inspect settings").add_subparsers(
        dest="config_cmd", required=True
    )
    p = config.add_parser(
        "show", help="the effective settings, embedded addresses and each value's source, secrets masked"
    )
    p.add_argument(
        "--json", action="store_true", help='{"values": {...}, "sources": {SETTING: SOURCE}, "files": {...}}'
    )
    p.set_defaults(handler=cmd_config_show)

    topics = sub.add_parser("topics", help="create or list the pipeline's topics").add_subparsers(
        dest="topics_cmd", required=True
    )
    p = topics.add_parser("create", help="create every topic the pipeline uses (idempotent)")
    p.add_argument("--json", action="store_true", help='{"topic": "created" | "exists", ...}')
    p.set_defaults(handler=cmd_topics_create)
    p = topics.add_parser(
        "list",
        help="every topic privrec owns (the pipeline's, Faust's, leftovers under the prefix): "
        "partitions, retention, cleanup policy, what personal data it may hold",
    )
    p.add_argument("--json", action="store_true", help="one object per topic, with its purpose")
    p.set_defaults(handler=cmd_topics_list)

    p = sub.add_parser("smoke", help="produce/consume round trip and Redis SET/GET")
    p.add_argument("--json", action="store_true", help="the round trips' results as JSON")
    p.set_defaults(handler=cmd_smoke)


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    services = EmbeddedServices(settings.state_dir)
    want_kafka, want_redis = settings.kafka.embedded, settings.redis.embedded
    records = services.up(kafka=want_kafka, redis=want_redis)
    out: dict[str, Any] = {}
    for name, rec in records.items():
        state = "started" if name in services.started else "already running"
        out[name] = {
            "mode": "embedded",
            "state": state,
            "address": rec.display_url,
            "pid": rec.pid,
            "log": str(rec.log_path),
        }
    if not want_kafka:
        out["kafka"] = {
            "mode": "external",
            "state": "not started",
            "address": settings.kafka.bootstrap_servers,
        }
    if not want_redis and settings.redis.url is not None:
        address = mask_url(settings.redis.url.get_secret_value())
        out["redis"] = {"mode": "external", "state": "not started", "address": address}
    dev_key = ensure_dev_key(settings)
    restored = services.restored
    if args.json:
        print_json(
            {
                "services": out,
                "dev_key_file": None if dev_key is None else str(dev_key),
                "restored": restored,
            }
        )
        return 0
    for name, s in out.items():
        if s["mode"] == "embedded":
            print(f"{name}: embedded, {s['state']} at {s['address']} (pid {s['pid']}, log {s['log']})")
        else:
            print(f"{name}: external at {s['address']} (not started)")
    if restored is not None:
        print(
            f"kafka: restored {restored['records']} records of {restored['topics']} topics and the "
            f"offsets of {restored['groups']} groups from the snapshot of {rfc3339(restored['taken_at'])}"
        )
    if dev_key is not None:
        print(f"pseudonym key: development key in {dev_key}")
    return 0


def cmd_down(settings: Settings, args: argparse.Namespace) -> int:
    """Stop the state dir's privrec processes (SIGTERM, SIGKILL after 15 s), save, stop the services."""
    report = EmbeddedServices(settings.state_dir).down(snapshot=not getattr(args, "no_snapshot", False))
    procs = [
        {"pid": e.pid, "kind": e.kind, "signal": "SIGTERM" if e in report.processes else "SIGKILL"}
        for e in report.processes + report.killed
    ]
    if args.json:
        print_json({"stopped": report.services, "processes": procs, "snapshot": report.snapshot})
        return 0
    for p in procs:
        print(f"stopped privrec {p['kind']} (pid {p['pid']}, {p['signal']})")
    if report.snapshot is not None:
        snap = report.snapshot
        print(
            f"kafka: saved {snap['records']} records of {snap['topics']} topics and the offsets of "
            f"{snap['groups']} groups to {snap['path']}"
        )
    print("stopped: " + (", ".join(report.services) if report.services else "nothing was running"))
    return 0


def rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from agents.cli.status import exit_status, print_health
    from agents.status import health_summary

    status = health_summary(settings, lag_samples=args.lag_samples, lag_interval_s=args.lag_interval)
    if args.json:
        print_json(status)
    else:
        print_health(status)
    return exit_status(status, worker_group=settings.app_id)


def cmd_config_show(settings: Settings, args: argparse.Namespace) -> int:
    from agents.cli.config import cmd_config_show as show

    return show(settings, args)


def cmd_topics_create(settings: Settings, args: argparse.Namespace) -> int:
    admin = kafka_admin(resolve(settings))
    try:
        result = create_topics(admin, settings)
    finally:
        admin.close()
    if getattr(args, "json", False):
        print_json(dict(result))
        return 0
    for name, state in result.items():
        print(f"{name}: {state}")
    return 0


def cmd_topics_list(settings: Settings, args: argparse.Namespace) -> int:
    """Every topic privrec owns (registry, Faust's, leftovers under the prefix) and what it may hold."""
    from pipeline.kafka.topics import app_id_outside_prefix
    from pipeline.kafka.topics_owned import broker_topics, owned_topics

    admin = kafka_admin(resolve(settings))
    try:
        rows = owned_topics(settings, broker_topics(admin))
    finally:
        admin.close()
    warning = app_id_outside_prefix(settings)
    if warning is not None:
        print(f"privrec: warning: {warning}", file=sys.stderr)
    if args.json:
        print_json([r.to_dict() for r in rows])
        return 0
    print_table(
        ["TOPIC", "KIND", "PARTITIONS", "RETENTION", "CLEANUP", "PERSONAL DATA"],
        [
            [
                r.topic,
                r.kind,
                r.partitions if r.exists else "missing",
                _duration(r.retention_ms, r.cleanup_policy),
                r.cleanup_policy or "?",
                r.personal_data,
            ]
            for r in rows
        ],
    )
    return 0


def _duration(ms: int | None, cleanup: str | None = "compact") -> str:
    """``7d``, ``36h``, ``90s``, ``forever``, ``-`` (compacted: kept per key), ``default`` (the
    broker's), or ``?`` (a topic privrec did not make, on a broker that reports no configs)."""
    if ms is None:
        return "-" if cleanup == "compact" else ("?" if cleanup is None else "default")
    if ms < 0:
        return "forever"
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def cmd_smoke(settings: Settings, args: argparse.Namespace) -> int:
    """Round trip one record through Kafka and one key through Redis, then remove both.

    The topic is the run's own (``<prefix>smoke.<run>``), so two checks at once
    never delete each other's; it is deleted when the check ends, failed or not,
    and ``privrec topics list`` names one a killed check left behind.
    """
    endpoints = resolve(settings)
    load_keys(settings)  # fail early and clearly when no pseudonym key is configured
    topic = f"{settings.topic(SMOKE_TOPIC)}.{uuid.uuid4().hex[:8]}"
    try:
        partition, offset = _smoke_kafka(endpoints, settings, topic)
        _smoke_redis(endpoints)
    finally:
        cleaned = _drop_topic(endpoints, topic)
    if args.json:
        print_json(
            {
                "kafka": {"ok": True, "topic": topic, "partition": partition, "offset": offset},
                "redis": {"ok": True},
                "cleaned_up": cleaned,
            }
        )
        return 0
    print(f"smoke: kafka round trip via {topic}[{partition}]@{offset} ok; redis SET/GET ok")
    if not cleaned:
        print(f"privrec: warning: could not delete {topic}; delete it by hand", file=sys.stderr)
    return 0


def _smoke_kafka(endpoints: Any, settings: Settings, topic: str) -> tuple[int, int]:
    from kafka import TopicPartition
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = kafka_admin(endpoints)
    try:
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics([NewTopic(topic, 1, settings.replication_factor)])
    finally:
        admin.close()
    marker = f"smoke-{uuid.uuid4()}".encode()
    producer = kafka_producer(endpoints)
    try:
        meta = producer.send(topic, key=b"smoke", value=marker).get(timeout=10)
    finally:
        producer.close()
    consumer = kafka_consumer(endpoints, "smoke")
    try:
        tp = TopicPartition(topic, meta.partition)
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        deadline = time.monotonic() + 10
        found = False
        while not found and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                found = found or any(r.value == marker for r in records)
    finally:
        consumer.close()
    if not found:
        raise ServiceUnavailable(f"kafka: produced to {topic}[{meta.partition}] but could not read it back")
    return meta.partition, meta.offset


def _smoke_redis(endpoints: Any) -> None:
    from redis.exceptions import RedisError

    marker = f"smoke-{uuid.uuid4()}".encode()
    client = redis_client(endpoints)
    try:
        client.set(SMOKE_KEY, marker, ex=60)
        if client.get(SMOKE_KEY) != marker:
            raise PrivrecError("redis: SET/GET round trip returned a different value")
    except RedisError as exc:
        raise ServiceUnavailable(f"redis: SET/GET failed ({type(exc).__name__})") from None
    finally:
        with contextlib.suppress(Exception):  # the key also expires by itself
            client.delete(SMOKE_KEY)
        client.close()


def _drop_topic(endpoints: Any, topic: str) -> bool:
    """Delete the smoke topic if it exists; False when that failed (the caller says so)."""
    try:
        admin = kafka_admin(endpoints)
    except PrivrecError:
        return False
    try:
        if topic in admin.list_topics():
            admin.delete_topics([topic])
        return True
    except Exception:  # cleanup must not hide the check's own result
        return False
    finally:
        admin.close()
