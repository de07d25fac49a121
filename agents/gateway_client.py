"""Talk to a ``privrec gateway`` as playback clients do: a child process, viewer tokens, HTTP batches.

Shared by ``privrec demo`` (part of its traffic goes through the gateway) and
``privrec bench gateway``. :class:`GatewayProcess` runs the real command
(``privrec gateway --port 0``) with the caller's settings and reads the bound
address from its first line; :class:`EventPoster` sends ``playback.batch.v1``
bodies with each viewer's bearer token over a few keep-alive connections.
"""

from __future__ import annotations

import asyncio
import queue
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from agents.procs import ChildProcess, wait_until
from pipeline.errors import ServiceUnavailable
from pipeline.settings import Settings

__all__ = [
    "EventPoster",
    "GatewayProcess",
    "PartitionLanes",
    "PostReport",
    "events_limit_raised",
    "viewer_token",
]

_LISTENING = re.compile(r"gateway: listening on (http://\S+)")
_json = msgspec.json.Encoder()


def events_limit_raised(settings: Settings, events: str = "100000/minute") -> Settings:
    """``settings`` with the gateway's events limit raised, for clients that all share one address.

    The demo's and the bench's clients all come from 127.0.0.1, so the per-address limit would
    throttle every simulated viewer as one; the per-subject check still runs on each request.
    """
    limits = settings.gateway.limits.model_copy(update={"events": events})
    return settings.model_copy(update={"gateway": settings.gateway.model_copy(update={"limits": limits})})


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
        if not self.detached:
            self.child.stop(timeout=30)

    detached = False

    def detach(self) -> int:
        """Leave the gateway running after the block (``privrec demo --keep``); returns its pid."""
        self.detached = True
        assert self.child.proc is not None
        return self.child.proc.pid


class PartitionLanes:
    """A replay's ``divert``: the viewers of the first ``share`` of partitions go through the gateway.

    Why whole partitions: the stream's watermark is per partition, and a replay
    sends hours of event time per second, so two producers interleaving on one
    partition (the replay's Kafka producer and the gateway's) would make one's
    earlier events late behind the other's. Viewers are chosen by the partition
    their key hashes to (Kafka's murmur2, as both producers compute it), and each
    partition's batches keep their replay order in one lane, sent one at a time.
    """

    def __init__(self, partitions: int, share: float, *, casefold_user_ids: bool) -> None:
        count = 0 if share <= 0 else min(partitions, max(1, round(share * partitions)))
        self.n_partitions = partitions
        self.casefold = casefold_user_ids
        self.queues: dict[int, queue.Queue[Any]] = {p: queue.Queue() for p in range(count)}
        self.events = 0
        self.poster: EventPoster | None = None
        self._thread: threading.Thread | None = None
        self._report: PostReport | None = None
        self._error: BaseException | None = None

    @property
    def partitions(self) -> list[int]:
        return sorted(self.queues)

    def start(self, poster: EventPoster) -> PartitionLanes:
        """Post each lane's batches from a background thread while the replay goes on."""
        self.poster = poster

        def run() -> None:
            try:
                self._report = poster.post_sync(list(self.queues.values()))
            except BaseException as exc:  # re-raised by finish() on the caller's thread
                self._error = exc

        self._thread = threading.Thread(target=run, name="gateway-lanes", daemon=True)
        self._thread.start()
        return self

    def finish(self, timeout_s: float = 600.0) -> PostReport:
        """End every lane and wait until the gateway acknowledged all of it."""
        for q in self.queues.values():
            q.put(None)
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise ServiceUnavailable(f"the gateway did not take the demo's events within {timeout_s:g} s")
        if self._error is not None:
            raise self._error
        return self._report or PostReport()

    def partition_of(self, user_id: str) -> int:
        from kafka.partitioner.default import murmur2

        from pipeline.privacy.identity import user_key

        return (murmur2(user_key(user_id, casefold=self.casefold)) & 0x7FFFFFFF) % self.n_partitions

    def __call__(self, user_id: str, events: list[dict[str, Any]]) -> bool:
        lane = self.queues.get(self.partition_of(user_id))
        if lane is None:
            return False
        lane.put((user_id, EventPoster.body(events)))
        self.events += len(events)
        return True


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
    A lane is a sequence, or a ``queue.Queue`` fed by another thread and ended with ``None``.
    ``tokens`` maps a viewer to their bearer token (a dict, or a function called once per viewer).
    """

    def __init__(
        self, base_url: str, tokens: dict[str, str] | Callable[[str], str], *, clients: int = 4
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._tokens: dict[str, str] = dict(tokens) if isinstance(tokens, dict) else {}
        self._mint = None if isinstance(tokens, dict) else tokens
        self.clients = max(1, clients)

    def token(self, user_id: str) -> str:
        token = self._tokens.get(user_id)
        if token is None and self._mint is not None:
            token = self._tokens[user_id] = self._mint(user_id)
        if token is None:
            raise KeyError("no token for this viewer")
        return token

    @property
    def viewers(self) -> int:
        return len(self._tokens)

    @staticmethod
    def body(events: Iterable[dict[str, Any]]) -> bytes:
        return _json.encode({"schema": "playback.batch.v1", "events": list(events)})

    async def post(self, lanes: Sequence[Sequence[tuple[str, bytes]] | queue.Queue[Any]]) -> PostReport:
        """Send every ``(user_id, body)`` of every lane; lanes share ``clients`` connections."""
        import aiohttp

        report = PostReport()
        connector = aiohttp.TCPConnector(limit=self.clients, force_close=False)
        timeout = aiohttp.ClientTimeout(total=60)
        url = f"{self.base_url}/v1/events"
        started = time.perf_counter()
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def items(lane: Any) -> AsyncIterator[tuple[str, bytes]]:
                if isinstance(lane, queue.Queue):
                    while (item := await asyncio.to_thread(lane.get)) is not None:
                        yield item
                else:
                    for item in lane:
                        yield item

            async def run(lane: Any) -> None:
                async for user_id, body in items(lane):
                    headers = {
                        "Authorization": f"Bearer {self.token(user_id)}",
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

    def post_sync(self, lanes: Sequence[Sequence[tuple[str, bytes]] | queue.Queue[Any]]) -> PostReport:
        return asyncio.run(self.post(lanes))
