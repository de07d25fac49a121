"""Consumer lag and a Burrow-style status, evaluated over a sliding window of samples.

Pure: no Kafka here (:mod:`pipeline.ops.collect` reads the numbers). A
:class:`LagWindow` keeps the last ``size`` :class:`PartitionSample` per
(group, topic, partition) and evaluates each partition the way Burrow does
(LinkedIn Burrow wiki, "Consumer Lag Evaluation Rules", and its evaluator
``core/internal/evaluator/caching.go``, ``calculatePartitionStatus``). Only
when the lag at the last sample is non-zero *and* no sample in the window
had zero lag, the first matching rule wins:

1. ``REWIND``: a committed offset went backwards between two samples;
2. ``STOP``: no commit for longer than the window: ``now - newest commit >
   newest sample - oldest sample`` (Burrow: ``now - last > last - first``);
3. ``STALL``: the committed offset did not move across the window;
4. ``WARN``: offsets advance but the lag never decreases between two samples;

otherwise (and always with zero lag somewhere in the window) ``OK``. A group
is as bad as its worst partition, ranked as Burrow's status constants
(``OK < WARN < STOP < STALL < REWIND``); a group without samples is
``NOTFOUND``.

Two differences from Burrow, both because Kafka's OffsetFetch does not say
*when* an offset was committed (Burrow reads ``__consumer_offsets``):

* a window entry is a *sample* taken at a fixed interval, not a commit; a
  commit "happened" at the first sample that saw a new committed offset. The
  first sample of a partition counts as a commit at that time, unless the
  group had no active member then (``members == 0``): then the commit is
  older than anything sampled. So a consumer that re-commits the same offset
  looks like one that stopped committing: it is ``STALL`` until the window
  has slid past its last offset change, then ``STOP``. Pick ``size`` times the
  sampling interval well above the consumers' commit interval (Faust: 2.8 s).
* fewer than two samples give ``OK`` (Burrow would call one entry stalled),
  except a partition with lag whose group has no active member: ``STOP``
  from the first sample (the first ``lag --watch`` round said OK for a stopped group);
  ``complete`` says how full the window is, as Burrow's field does.

Lag in seconds comes in two kinds:

* ``age``: ``now`` minus the timestamp of the oldest unconsumed message (the
  record at the committed offset), when the caller supplies it as
  ``PartitionSample.message_ms``: exact, but costs a fetch per partition.
* interpolated, as kafka-lag-exporter does: each partition keeps a table of
  (log-end offset, time) points (``history`` of them, flat stretches
  compressed); the time at which the log end stood at the committed offset
  is interpolated between the two points around it, or extrapolated from the
  first and last points when it is older than the table; the lag is ``now``
  minus that time. A table that never moved gives a lower bound.

Example::

    >>> w = LagWindow(size=3)
    >>> for i, committed in enumerate([5, 5, 5]):
    ...     w.add(PartitionSample("g", "t", 0, committed, log_end=9, at_ms=1000 * i))
    >>> [(g.group, g.status.name, g.total_lag) for g in w.evaluate()]
    [('g', 'STALL', 4)]
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from itertools import pairwise
from typing import Any

__all__ = [
    "GroupLag",
    "LagWindow",
    "PartitionLag",
    "PartitionSample",
    "Status",
    "estimate_time",
    "lag_seconds",
    "partition_status",
]

PartitionKey = tuple[str, str, int]


class Status(IntEnum):
    """Partition or group status; higher is worse (Burrow's order)."""

    NOTFOUND = -1
    OK = 0
    WARN = 1
    STOP = 2
    STALL = 3
    REWIND = 4

    @property
    def is_error(self) -> bool:
        """STOP, STALL and REWIND: Burrow's ERR; WARN is only a warning."""
        return self >= Status.STOP


@dataclass(frozen=True, slots=True)
class PartitionSample:
    """One reading of a group's position on one partition.

    ``committed`` is the committed offset (the next to read), ``log_end`` the
    true log-end offset, ``at_ms`` when they were read (wall clock, ms).
    ``message_ms`` is the timestamp of the record at ``committed`` when the
    caller fetched it; ``members`` the group's active members (None: unknown).
    """

    group: str
    topic: str
    partition: int
    committed: int
    log_end: int
    at_ms: int
    message_ms: int | None = None
    members: int | None = None

    @property
    def key(self) -> PartitionKey:
        return (self.group, self.topic, self.partition)

    @property
    def lag(self) -> int:
        """Messages behind; never negative (log end and commit are read apart)."""
        return max(0, self.log_end - self.committed)


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """The evaluation of one partition of one group."""

    group: str
    topic: str
    partition: int
    committed: int
    log_end: int
    lag: int
    lag_seconds: float | None
    seconds_method: str  # zero | age | interpolated | extrapolated | lower_bound | unknown
    status: Status
    samples: int
    complete: float
    last_commit_ms: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "committed": self.committed,
            "log_end": self.log_end,
            "lag": self.lag,
            "lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 3),
            "seconds_method": self.seconds_method,
            "status": self.status.name,
            "samples": self.samples,
            "complete": round(self.complete, 3),
        }


