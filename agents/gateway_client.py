"""Talk to a ``privrec gateway`` as playback clients do: a child process, viewer tokens, HTTP batches.

Shared by ``privrec demo`` (part of its traffic goes through the gateway) and
``privrec bench gateway``. :class:`GatewayProcess` runs the real command
(``privrec gateway --port 0``) with the caller's settings and reads the bound
address from its first line; :class:`EventPoster` sends ``playback.batch.v1``
bodies with each viewer's bearer token over a few keep-alive connections.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from agents.procs import ChildProcess, wait_until
from pipeline.errors import ServiceUnavailable
from pipeline.settings import Settings

__all__ = ["EventPoster", "GatewayProcess", "PostReport", "viewer_token"]

_LISTENING = re.compile(r"gateway: listening on (http://\S+)")
_json = msgspec.json.Encoder()


def viewer_token(settings: Settings, user_id: str, scopes: Sequence[str], ttl_s: int = 3600) -> str:
    """A development token for ``user_id`` (the embedded HS256 key, as ``privrec token issue``)."""
    from pipeline.gateway.auth import issue_token

    return issue_token(settings, user=user_id, scopes=list(scopes), ttl_s=ttl_s)


class GatewayProcess:
    """``privrec gateway --host 127.0.0.1 --port 0`` as a child, for a ``with`` block."""

    def __init__(self, settings: Settings, log_path: Path, *, timeout_s: float = 60.0) -> None:
        self.child = ChildProcess(settings, log_path, ["gateway", "--host", "127.0.0.1", "--port", "0"])
        self.timeout_s = timeout_s
        self.url = ""

    def __enter__(self) -> GatewayProcess:
        offset = self.child.log_path.stat().st_size if self.child.log_path.exists() else 0
        self.child.start()

        def bound() -> str | None:
            if not self.child.running:
                raise ServiceUnavailable(f"the gateway exited at start (log: {self.child.log_path})")
            match = _LISTENING.search(self.child.log()[offset:])
            return match.group(1) if match else None

        try:
            self.url = wait_until(bound, self.timeout_s, "the gateway to listen", interval=0.1)
        except (TimeoutError, ServiceUnavailable):
            self.child.stop(timeout=10)
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.child.stop(timeout=30)


@dataclass
class PostReport:
    """What a run of :meth:`EventPoster.post` sent and the gateway answered (counts, timings)."""

    requests: int = 0
    accepted: int = 0
    rejected: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0


class EventPoster:
    """POST ``/v1/events`` batches: each with its viewer's token, ``clients`` connections at once.

    ``lanes`` keeps order where order matters: the batches of one lane are sent one after the
    other (the next only once the gateway acknowledged the previous), lanes run concurrently.
    """

    def __init__(self, base_url: str, tokens: dict[str, str], *, clients: int = 4) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.clients = max(1, clients)

    @staticmethod
    def body(events: Iterable[dict[str, Any]]) -> bytes:
        return _json.encode({"schema": "playback.batch.v1", "events": list(events)})

    async def post(self, lanes: Sequence[Sequence[tuple[str, bytes]]]) -> PostReport:
        """Send every ``(user_id, body)`` of every lane; lanes share ``clients`` connections."""
        import aiohttp

        report = PostReport()
        connector = aiohttp.TCPConnector(limit=self.clients, force_close=False)
        timeout = aiohttp.ClientTimeout(total=60)
        url = f"{self.base_url}/v1/events"
        started = time.perf_counter()
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def run(lane: Sequence[tuple[str, bytes]]) -> None:
                for user_id, body in lane:
                    headers = {
                        "Authorization": f"Bearer {self.tokens[user_id]}",
                        "Content-Type": "application/json",
                    }
                    t0 = time.perf_counter()
                    async with session.post(url, data=body, headers=headers) as resp:
                        payload = await resp.read()
                    report.latencies_ms.append((time.perf_counter() - t0) * 1000)
                    report.requests += 1
                    report.statuses[resp.status] = report.statuses.get(resp.status, 0) + 1
                    if resp.status == 202:
                        answer = msgspec.json.decode(payload)
                        report.accepted += int(answer.get("accepted", 0))
                        report.rejected += len(answer.get("errors", []))

            await asyncio.gather(*(run(lane) for lane in lanes))
        report.seconds = time.perf_counter() - started
        return report

    def post_sync(self, lanes: Sequence[Sequence[tuple[str, bytes]]]) -> PostReport:
        return asyncio.run(self.post(lanes))
