"""The Faust/aiokafka adaptations that are pure functions: same results as the originals."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from agents.compat import KafkaPartitioner, murmur2


def test_murmur2_is_aiokafkas_bit_for_bit():
    rng = random.Random(11)
    for length in [*range(0, 70), 255, 256, 257, 300, 1000]:
        for _ in range(5):
            data = rng.randbytes(length)
            assert murmur2(data) == aiokafka_murmur2(data), length


def test_partitioner_picks_the_default_partitioners_partition():
    ours, theirs = KafkaPartitioner(), DefaultPartitioner()
    rng = random.Random(12)
    for n in (1, 3, 8, 12):
        partitions = list(range(n))
        for _ in range(300):
            key = f"k1.{rng.getrandbits(128):032x}".encode()
            assert ours(key, partitions, partitions) == theirs(key, partitions, partitions)
    assert ours(None, [0, 1], [1]) == 1  # no key: a random available partition
