"""Round trips against the session's real broker and Redis."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

pytestmark = pytest.mark.integration


def test_kafka_python_round_trip(kafka_bootstrap, make_topic):
    topic = make_topic("roundtrip", partitions=3)
    sent = {f"user-{i}".encode(): uuid.uuid4().bytes for i in range(30)}
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for key, value in sent.items():
        producer.send(topic, key=key, value=value)
    producer.flush(timeout=10)
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")
    consumer.assign([TopicPartition(topic, p) for p in range(3)])
    got: dict[bytes, bytes] = {}
    deadline = time.monotonic() + 20
    while len(got) < len(sent) and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            got.update((r.key, r.value) for r in records)
    consumer.close()
    assert got == sent


def test_same_key_same_partition(kafka_bootstrap, make_topic):
    """Co-partitioning (consent with playback) relies on the default key partitioner."""
    topic = make_topic("keys", partitions=8)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    parts = {producer.send(topic, key=b"user-42", value=b"x").get(timeout=10).partition for _ in range(5)}
    producer.close()
    assert len(parts) == 1


def test_redis_set_get(redis_url):
    client = redis.Redis.from_url(redis_url)
    key = f"test:{uuid.uuid4().hex}"
    client.set(key, b"value", ex=30)
    assert client.get(key) == b"value"
    assert 0 < client.ttl(key) <= 30
    client.delete(key)
    assert client.get(key) is None
