"""Shared fixtures: one real Kafka-protocol broker and one real Redis per test session.

Which ones, in order of preference:
1. ``PRIVREC_TEST_KAFKA`` / ``PRIVREC_TEST_REDIS`` (an address / URL you run yourself);
2. testcontainers' Kafka and Redis containers, when a Docker engine answers;
3. the embedded Tansu broker and Redis server that ``privrec up`` uses.
The report header says which backend ran.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from pipeline.settings import Settings
from tests.support.settings import isolated_settings

_BACKEND: dict[str, str] = {}


def _docker_available() -> bool:
    if os.environ.get("PRIVREC_TEST_NO_DOCKER"):
        return False
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no engine, no socket, no permission: all mean "not available"
        return False


def _choose_backend() -> dict[str, str]:
    if not _BACKEND:
        kafka = os.environ.get("PRIVREC_TEST_KAFKA")
        redis = os.environ.get("PRIVREC_TEST_REDIS")
        docker = None if (kafka and redis) else _docker_available()
        _BACKEND["kafka"] = "external" if kafka else ("testcontainers" if docker else "embedded")
        _BACKEND["redis"] = "external" if redis else ("testcontainers" if docker else "embedded")
    return _BACKEND


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # pytest then still tears down session fixtures (embedded services)


signal.signal(signal.SIGTERM, _terminate)


def pytest_report_header(config: pytest.Config) -> str:
    b = _choose_backend()
    names = {
        "embedded": "embedded (Tansu broker / redis-server)",
        "testcontainers": "testcontainers",
        "external": "external",
    }
    return f"privrec services: kafka={names[b['kafka']]}, redis={names[b['redis']]}"


@pytest.fixture(scope="session")
def _services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    backend = _choose_backend()
    out: dict[str, str] = {}
    with ExitStack() as stack:
        embedded = None
        if "embedded" in backend.values():
            from pipeline.embedded import EmbeddedServices

            embedded = EmbeddedServices(tmp_path_factory.mktemp("embedded"))
            stack.callback(embedded.down)
            recs = embedded.up(kafka=backend["kafka"] == "embedded", redis=backend["redis"] == "embedded")
            out.update({f"{name}_address": rec.url for name, rec in recs.items()})
        if backend["kafka"] == "external":
            out["kafka_address"] = os.environ["PRIVREC_TEST_KAFKA"]
        elif backend["kafka"] == "testcontainers":
            from testcontainers.community.kafka import KafkaContainer

            kafka = stack.enter_context(KafkaContainer().with_kraft())
            out["kafka_address"] = kafka.get_bootstrap_server()
        if backend["redis"] == "external":
            out["redis_address"] = os.environ["PRIVREC_TEST_REDIS"]
        elif backend["redis"] == "testcontainers":
            from testcontainers.community.redis import RedisContainer

            redis = stack.enter_context(RedisContainer())
            host, port = redis.get_container_host_ip(), redis.get_exposed_port(6379)
            out["redis_address"] = f"redis://{host}:{port}/0"
        out["kafka_backend"], out["redis_backend"] = backend["kafka"], backend["redis"]
        yield out


@pytest.fixture(scope="session")
def kafka_bootstrap(_services: dict[str, str]) -> str:
    """``host:port`` of a real Kafka-protocol broker for this test session."""
    return _services["kafka_address"]


@pytest.fixture(scope="session")
def redis_url(_services: dict[str, str]) -> str:
    """``redis://`` URL of a real Redis server for this test session."""
    return _services["redis_address"]


@pytest.fixture
def unique_prefix() -> str:
    """A topic prefix no other test uses (``t<uuid>.``)."""
    return f"t{uuid.uuid4().hex[:12]}."


@pytest.fixture
def make_topic(kafka_bootstrap: str) -> Iterator[Callable[..., str]]:
    """Factory: ``make_topic("events", partitions=3)`` creates a uniquely named topic."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="privrec-tests")

    def make(hint: str = "topic", partitions: int = 1, config: dict[str, str] | None = None) -> str:
        name = f"test.{hint}.{uuid.uuid4().hex[:12]}"
        admin.create_topics([NewTopic(name, partitions, 1, topic_configs=config or {})])
        return name

    yield make
    admin.close()


@pytest.fixture
def make_settings(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path, unique_prefix: str
) -> Callable[..., Settings]:
    """Factory: Settings pointing at the session's services, a fresh prefix and state dir."""

    def make(**overrides: Any) -> Settings:
        return isolated_settings(
            kafka_bootstrap, redis_url, tmp_path / "state", **{"topic_prefix": unique_prefix, **overrides}
        )

    return make
