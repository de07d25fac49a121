"""Run real `privrec worker` processes against the test broker, and read topics back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from agents import procs
from agents.procs import ChildProcess, wait_until
from pipeline.kafka.offsets import send_acked
from pipeline.settings import Settings


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    try:
        return wait_until(check, timeout, what, interval)
    except TimeoutError as exc:
        raise AssertionError(str(exc)) from None


def Worker(settings: Settings, log_dir: Path, name: str = "w") -> ChildProcess:
    """One `privrec worker` subprocess, logging to <log_dir>/worker-<name>.log."""
    return ChildProcess(settings, log_dir / f"worker-{name}.log", ["worker", "--loglevel", "info"])


def _redis(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis.url.get_secret_value())


def worker_stats(settings: Settings) -> list[dict[str, Any]]:
    client = _redis(settings)
    try:
        return procs.worker_stats(client, settings.app_id)
    finally:
        client.close()


def wait_assigned(settings: Settings, workers: int, timeout: float = 90) -> None:
    """Wait until `workers` workers together hold every partition (a settled group)."""
    client = _redis(settings)
    try:
        wait_for(
            lambda: procs.group_settled(client, settings.app_id, settings.partitions, workers),
            timeout,
            f"{workers} worker(s) to own all partitions",
        )
    finally:
        client.close()


def produce(
    settings: Settings,
    topic: str,
    records: list[tuple[bytes | None, bytes | None]],
    partition: int | None = None,
) -> dict[int, int]:
    """Send and return the end offset (last offset + 1) per partition written."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all", linger_ms=5)
    try:
        return send_acked(producer, topic, records, partition=partition)
    finally:
        producer.close()


def wait_processed(settings: Settings, topic: str, ends: dict[int, int], timeout: float = 120) -> None:
    from kafka import KafkaAdminClient

    from pipeline.kafka.offsets import committed_offsets

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    try:
        wait_for(
            lambda: all(
                committed_offsets(admin, settings.app_id, topic).get(p, 0) >= o for p, o in ends.items()
            ),
            timeout,
            f"workers to process {topic} up to {ends}",
            interval=0.5,
        )
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}; committed: {committed_offsets(admin, settings.app_id, topic)}"
        ) from None
    finally:
        admin.close()


def read_all(settings: Settings, topic: str, quiet_s: float = 1.5) -> list[tuple[bytes | None, bytes | None]]:
    """Everything on `topic`, reading until the log end and then `quiet_s` without records."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, enable_auto_commit=False)
    tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    out = []
    last = time.monotonic()
    while time.monotonic() - last < quiet_s:
        batch = consumer.poll(timeout_ms=300)
        for records in batch.values():
            out.extend((r.key, r.value) for r in records)
            last = time.monotonic()
    consumer.close()
    return out


def consume_and_commit(bootstrap: str, topic: str, group: str, upto: dict[int, int]) -> None:
    """Read each partition from its committed offset up to ``upto[p]``, then commit exactly that."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    try:
        tps = {TopicPartition(topic, p): end for p, end in upto.items()}
        consumer.assign(list(tps))
        seen = {tp: consumer.position(tp) for tp in tps}
        deadline = time.monotonic() + 20
        while any(seen[tp] < end for tp, end in tps.items()) and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=200).items():
                seen[tp] = max([seen[tp]] + [r.offset + 1 for r in records if r.offset < tps[tp]])
        assert all(seen[tp] >= end for tp, end in tps.items()), seen
        consumer.commit({tp: OffsetAndMetadata(end, None, -1) for tp, end in tps.items()})
    finally:
        consumer.close()


def close_windows(settings: Settings) -> dict[int, int]:
    """A close marker on every partition of playback.raw; returns the ends to wait for."""
    from pipeline.stream import CONTROL_KEY, Control, encode_control

    value = encode_control(Control(command="close_windows", id="test", at=int(time.time() * 1000)))
    ends: dict[int, int] = {}
    for p in range(settings.partitions):
        ends.update(produce(settings, settings.topic("playback.raw"), [(CONTROL_KEY, value)], partition=p))
    return ends


def start_trainer(settings: Settings) -> tuple[Any, Callable[[], None]]:
    """The trainer in a thread of this process (its matrix and id maps can be inspected).

    Returns the trainer and ``finish``, which stops it and raises what it raised.
    """
    from agents.processes.trainer import close_trainer, make_trainer

    trainer = make_trainer(settings)
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            trainer.run(stop)
        except BaseException as exc:  # surfaced by finish() and by the callers' waits
            errors.append(exc)
            raise

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def finish() -> None:
        stop.set()
        thread.join(timeout=60)
        close_trainer(trainer)
        if errors:
            raise errors[0]

    trainer.errors = errors  # type: ignore[attr-defined]
    return trainer, finish
