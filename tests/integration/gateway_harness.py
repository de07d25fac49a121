"""Run a real gateway (real Kafka producer, Redis, limiter) on a free port in a background thread.

Usage::

    with running_gateway(settings) as gw:
        requests.get(gw.url + "/healthz")
        token = gw.token(user="alice", scopes=["recs:read:self"])
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient

from pipeline.gateway.auth import issue_token
from pipeline.kafka.topics import create_topics
from pipeline.settings import Settings


@dataclass
class RunningGateway:
    url: str
    settings: Settings
    deps: Any
    loop: asyncio.AbstractEventLoop

    def token(
        self, *, user: str | None = None, service: str | None = None, scopes: Iterable[str], **kw: Any
    ) -> str:
        return issue_token(self.settings, user=user, service=service, scopes=scopes, **kw)

    def headers(self, token: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", **extra}

    def call(self, coro: Any, timeout: float = 30) -> Any:
        """Run a coroutine on the gateway's loop (e.g. reset the limiter)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


def ensure_topics(settings: Settings) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    try:
        create_topics(admin, settings)
    finally:
        admin.close()


@contextlib.contextmanager
def running_gateway(
    settings: Settings, *, limits: bool = True, topics: bool = True
) -> Iterator[RunningGateway]:
    from aiohttp import web

    from agents.gateway.app import make_app, runner
    from agents.gateway.process import open_deps

    if topics:
        ensure_topics(settings)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        try:
            async with open_deps(settings, limits=limits) as deps:
                app_runner = runner(make_app(deps))
                await app_runner.setup()
                site = web.TCPSite(app_runner, "127.0.0.1", 0)
                await site.start()
                port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
                box["gw"] = RunningGateway(f"http://127.0.0.1:{port}", settings, deps, loop)
                ready.set()
                try:
                    await stop.wait()
                finally:
                    await app_runner.cleanup()
        except BaseException as exc:
            box["error"] = exc
            ready.set()
            raise

    def run() -> None:
        asyncio.set_event_loop(loop)
        with contextlib.suppress(BaseException):
            loop.run_until_complete(main())

    thread = threading.Thread(target=run, name="gateway", daemon=True)
    thread.start()
    if not ready.wait(60):
        raise AssertionError("gateway did not start within 60 s")
    if "error" in box:
        thread.join(10)
        raise box["error"]
    try:
        yield box["gw"]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()
