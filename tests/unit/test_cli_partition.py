"""``privrec consent`` reads a user's record from the partition the producer wrote it to."""

from __future__ import annotations

import random

from kafka.cluster import ClusterMetadata
from kafka.partitioner import DefaultPartitioner

from agents.processes.clients import key_partition


class _Cluster(ClusterMetadata):
    """Just enough metadata for kafka-python's partitioner: one topic with n partitions."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def topics(self, exclude_internal_topics: bool = True) -> set[str]:
        return {"consent"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.n))

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.n))


def test_key_partition_is_the_producers_partition():
    rng = random.Random(5)
    producer = DefaultPartitioner()
    for n in (1, 3, 8, 12):
        cluster = _Cluster(n)
        for _ in range(200):
            key = f"user-{rng.getrandbits(64):x}".encode()
            assert key_partition(key, n) == producer.partition("consent", None, key, None, None, cluster)
