"""Keep the embedded broker's data across ``privrec down`` / ``privrec up``.

The embedded Tansu broker stores everything in memory (its build has no file
storage engine), so a restart used to wipe topics, consent, models' input and
the erasure receipts without a word. ``down`` now reads every topic's records
(key, value, headers, timestamp) and every consumer group's committed offsets
into ``<state_dir>/broker/snapshot.msgpack`` (mode 0600, written to a temporary
file, fsynced, renamed); ``up`` writes them back into the new broker before its
address is recorded, so no client sees it half restored.

Restored records get dense offsets from 0. A committed offset ``c`` maps to the
position of the first record whose old offset is at least ``c``
(:func:`map_offset`), so every group resumes exactly where it stopped.

What a crash of the broker (or of the machine) loses: everything written since
the last clean ``down``. ``up`` then restores that older snapshot.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from pipeline.errors import EmbeddedServiceError
from pipeline.files import private_dir, write_private

__all__ = [
    "SNAPSHOT_FILE",
    "GroupOffsets",
    "PartitionRecords",
    "Record",
    "Snapshot",
    "TopicRecords",
    "load_snapshot",
    "map_offset",
    "read_broker",
    "restore_broker",
    "snapshot_path",
    "write_snapshot",
]

log = logging.getLogger(__name__)

SNAPSHOT_FILE = "snapshot.msgpack"
FORMAT_VERSION = 1


class Record(msgspec.Struct, array_like=True, frozen=True):
    """One record as the broker held it (the offset is the old one)."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = []


class PartitionRecords(msgspec.Struct, frozen=True):
    partition: int
    records: list[Record]
    end: int  # the old log-end offset


class TopicRecords(msgspec.Struct, frozen=True):
    name: str
    partitions: list[PartitionRecords]
    config: dict[str, str] = {}


class GroupOffsets(msgspec.Struct, frozen=True):
    group: str
    offsets: list[tuple[str, int, int]]  # topic, partition, committed (old) offset


class Snapshot(msgspec.Struct, frozen=True):
    version: int
    taken_at: int  # epoch ms
    topics: list[TopicRecords]
    groups: list[GroupOffsets]

    @property
    def record_count(self) -> int:
        return sum(len(p.records) for t in self.topics for p in t.partitions)


def map_offset(old_offsets: Sequence[int], committed: int) -> int:
    """The new offset of a committed position: records before it keep their order, from 0.

    ``old_offsets`` are the ascending offsets of the partition's records as
    saved. A group that had read everything (``committed`` = old end) lands at
    the new end; one that had read nothing at 0.
    """
    return bisect.bisect_left(old_offsets, committed)


def snapshot_path(state_dir: Path) -> Path:
    return Path(state_dir) / "broker" / SNAPSHOT_FILE


def write_snapshot(state_dir: Path, snap: Snapshot) -> Path:
    """Atomically replace the snapshot (0600 from the first byte, fsynced before the rename)."""
    path = snapshot_path(state_dir)
    private_dir(path.parent)
    write_private(path, msgspec.msgpack.encode(snap), sync_dir=True)
    return path


def load_snapshot(state_dir: Path) -> Snapshot | None:
    """The saved snapshot, None when there is none; an unreadable one is an error (never skipped)."""
    path = snapshot_path(state_dir)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        snap = msgspec.msgpack.decode(data, type=Snapshot)
    except msgspec.DecodeError as exc:
        raise EmbeddedServiceError(f"unreadable broker snapshot {path}: {exc}") from None
    if snap.version != FORMAT_VERSION:
        raise EmbeddedServiceError(f"broker snapshot {path} has format {snap.version}, not {FORMAT_VERSION}")
    return snap


# -- the broker side ---------------------------------------------------------------------------


