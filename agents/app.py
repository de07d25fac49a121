"""The Faust app: broker, tables and topics built from settings (nothing global).

``create_app`` is called once at the edge (``privrec worker``); the agents in
:mod:`agents.stream` are attached to the app it returns.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

import faust

from agents.compat import KafkaPartitioner, install_hole_repair, install_patches
from pipeline.kafka.topics import Topic
from pipeline.services.connect import Endpoints, embedded_broker
from pipeline.settings import Settings

__all__ = ["AppTopics", "create_app"]

#: Against the embedded single-node broker a consumer group joins in ~30 s with
#: Kafka's default session/rebalance timeouts; a few seconds with these.
EMBEDDED_TIMEOUTS = {
    "broker_session_timeout": 6.0,
    "broker_rebalance_timeout": 6.0,
    "broker_heartbeat_interval": 1.0,
}


@dataclass(frozen=True)
class AppTopics:
    """Full topic names used by the agents."""

    raw: str
    consent: str
    erasure: str
    erasure_stages: str
    redacted: str
    interactions: str
    dlq: str
    quarantine: str

    @classmethod
    def from_settings(cls, settings: Settings) -> AppTopics:
        t = settings.topic
        return cls(
            raw=t(Topic.RAW),
            consent=t(Topic.CONSENT),
            erasure=t(Topic.ERASURE),
            erasure_stages=t(Topic.ERASURE_STAGES),
            redacted=t(Topic.REDACTED),
            interactions=t(Topic.INTERACTIONS),
            dlq=t(Topic.DLQ),
            quarantine=t(Topic.QUARANTINE),
        )


def _credentials(settings: Settings) -> Any:
    k = settings.kafka
    context = None
    if k.security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=str(k.ssl_cafile) if k.ssl_cafile else None)
        if k.ssl_certfile:
            context.load_cert_chain(str(k.ssl_certfile), str(k.ssl_keyfile) if k.ssl_keyfile else None)
    if k.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=k.sasl_username,
            password=k.sasl_password.get_secret_value() if k.sasl_password else None,
            mechanism=k.sasl_mechanism or "PLAIN",
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def create_app(settings: Settings, endpoints: Endpoints, *, worker_id: str = "w0") -> faust.App:
    """A Faust app for this deployment (embedded timeouts when the broker is embedded)."""
    datadir = (settings.state_dir / "faust" / f"{settings.app_id}-{worker_id}").resolve()
    datadir.mkdir(parents=True, exist_ok=True)
    brokers = [f"kafka://{server.strip()}" for server in endpoints.kafka_bootstrap.split(",")]
    options: dict[str, Any] = {
        "broker": brokers,
        "store": "memory://",
        "topic_partitions": settings.partitions,
        "topic_replication_factor": settings.replication_factor,
        "topic_allow_declare": True,
        "consumer_auto_offset_reset": "earliest",
        "producer_acks": -1,
        "web_enabled": False,
        "datadir": str(datadir),
        "broker_commit_interval": 1.0,
        "stream_buffer_maxsize": 4096,
        "producer_max_request_size": 4 * 1024 * 1024,
        "consumer_max_fetch_size": 4 * 1024 * 1024,
        # A redacted envelope is ~5 KB, so Faust's default 16 KB batches hold three records: more
        # batches (futures, builders, broker appends) per record; larger batches cost less CPU per
        # send (privrec bench stream). Latency is unchanged: producer_linger stays
        # 0, a batch only grows while the previous produce request is in flight.
        "producer_max_batch_size": 256 * 1024,
        # aiokafka's default partitioner hashes every key with a slow pure-Python murmur2; this one
        # computes the same partitions faster.
        "producer_partitioner": KafkaPartitioner(),
    }
    if endpoints.kafka_embedded or (
        settings.kafka.bootstrap_servers and _is_loopback(endpoints.kafka_bootstrap)
    ):
        options.update(EMBEDDED_TIMEOUTS)
    tansu = endpoints.kafka_bootstrap if embedded_broker(endpoints) else None
    install_patches(tansu, **endpoints.kafka_options)
    credentials = _credentials(settings)
    if credentials is not None:
        options["broker_credentials"] = credentials
    app = faust.App(settings.app_id, **options)
    install_hole_repair(app)
    return app


def _is_loopback(bootstrap: str) -> bool:
    return all(
        s.strip().rsplit(":", 1)[0] in ("127.0.0.1", "localhost", "::1", "[::1]")
        for s in bootstrap.split(",")
    )
