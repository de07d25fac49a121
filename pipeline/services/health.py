"""Cheap reachability probes: a Kafka metadata request and a Redis PING."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["kafka_reachable", "redis_reachable"]

log = logging.getLogger(__name__)


def kafka_reachable(bootstrap: str, timeout_s: float = 3.0, **client_options: Any) -> bool:
    """True when a broker at ``bootstrap`` answers a metadata (describe cluster) request."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    ms = max(int(timeout_s * 1000), 100)
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            request_timeout_ms=ms,
            bootstrap_timeout_ms=ms,
            client_id="privrec-probe",
            **client_options,
        )
    except (KafkaError, OSError) as exc:
        log.debug("kafka probe of %s failed: %s", bootstrap, type(exc).__name__)
        return False
    try:
        admin.describe_cluster()
        return True
    except (KafkaError, OSError) as exc:
        log.debug("kafka probe of %s failed: %s", bootstrap, type(exc).__name__)
        return False
    finally:
        admin.close()


def redis_reachable(url: str, timeout_s: float = 2.0) -> bool:
    """True when Redis at ``url`` answers PING."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()