@dataclass(frozen=True, slots=True)
class GroupLag:
    """A group's partitions and its status (the worst of theirs)."""

    group: str
    status: Status
    partitions: tuple[PartitionLag, ...]

    @property
    def total_lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def max_lag_seconds(self) -> float | None:
        known = [p.lag_seconds for p in self.partitions if p.lag_seconds is not None]
        return max(known) if known else None

    def to_dict(self) -> dict[str, Any]:
        seconds = self.max_lag_seconds
        return {
            "group": self.group,
            "status": self.status.name,
            "total_lag": self.total_lag,
            "max_lag_seconds": None if seconds is None else round(seconds, 3),
            "partitions": [p.to_dict() for p in self.partitions],
        }


def partition_status(samples: Sequence[PartitionSample], last_commit_ms: int | None, now_ms: int) -> Status:
    """Burrow's rules over one partition's window (oldest sample first).

    ``last_commit_ms`` is when the committed offset last changed, None when
    that was before the first sample.
    """
    if len(samples) < 2:
        last = samples[-1] if samples else None
        if last is not None and last.members == 0 and last.lag > 0:
            return Status.STOP  # nobody consumes it: no need to wait for a second sample
        return Status.OK
    lags = [s.lag for s in samples]
    if 0 in lags:  # rule 1, which also covers "lag 0 at the last sample"
        return Status.OK
    offsets = [s.committed for s in samples]
    if any(b < a for a, b in pairwise(offsets)):
        return Status.REWIND
    span = samples[-1].at_ms - samples[0].at_ms
    if last_commit_ms is None or now_ms - last_commit_ms > span:
        return Status.STOP
    if offsets[0] == offsets[-1]:  # monotonic (no rewind), so equal ends mean no move at all
        return Status.STALL
    if all(b >= a for a, b in pairwise(lags)):
        return Status.WARN
    return Status.OK


def estimate_time(points: Sequence[tuple[int, int]], offset: int) -> tuple[float, str] | None:
    """When the log end stood at ``offset``, from (log-end offset, time ms) points, oldest first.

    Returns (time ms, method) with method ``interpolated``, ``extrapolated`` or
    ``lower_bound`` (the table never moved: the time is at most its first
    point's), or None with fewer than two points.
    """
    if not points:
        return None
    if offset >= points[-1][0]:
        return float(points[-1][1]), "interpolated"
    if len(points) < 2:
        return None
    for i in range(len(points) - 1, 0, -1):  # newest pair first, as kafka-lag-exporter
        (lo, lt), (ro, rt) = points[i - 1], points[i]
        if lo <= offset <= ro:
            if ro == lo:
                return float(rt), "interpolated"
            return rt - (ro - offset) * (rt - lt) / (ro - lo), "interpolated"
    (lo, lt), (ro, rt) = points[0], points[-1]
    if ro == lo:
        return float(lt), "lower_bound"
    return rt - (ro - offset) * (rt - lt) / (ro - lo), "extrapolated"


def lag_seconds(
    sample: PartitionSample, points: Sequence[tuple[int, int]], now_ms: int
) -> tuple[float | None, str]:
    """Seconds behind for ``sample``: (seconds or None, method); see the module docstring."""
    if sample.lag == 0:
        return 0.0, "zero"
    if sample.message_ms is not None and 0 <= sample.message_ms <= now_ms:  # else: no usable timestamp
        return (now_ms - sample.message_ms) / 1000, "age"
    estimate = estimate_time(points, sample.committed)
    if estimate is None:
        return None, "unknown"
    at_ms, method = estimate
    return max(0.0, (now_ms - at_ms) / 1000), method


