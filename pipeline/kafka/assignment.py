"""A consumer's assignment in one short line: topics with partition ranges, and counts.

What an operator reads in a worker's log after each rebalance (which partitions
this process holds now, and of which topics), never what is in them.

>>> describe_assignment([("a", 0), ("a", 1), ("a", 2), ("a", 5), ("b", 3)])
'a[0-2,5] b[3]'
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

__all__ = ["describe_assignment", "partition_ranges", "partitions_of"]


def partition_ranges(partitions: Iterable[int]) -> str:
    """``0-2,5``: sorted, consecutive partitions folded into ranges; ``-`` for none."""
    ordered = sorted(set(partitions))
    if not ordered:
        return "-"
    spans: list[str] = []
    start = prev = ordered[0]
    for p in ordered[1:]:
        if p != prev + 1:
            spans.append(f"{start}-{prev}" if prev > start else str(start))
            start = p
        prev = p
    spans.append(f"{start}-{prev}" if prev > start else str(start))
    return ",".join(spans)


def partitions_of(assignment: Iterable[tuple[str, int]], topic: str) -> list[int]:
    """The partitions of ``topic`` in an assignment, sorted."""
    return sorted({p for t, p in assignment if t == topic})


def describe_assignment(assignment: Iterable[tuple[str, int]]) -> str:
    """``topic[ranges]`` per topic, by topic name, space separated (``-`` for nothing)."""
    by_topic: dict[str, set[int]] = defaultdict(set)
    for topic, partition in assignment:
        by_topic[topic].add(partition)
    if not by_topic:
        return "-"
    return " ".join(f"{t}[{partition_ranges(ps)}]" for t, ps in sorted(by_topic.items()))
