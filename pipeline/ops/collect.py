"""Read consumer-group positions from Kafka into :class:`~pipeline.ops.lag.PartitionSample`.

kafka-python clients are passed in: a ``KafkaAdminClient`` (committed offsets,
group descriptions) and a group-less ``KafkaConsumer`` (log-end offsets, and
the record at a committed offset for age-based lag). Log-end offsets are the
*true* ones: :func:`~pipeline.kafka.end_offsets.probe_end_offsets` corrects brokers
that under-report them (Tansu). Kafka does not say when an offset was
committed; :class:`~pipeline.ops.lag.LagWindow` infers it from samples.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import ServiceUnavailable
from pipeline.kafka.end_offsets import probe_end_offsets
from pipeline.ops.lag import PartitionSample
from pipeline.settings import Settings

__all__ = [
    "GroupInfo",
    "LagCollector",
    "Member",
    "describe_groups",
    "group_offsets",
    "log_end_offsets",
    "message_timestamps",
    "pipeline_groups",
    "with_heartbeats",
]

log = logging.getLogger(__name__)

TopicPartitionKey = tuple[str, int]


def pipeline_groups(settings: Settings, extra: Iterable[str] = ()) -> list[str]:
    """The pipeline's consumer groups: the Faust app's (its id), the trainer's, then ``extra``."""
    return list(dict.fromkeys([settings.app_id, f"{settings.app_id}-trainer", *extra]))


@dataclass(frozen=True, slots=True)
class Member:
    """Who holds a partition, as ``kafka-consumer-groups --describe`` prints it."""

    consumer_id: str
    host: str
    client_id: str


@dataclass(frozen=True)
class GroupInfo:
    """A group's state and owners; ``state``/``members`` None when the broker did not say.

    ``via`` says where ``state`` and ``members`` come from: ``broker`` (its group
    description) or ``heartbeat`` (:func:`with_heartbeats`: live processes that read
    with manual assignment, which the broker never counts); then ``broker_state`` and
    ``broker_members`` keep what the broker said, and ``default_owner`` holds the
    partitions no broker member owns.
    """

    group: str
    state: str | None = None
    members: int | None = None
    owners: Mapping[TopicPartitionKey, Member] = field(default_factory=dict)
    via: str = "broker"
    broker_state: str | None = None
    broker_members: int | None = None
    default_owner: Member | None = None

    def owner(self, key: TopicPartitionKey) -> Member | None:
        """Who holds ``key``: the broker's member, else the heartbeat's process, else None."""
        return self.owners.get(key, self.default_owner)


LIVE_STATE = "Live"
"""The state of a group whose members are known from heartbeats, not from the broker."""


def with_heartbeats(info: GroupInfo, live: Sequence[str], client_id: str = "-") -> GroupInfo:
    """``info`` with ``live`` (ids of processes whose heartbeat has not expired) as its members.

    The continuous trainer reads every partition with manual assignment, so the
    broker sees an ``Empty`` group with 0 members while it runs. A group the broker
    already counts members for, or with no live process, is returned unchanged: the
    broker's word stands whenever it has one.
    """
    if not live or (info.members or 0) > 0:
        return info
    return GroupInfo(
        info.group,
        state=LIVE_STATE,
        members=len(live),
        owners=info.owners,
        via="heartbeat",
        broker_state=info.state,
        broker_members=info.members,
        default_owner=Member(consumer_id=",".join(live), host="-", client_id=client_id),
    )


def group_offsets(admin: Any, group: str) -> dict[TopicPartitionKey, int]:
    """Committed offset per (topic, partition) of ``group``; empty for an unknown group."""
    result = admin.list_group_offsets(group)
    if group in result and isinstance(result[group], dict):  # kafka-python 3 answers per group
        result = result[group]
    return {
        (tp.topic, tp.partition): meta.offset
        for tp, meta in result.items()
        if meta is not None and meta.offset is not None and meta.offset >= 0
    }


def _assigned(assignment: Any) -> list[TopicPartitionKey]:
    """(topic, partition) pairs of a member assignment, in any shape kafka-python hands out."""
    if not assignment:
        return []
    if hasattr(assignment, "assigned_partitions"):  # a decoded ConsumerProtocolAssignment
        return [
            (item.topic, int(p)) for item in assignment.assigned_partitions or [] for p in item.partitions
        ]
    if isinstance(assignment, dict):  # its to_dict(): {"assigned_partitions": [{"topic", "partitions"}]}
        return [
            (item["topic"], int(p))
            for item in assignment.get("assigned_partitions") or []
            for p in item.get("partitions") or []
        ]
    return []


def _describe(admin: Any, groups: list[str]) -> dict[str, Any]:
    try:
        return dict(admin.describe_groups(groups))
    except ValueError:
        # kafka-python turns authorized_operations into ACLOperation values and fails on bits it
        # does not know, which Tansu sets. Skip that translation for this one call.
        admin._process_acl_operations = lambda obj: obj
        try:
            return dict(admin.describe_groups(groups))
        finally:
            del admin._process_acl_operations


