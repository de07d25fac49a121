"""Resolve where Kafka and Redis are (external settings or the embedded services).

This is the one place that turns :class:`~pipeline.settings.Settings` into
addresses; library code receives the resulting clients as arguments.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.embedded import EMBEDDED_CLUSTER_ID, EmbeddedServices
from pipeline.errors import ServiceUnavailable
from pipeline.kafka.consumer import new_consumer
from pipeline.settings import Settings, mask_url

if TYPE_CHECKING:
    import redis

    from pipeline.kafka.tail import TopicTail

__all__ = [
    "Endpoints",
    "embedded_broker",
    "kafka_admin",
    "kafka_consumer",
    "kafka_producer",
    "redis_client",
    "resolve",
]


@dataclass(frozen=True)
class Endpoints:
    """Where the services are, and whether privrec runs them itself."""

    kafka_bootstrap: str
    kafka_embedded: bool
    redis_url: str
    redis_embedded: bool
    kafka_options: dict[str, Any]
    request_timeout_s: float = 10.0

    def __repr__(self) -> str:  # the Redis URL may hold a password
        return (
            f"Endpoints(kafka={self.kafka_bootstrap!r}, redis={mask_url(self.redis_url)!r}, "
            f"embedded=({self.kafka_embedded}, {self.redis_embedded}))"
        )


def resolve(settings: Settings) -> Endpoints:
    """External addresses from settings, else the running embedded services.

    Raises :class:`ServiceUnavailable` naming the setting when an embedded
    service is needed but ``privrec up`` has not started it.
    """
    embedded = EmbeddedServices(settings.state_dir)
    if settings.kafka.bootstrap_servers is not None:
        kafka = settings.kafka.bootstrap_servers
    else:
        rec = embedded.running("kafka")
        if rec is None:
            raise ServiceUnavailable(
                "kafka.bootstrap_servers (PRIVREC_KAFKA__BOOTSTRAP_SERVERS) is unset and the "
                "embedded broker is not running: run `privrec up` or set it"
            )
        kafka = rec.url
    if settings.redis.url is not None:
        redis_url = settings.redis.url.get_secret_value()
    else:
        rec = embedded.running("redis")
        if rec is None:
            raise ServiceUnavailable(
                "redis.url (PRIVREC_REDIS__URL) is unset and the embedded Redis is not "
                "running: run `privrec up` or set it"
            )
        redis_url = rec.url
    return Endpoints(
        kafka_bootstrap=kafka,
        kafka_embedded=settings.kafka.embedded,
        redis_url=redis_url,
        redis_embedded=settings.redis.embedded,
        kafka_options=settings.kafka.client_options(),
        request_timeout_s=settings.kafka.request_timeout_s,
    )


def redis_client(endpoints: Endpoints, **kwargs: Any) -> redis.Redis:
    """A redis-py client for the resolved Redis (connects lazily, on first command)."""
    import redis as redis_lib

    return redis_lib.Redis.from_url(endpoints.redis_url, **kwargs)


def embedded_broker(endpoints: Endpoints, timeout_s: float = 3.0) -> bool:
    """Whether Kafka is the Tansu broker privrec embeds (which needs :mod:`pipeline.kafka.end_offsets`).

    True when settings leave Kafka to ``privrec up``, and also when they name
    such a broker's address (tests and benches do): it is recognised by the
    cluster id privrec gives it. An unreachable broker counts as not embedded.
    """
    if endpoints.kafka_embedded:
        return True
    from kafka.errors import KafkaError

    try:
        admin = kafka_admin(endpoints, timeout_s)
    except ServiceUnavailable:
        return False
    try:
        return bool(admin.describe_cluster().get("cluster_id") == EMBEDDED_CLUSTER_ID)
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def kafka_admin(endpoints: Endpoints, timeout_s: float | None = None) -> Any:
    """A ``kafka.KafkaAdminClient``; raises :class:`ServiceUnavailable` if unreachable."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    timeout_s = timeout_s or endpoints.request_timeout_s
    ms = int(timeout_s * 1000)
    try:
        return KafkaAdminClient(
            bootstrap_servers=endpoints.kafka_bootstrap,
            client_id="privrec-admin",
            request_timeout_ms=ms,
            bootstrap_timeout_ms=ms,
            **endpoints.kafka_options,
        )
    except (KafkaError, OSError):
        raise ServiceUnavailable(
            f"kafka.bootstrap_servers (PRIVREC_KAFKA__BOOTSTRAP_SERVERS): no broker answered "
            f"at {endpoints.kafka_bootstrap} within {timeout_s:g}s"
        ) from None


def kafka_producer(endpoints: Endpoints, **overrides: Any) -> Any:
    """A ``kafka.KafkaProducer`` with privrec's defaults (acks=all, lz4-free, batching)."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    options: dict[str, Any] = {
        "bootstrap_servers": endpoints.kafka_bootstrap,
        "client_id": "privrec-producer",
        "acks": "all",
        "linger_ms": 5,
        "batch_size": 256 * 1024,
        "max_request_size": 4 * 1024 * 1024,
        **endpoints.kafka_options,
        **overrides,
    }
    try:
        return KafkaProducer(**options)
    except (KafkaError, OSError):
        raise ServiceUnavailable(
            f"kafka.bootstrap_servers (PRIVREC_KAFKA__BOOTSTRAP_SERVERS): no broker answered "
            f"at {endpoints.kafka_bootstrap}"
        ) from None


def kafka_consumer(endpoints: Endpoints, role: str, *, unique: bool = False, **overrides: Any) -> Any:
    """A ``kafka.KafkaConsumer`` with privrec's defaults (no group, no auto-commit, the security options).

    ``role`` names the client (``privrec-<role>``, a random suffix with ``unique``);
    see :func:`pipeline.kafka.consumer.new_consumer`. Raises :class:`ServiceUnavailable`
    if no broker answers.
    """
    return new_consumer(endpoints.kafka_bootstrap, endpoints.kafka_options, role, unique=unique, **overrides)


def topic_tail(endpoints: Endpoints, consumer: Any, topics: Iterable[str], partitions: int) -> TopicTail:
    """A :class:`~pipeline.kafka.tail.TopicTail` over ``topics`` from the beginning, on ``consumer``.

    The tail probes true log ends with the deployment's bootstrap and security options.
    """
    from pipeline.kafka.tail import TopicTail

    return TopicTail(
        consumer,
        topics,
        partitions,
        bootstrap=endpoints.kafka_bootstrap,
        client_options=endpoints.kafka_options,
    )
