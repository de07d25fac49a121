"""Fixtures shared by the integration tests (the session's broker and Redis are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from kafka import KafkaAdminClient

from pipeline.kafka.topics import create_topics
from pipeline.settings import Settings
from tests.integration.harness import Worker, wait_assigned


@pytest.fixture
def deployment(
    make_settings: Callable[..., Settings], kafka_bootstrap: str, tmp_path: Path
) -> Iterator[Settings]:
    """One `privrec worker` on 2 partitions, settings for a quick trainer: rights, export and audit."""
    settings = make_settings(
        partitions=2,
        stream={"idle_close_ms": 600_000, "window_grace_ms": 2 * 86_400_000},  # nothing late here
        trainer={
            "retrain_every_s": 20.0,
            "factors": 8,
            "iterations": 5,
            "gate_margin": 1.0,
            "gate_popularity": False,  # a toy audience: these tests need a model, whatever popularity scores
        },
    )
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    create_topics(admin, settings)
    admin.close()
    worker = Worker(settings, tmp_path / "logs").start()
    wait_assigned(settings, 1)
    yield settings
    worker.kill()


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    """A Redis client on the session's server, closed after the test."""
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()