def describe_groups(admin: Any, groups: Iterable[str]) -> dict[str, GroupInfo]:
    """State, member count and partition owners per group; empty infos when not available."""
    from kafka.errors import KafkaError

    names = list(dict.fromkeys(groups))
    try:
        described = _describe(admin, names)
    except (KafkaError, ValueError, OSError) as exc:
        log.debug("describe groups failed: %s", type(exc).__name__)
        return {g: GroupInfo(g) for g in names}
    out: dict[str, GroupInfo] = {}
    for group in names:
        desc = described.get(group)
        if not isinstance(desc, dict) or desc.get("error"):
            out[group] = GroupInfo(group)
            continue
        members = desc.get("members") or []
        owners: dict[TopicPartitionKey, Member] = {}
        for m in members:
            member = Member(
                consumer_id=m.get("member_id") or "-",
                host=m.get("client_host") or "-",
                client_id=m.get("client_id") or "-",
            )
            for tp in _assigned(m.get("member_assignment")):
                owners[tp] = member
        out[group] = GroupInfo(group, desc.get("group_state"), len(members), owners)
    return out


def log_end_offsets(
    consumer: Any,
    partitions: Iterable[TopicPartitionKey],
    *,
    bootstrap: str,
    client_options: Mapping[str, Any] | None = None,
    timeout_s: float = 5.0,
) -> dict[TopicPartitionKey, int]:
    """True log-end offset per (topic, partition): the broker's answer, probed by reading.

    A partition the broker gives no answer for is left out (never guessed).
    """
    from kafka import TopicPartition
    from kafka.errors import KafkaError

    tps = [TopicPartition(t, p) for t, p in dict.fromkeys(partitions)]
    if not tps:
        return {}
    try:
        reported = consumer.end_offsets(tps)
    except (KeyError, KafkaError):  # kafka-python can miss a partition whose metadata is fresh
        reported = {}
        for tp in tps:
            try:
                reported.update(consumer.end_offsets([tp]))
            except (KeyError, KafkaError):
                log.warning("no log-end offset for %s[%d]", tp.topic, tp.partition)
    true = probe_end_offsets(bootstrap, reported, timeout_s=timeout_s, **dict(client_options or {}))
    return {(tp.topic, tp.partition): int(end) for tp, end in true.items() if end is not None}


def message_timestamps(
    consumer: Any, positions: Mapping[TopicPartitionKey, int], timeout_s: float = 5.0
) -> dict[TopicPartitionKey, int]:
    """Timestamp (ms) of the first record at or after each position; absent when none came."""
    from kafka import TopicPartition

    if not positions:
        return {}
    tps = {TopicPartition(t, p): off for (t, p), off in positions.items()}
    out: dict[TopicPartitionKey, int] = {}
    consumer.assign(list(tps))
    try:
        for tp, offset in tps.items():
            consumer.seek(tp, offset)
        deadline = time.monotonic() + timeout_s
        while len(out) < len(tps) and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=200).items():
                key = (tp.topic, tp.partition)
                if records and key not in out:
                    stamp = min(records, key=lambda r: r.offset).timestamp
                    if isinstance(stamp, int) and stamp >= 0:  # no (or a bogus) timestamp: leave it out
                        out[key] = stamp
                    consumer.pause(tp)
    finally:
        consumer.unsubscribe()
    return out


class LagCollector:
    """Takes one :class:`PartitionSample` per committed partition of each group, per call.

    ``message_age`` also fetches the record at each lagging committed offset so
    lag in seconds is its age (one fetch per partition and sample). ``liveness``,
    when given, names the live processes per group from their heartbeats; groups the
    broker counts no member for take them as members (:func:`with_heartbeats`), before
    the samples are taken, so a manually assigned reader is not mistaken for a stopped one.
    """

    def __init__(
        self,
        admin: Any,
        consumer: Any,
        *,
        bootstrap: str,
        client_options: Mapping[str, Any] | None = None,
        message_age: bool = False,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.time,
        liveness: Callable[[list[str]], Mapping[str, Sequence[str]]] | None = None,
    ) -> None:
        self.admin = admin
        self.consumer = consumer
        self.bootstrap = bootstrap
        self.client_options = dict(client_options or {})
        self.message_age = message_age
        self.timeout_s = timeout_s
        self.clock = clock
        self.liveness = liveness

    def sample(self, groups: Iterable[str]) -> tuple[list[PartitionSample], dict[str, GroupInfo]]:
        """Samples of every committed partition of ``groups``, and what the broker says of them."""
        from kafka.errors import KafkaError

        names = list(dict.fromkeys(groups))
        try:
            infos = describe_groups(self.admin, names)
            if self.liveness is not None:
                live = self.liveness(names)
                infos = {g: with_heartbeats(i, live.get(g, ()), "heartbeat") for g, i in infos.items()}
            committed = {g: group_offsets(self.admin, g) for g in names}
            ends = log_end_offsets(
                self.consumer,
                [tp for offsets in committed.values() for tp in offsets],
                bootstrap=self.bootstrap,
                client_options=self.client_options,
                timeout_s=self.timeout_s,
            )
            at_ms = int(self.clock() * 1000)
            stamps: dict[str, dict[TopicPartitionKey, int]] = {}
            for group in names if self.message_age else ():
                lagging = {tp: off for tp, off in committed[group].items() if ends.get(tp, off) > off}
                stamps[group] = message_timestamps(self.consumer, lagging, self.timeout_s)
        except (KafkaError, OSError) as exc:
            raise ServiceUnavailable(f"kafka: reading consumer-group offsets failed ({exc})") from None
        samples = [
            PartitionSample(
                group=group,
                topic=topic,
                partition=partition,
                committed=offset,
                log_end=ends[(topic, partition)],
                at_ms=at_ms,
                message_ms=stamps.get(group, {}).get((topic, partition)),
                members=infos[group].members,
            )
            for group in names
            for (topic, partition), offset in sorted(committed[group].items())
            if (topic, partition) in ends
        ]
        log.debug("sampled %d partitions of %d groups", len(samples), len(names))
        return samples, infos
