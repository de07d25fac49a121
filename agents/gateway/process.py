"""``privrec gateway`` as a process: make the clients, serve the app, stop cleanly on SIGTERM.

:func:`open_deps` is the one place that builds a :class:`GatewayDeps` from
settings (the CLI, the bench and the tests use it); :func:`run_gateway` serves
it until SIGTERM/SIGINT and then closes the listener first, the producer (which
flushes) and Redis last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable
from typing import Any

from agents.gateway.app import make_app, runner
from agents.gateway.deps import GatewayDeps
from agents.gateway.metrics import GatewayMetrics
from agents.gateway.ratelimit import RateLimiter
from pipeline.errors import ServiceUnavailable
from pipeline.gateway.auth import TokenVerifier, ensure_hs256_key
from pipeline.kafka.topics import Topic
from pipeline.keys import pseudonymizer
from pipeline.services.connect import Endpoints, kafka_producer, resolve
from pipeline.settings import Settings

__all__ = ["KafkaSink", "open_deps", "run_gateway"]

log = logging.getLogger(__name__)


class KafkaSink:
    """An idempotent Kafka producer (acks=all); :meth:`send` returns once the broker acknowledged.

    kafka-python's producer, not aiokafka's: aiokafka 0.14 asks for a producer id with
    InitProducerId v0, which the embedded Tansu broker answers with an unknown error,
    while kafka-python negotiates a version both support. Its sender thread batches;
    :meth:`send` only enqueues (metadata is fetched in :meth:`start`, so the event
    loop never waits for it) and awaits the acknowledgement as an asyncio future.
    """

    def __init__(self, endpoints: Endpoints, max_request_size: int, topics: list[str]) -> None:
        self._endpoints = endpoints
        self._max_request_size = max_request_size
        self._topics = topics
        self._producer: Any = None
        self.ready = False

    def __repr__(self) -> str:
        return "KafkaSink(...)"

    def _open(self) -> Any:
        from kafka.errors import KafkaError

        producer = kafka_producer(
            self._endpoints,
            client_id="privrec-gateway",
            enable_idempotence=True,
            acks="all",
            linger_ms=2,
            max_block_ms=2000,
            max_request_size=self._max_request_size,
        )
        try:
            for topic in self._topics:
                producer.partitions_for(topic)
        except KafkaError as exc:
            producer.close(timeout=1)
            raise ServiceUnavailable(f"kafka: topic metadata unavailable ({type(exc).__name__})") from None
        return producer

    async def start(self) -> None:
        self._producer = await asyncio.to_thread(self._open)
        self.ready = True

    async def send(self, topic: str, key: bytes, value: bytes | None) -> None:
        from kafka.errors import KafkaError

        if not self.ready:
            raise ServiceUnavailable("kafka: producer not started")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()

        def ok(metadata: Any) -> None:
            loop.call_soon_threadsafe(_settle, done, None)

        def failed(exc: BaseException) -> None:
            loop.call_soon_threadsafe(_settle, done, exc)

        try:
            pending = self._producer.send(topic, value=value, key=key)
        except (KafkaError, OSError) as exc:
            raise ServiceUnavailable(f"kafka: produce failed ({type(exc).__name__})") from None
        pending.add_callback(ok)
        pending.add_errback(failed)
        error = await done
        if error is not None:
            raise ServiceUnavailable(f"kafka: produce failed ({type(error).__name__})")

    async def stop(self) -> None:
        self.ready = False
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await asyncio.to_thread(producer.close, 10)


def _settle(future: asyncio.Future[Any], error: BaseException | None) -> None:
    if not future.done():
        future.set_result(error)


@contextlib.asynccontextmanager
async def open_deps(settings: Settings, *, limits: bool = True) -> AsyncIterator[GatewayDeps]:
    """Started clients for the gateway (Kafka producer, Redis, reader, limiter), closed on exit.

    Raises:
        ServiceUnavailable: Kafka or Redis is not reachable (or not started).
        ConfigError: a token key or JWKS setting is wrong.
    """
    import redis.asyncio as aredis

    from pipeline.serving import AsyncReader, Layout

    endpoints = resolve(settings)
    if settings.gateway.symmetric and settings.gateway.hs256_key_file is None:
        ensure_hs256_key(settings)
    verifier = TokenVerifier(settings)
    pz = pseudonymizer(settings)
    client = aredis.Redis.from_url(endpoints.redis_url, socket_timeout=5, socket_connect_timeout=5)
    topics = [settings.topic(name) for name in (Topic.RAW, Topic.CONSENT, Topic.ERASURE)]
    sink = KafkaSink(endpoints, max(settings.stream.max_message_bytes, 1_048_576) + 64 * 1024, topics)
    try:
        await sink.start()
        deps = GatewayDeps(
            settings=settings,
            verifier=verifier,
            sink=sink,
            redis=client,
            reader=AsyncReader(client, pz, Layout.from_settings(settings)),
            pseudonymizer=pz,
            limiter=RateLimiter(settings, endpoints.redis_url, pz) if limits else None,
            metrics=GatewayMetrics(),
        )
        yield deps
    finally:
        await sink.stop()
        await client.aclose()


async def serve(
    settings: Settings,
    host: str,
    port: int,
    on_start: Callable[[str], None],
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until ``stop`` is set (or SIGTERM/SIGINT); ``on_start`` gets the bound URL."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    from aiohttp import web

    async with open_deps(settings) as deps:
        app_runner = runner(make_app(deps))
        await app_runner.setup()
        site = web.TCPSite(app_runner, host, port)
        try:
            await site.start()
            server = site._server
            sockets = getattr(server, "sockets", None) or []
            bound = sockets[0].getsockname()[1] if sockets else port
            on_start(f"http://{host}:{bound}")
            await stop.wait()
        finally:
            await app_runner.cleanup()


def run_gateway(settings: Settings, host: str, port: int, on_start: Callable[[str], None]) -> None:
    """Blocking entry point for the CLI."""
    asyncio.run(serve(settings, host, port, on_start))