class _LookupTable:
    """(log-end offset, time) points of one topic-partition, as kafka-lag-exporter keeps them."""

    def __init__(self, limit: int) -> None:
        self.points: deque[tuple[int, int]] = deque(maxlen=limit)

    def add(self, offset: int, at_ms: int) -> None:
        if self.points:
            last_offset, last_ms = self.points[-1]
            if at_ms <= last_ms:  # out of order, or the same reading through another group
                return
            if offset < last_offset:  # the log shrank: topic recreated; start over
                self.points.clear()
            elif len(self.points) > 1 and self.points[-2][0] == offset == last_offset:
                self.points[-1] = (offset, at_ms)  # keep only both ends of a flat stretch
                return
        self.points.append((offset, at_ms))


class LagWindow:
    """The last ``size`` samples per (group, topic, partition), evaluated on demand.

    ``history`` is the number of log-end points kept per topic-partition for
    interpolating lag in seconds (shared by all groups reading it).
    """

    def __init__(self, size: int = 10, history: int = 60) -> None:
        if size < 1 or history < 2:
            raise ValueError("size must be >= 1 and history >= 2")
        self.size = size
        self.history = history
        self._samples: dict[PartitionKey, deque[PartitionSample]] = {}
        self._commit_ms: dict[PartitionKey, int | None] = {}
        self._tables: dict[tuple[str, int], _LookupTable] = {}

    def add(self, sample: PartitionSample) -> None:
        """Record a sample; one not newer than the last of its partition is ignored."""
        window = self._samples.get(sample.key)
        if window is None:
            window = self._samples[sample.key] = deque(maxlen=self.size)
            self._commit_ms[sample.key] = None if sample.members == 0 else sample.at_ms
        elif sample.at_ms <= window[-1].at_ms:
            return
        elif sample.committed != window[-1].committed:
            self._commit_ms[sample.key] = sample.at_ms
        window.append(sample)
        tp = (sample.topic, sample.partition)
        table = self._tables.get(tp)
        if table is None:
            table = self._tables[tp] = _LookupTable(self.history)
        table.add(sample.log_end, sample.at_ms)

    def extend(self, samples: Iterable[PartitionSample]) -> None:
        for sample in samples:
            self.add(sample)

    def samples(self, group: str, topic: str, partition: int) -> tuple[PartitionSample, ...]:
        """The window of one partition, oldest first."""
        return tuple(self._samples.get((group, topic, partition), ()))

    def groups(self) -> list[str]:
        return sorted({key[0] for key in self._samples})

    def forget(self, group: str) -> None:
        """Drop a group's samples (e.g. after it was deleted)."""
        for key in [k for k in self._samples if k[0] == group]:
            del self._samples[key], self._commit_ms[key]

    def evaluate_partition(
        self, group: str, topic: str, partition: int, now_ms: int | None = None
    ) -> PartitionLag:
        """Status and lag of one partition; ``now_ms`` defaults to its last sample's time."""
        key = (group, topic, partition)
        window = self._samples[key]
        last = window[-1]
        now = last.at_ms if now_ms is None else now_ms
        commit_ms = self._commit_ms[key]
        table = self._tables.get((topic, partition))
        seconds, method = lag_seconds(last, list(table.points) if table else [], now)
        return PartitionLag(
            group=group,
            topic=topic,
            partition=partition,
            committed=last.committed,
            log_end=last.log_end,
            lag=last.lag,
            lag_seconds=seconds,
            seconds_method=method,
            status=partition_status(list(window), commit_ms, now),
            samples=len(window),
            complete=len(window) / self.size,
            last_commit_ms=commit_ms,
        )

    def evaluate(self, groups: Iterable[str] | None = None, now_ms: int | None = None) -> list[GroupLag]:
        """Every group (or those named, ``NOTFOUND`` when never sampled), partitions sorted."""
        names = list(dict.fromkeys(groups)) if groups is not None else self.groups()
        out = []
        for group in names:
            keys = sorted(k for k in self._samples if k[0] == group)
            parts = tuple(self.evaluate_partition(*key, now_ms=now_ms) for key in keys)
            status = max((p.status for p in parts), default=Status.NOTFOUND)
            out.append(GroupLag(group, status, parts))
        return out