def read_broker(bootstrap: str, timeout_s: float = 300.0) -> Snapshot:
    """Every topic's records and every group's committed offsets (internal ``__`` topics excepted)."""
    from kafka import KafkaAdminClient, TopicPartition
    from kafka.admin import ConfigResource, ConfigResourceType

    from pipeline.kafka.consumer import BULK_FETCH_BYTES, new_consumer
    from pipeline.kafka.end_offsets import probe_end_offsets

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="privrec-snapshot")
    consumer = new_consumer(
        bootstrap, {}, "snapshot", check_crcs=False, max_partition_fetch_bytes=BULK_FETCH_BYTES
    )
    try:
        names = sorted(t for t in admin.list_topics() if not t.startswith("__"))
        tps = [TopicPartition(n, p) for n in names for p in sorted(consumer.partitions_for_topic(n) or ())]
        ends = probe_end_offsets(bootstrap, consumer.end_offsets(tps)) if tps else {}
        records: dict[Any, list[Record]] = {tp: [] for tp in tps}
        todo = {tp for tp in tps if ends.get(tp, 0) > 0}
        if todo:
            consumer.assign(sorted(todo))
            consumer.seek_to_beginning()
        deadline = time.monotonic() + timeout_s
        while todo:
            if time.monotonic() > deadline:
                raise EmbeddedServiceError(f"broker snapshot: could not read {len(todo)} partitions in time")
            for tp, batch in consumer.poll(timeout_ms=500, max_records=50_000).items():
                records[tp].extend(
                    Record(r.offset, r.timestamp, r.key, r.value, [(k, v or b"") for k, v in r.headers or ()])
                    for r in batch
                )
            todo = {tp for tp in todo if consumer.position(tp) < ends[tp]}
        configs = _topic_configs(admin, names, ConfigResource, ConfigResourceType)
        topics = [
            TopicRecords(
                name=n,
                partitions=[
                    PartitionRecords(tp.partition, records[tp], ends.get(tp, 0))
                    for tp in tps
                    if tp.topic == n
                ],
                config=configs.get(n, {}),
            )
            for n in names
        ]
        groups = []
        for g in admin.list_groups():
            group = g["group_id"] if isinstance(g, dict) else g[0]
            offsets = admin.list_group_offsets(group).get(group, {})
            kept = [(tp.topic, tp.partition, om.offset) for tp, om in offsets.items() if om.offset >= 0]
            if kept:
                groups.append(GroupOffsets(group, sorted(kept)))
    finally:
        consumer.close()
        admin.close()
    return Snapshot(FORMAT_VERSION, int(time.time() * 1000), topics, sorted(groups, key=lambda g: g.group))


def _topic_configs(admin: Any, names: list[str], resource: Any, kind: Any) -> dict[str, dict[str, str]]:
    """Topic configs the broker reports (Tansu reports none; a real cluster would)."""
    out: dict[str, dict[str, str]] = {}
    for name in names:
        try:
            got = admin.describe_configs([resource(kind.TOPIC, name)])
        except Exception:  # not supported: topics come back with the broker's defaults
            log.debug("broker snapshot: no configs for a topic", exc_info=True)
            continue
        found = got.get("topic", {}).get(name, {}) if isinstance(got, dict) else {}
        out[name] = {str(k): str(v) for k, v in found.items() if v is not None}
    return out


def restore_broker(bootstrap: str, snap: Snapshot, timeout_s: float = 300.0) -> int:
    """Recreate the topics, produce their records in order and commit the groups' offsets.

    Meant for a fresh broker nobody else knows yet. Returns the records written.
    """
    from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError
    from kafka.structs import OffsetAndMetadata

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="privrec-restore")
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        max_in_flight_requests_per_connection=1,  # records of a partition keep their order
        linger_ms=5,
        batch_size=512 * 1024,
        max_request_size=16 * 1024 * 1024,
        client_id="privrec-restore",
    )
    written = 0
    try:
        existing = set(admin.list_topics())
        new = [
            NewTopic(t.name, max(1, len(t.partitions)), 1, topic_configs=t.config)
            for t in snap.topics
            if t.name not in existing
        ]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(new)
        for topic in snap.topics:
            for part in topic.partitions:
                for r in part.records:
                    producer.send(
                        topic.name,
                        partition=part.partition,
                        key=r.key,
                        value=r.value,
                        headers=list(r.headers),
                        timestamp_ms=r.timestamp,
                    )
                written += len(part.records)
        producer.flush(timeout=timeout_s)
        olds = {
            (t.name, p.partition): [r.offset for r in p.records] for t in snap.topics for p in t.partitions
        }
        for g in snap.groups:
            offsets = {
                TopicPartition(topic, partition): OffsetAndMetadata(
                    map_offset(olds.get((topic, partition), []), committed), "", -1
                )
                for topic, partition, committed in g.offsets
            }
            errors = admin.alter_group_offsets(g.group, offsets)
            failed = [tp for tp, err in errors.items() if getattr(err, "errno", 0)]
            if failed:
                raise EmbeddedServiceError(
                    f"broker restore: could not commit offsets of {len(failed)} partitions"
                )
    finally:
        producer.close()
        admin.close()
    return written
