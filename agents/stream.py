"""The privacy-stream agent: wires co-partitioned topics to :class:`StreamProcessor`.

One agent consumes ``playback.raw``, ``consent`` and ``erasure`` together.
All three are keyed by the raw user id with the same partition count, so Faust
assigns partition *p* of each to the same worker: a user's consent, events and
window state live in one place, and every state write lands in changelog
partition *p*. The agent performs each message's effects in a fixed order:

1. produce dead letters (and, with ``stream.dlq_include_raw``, the dead
   messages' raw values to the quarantine topic) and redacted records
   (at-least-once);
2. produce closed windows to ``interactions`` and **wait for the broker's
   acknowledgement**;
3. only then write window state and consent to the changelogged tables.

A crash between 2 and 3 re-emits identical window records after restart; the
reverse order could lose a window. Offsets are committed by Faust after the
changelog is flushed, and per-user offsets in the state make replays idempotent
(see :mod:`pipeline.stream.partition`).

Messages are processed one by one, in order, but their effects are performed in
batches: consecutive messages (up to :data:`BATCH_MAX_MESSAGES`, as many as are
already buffered) are processed, then their effects performed together in the
order above, then the messages are acknowledged to Faust, which commits only
acknowledged offsets. So a batch waits once for the broker's acknowledgement of
its closed windows (not once per message that closed one), and skips a table
write that the next write to its partition overwrites (see
:func:`pipeline.stream.collapse_writes`). A ``consent`` or ``erasure`` message
ends a batch, so later events always read the consent table with its effects
applied.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import faust

from agents.app import AppTopics
from agents.compat import as_current_event
from pipeline.ops.keys import stats_key
from pipeline.stream import (
    CONTROL_KEY,
    Control,
    Effects,
    StreamProcessor,
    collapse_writes,
    encode_control,
    is_control,
    split_key,
)

__all__ = ["BATCH_MAX_MESSAGES", "BATCH_STALL_S", "StreamAgent", "attach_stream"]

log = logging.getLogger(__name__)

#: At most this many messages have their effects performed together (one acknowledgement wait).
#: Their table writes (about half a write per message once collapsed) then mostly stay under the
#: 100 pending changelog records at which Faust throttles fetching with a "buffer full" warning.
BATCH_MAX_MESSAGES = 128
#: A batch that waited this long for its next message is performed without it: a rebalance can
#: empty the stream's buffer while Faust waits for the batch's messages to be acknowledged.
BATCH_STALL_S = 0.02

_EFFECT_FIELDS = tuple(f.name for f in dataclasses.fields(Effects))


class _Batch:
    """Effects of processed messages not yet performed, and those messages' (unacknowledged) events."""

    __slots__ = ("effects", "events", "playback")

    def __init__(self) -> None:
        self.effects = Effects()
        self.events: list[Any] = []
        self.playback = False

    def add(self, fx: Effects, event: Any) -> None:
        merged = self.effects
        for name in _EFFECT_FIELDS:
            items = getattr(fx, name)
            if items:
                getattr(merged, name).extend(items)
        self.events.append(event)

    def take(self) -> tuple[Effects, list[Any], bool]:
        taken = (self.effects, self.events, self.playback)
        self.effects, self.events, self.playback = Effects(), [], False
        return taken


@dataclass
class StreamAgent:
    """Handles to what :func:`attach_stream` created (for the CLI and tests)."""

    app: faust.App
    processor: StreamProcessor
    topics: AppTopics
    windows: Any
    consent: Any
    stats: dict[str, Any]


def attach_stream(
    app: faust.App,
    processor: StreamProcessor,
    topics: AppTopics,
    *,
    partitions: int,
    on_stats: Callable[[dict[str, Any]], None] | None = None,
    stats_interval_s: float = 2.0,
) -> StreamAgent:
    """Define tables, topics, the agent and its timers on ``app``."""
    raw_opts: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw", "partitions": partitions}
    source = app.topic(topics.raw, topics.consent, topics.erasure, **raw_opts)
    raw_topic = app.topic(topics.raw, **raw_opts)
    redacted_topic = app.topic(topics.redacted, **raw_opts)
    interactions_topic = app.topic(topics.interactions, **raw_opts)
    dlq_topic = app.topic(topics.dlq, **raw_opts)
    quarantine_topic = app.topic(topics.quarantine, **raw_opts)
    after_topics = {
        "consent": app.topic(topics.consent, **raw_opts),
        "stages": app.topic(topics.erasure_stages, **raw_opts),
    }
    # bytes key/value types make Faust use the raw codec for writes *and* recovery
    windows = app.Table("windows", default=None, partitions=partitions, key_type=bytes, value_type=bytes)
    consent = app.Table("consent", default=None, partitions=partitions, key_type=bytes, value_type=bytes)
    stats: dict[str, Any] = {"worker": f"{app.conf.id}:{uuid.uuid4().hex[:8]}", "idle_markers_pending": set()}

    def consent_of(pseudonym: str) -> bytes | None:
        return consent.get(pseudonym.encode())

    def ensure_loaded(partition: int) -> None:
        if partition not in processor.partitions:
            prefix = f"{partition}/".encode()
            processor.load(partition, ((k.decode(), v) for k, v in windows.items() if k.startswith(prefix)))

    async def perform(fx: Effects, sources: Mapping[int, Any]) -> None:
        """Perform ``fx``; ``sources``: the latest message (event) of each partition it came from."""
        for key, value in fx.quarantine:  # raw values (personal data), only with dlq_include_raw
            await quarantine_topic.send(key=key, value=value)
        for key, value in fx.dlq:
            await dlq_topic.send(key=key, value=value)
        for key, value in fx.redacted:
            await redacted_topic.send(key=key, value=value)
        if fx.interactions:
            pending = [await interactions_topic.send(key=k, value=v) for k, v in fx.interactions]
            await asyncio.gather(*pending)  # acknowledged before the state forgets them
        for write in collapse_writes(fx.state):  # not the writes the next one overwrites
            key = write.key.encode()
            with as_current_event(sources[split_key(write.key)[0]]):  # changelog partition = key's
                if write.value is None:
                    windows.pop(key, None)
                else:
                    windows[key] = write.value
        for pseudonym, value in fx.consent:
            key = pseudonym.encode()
            if value is None:
                consent.pop(key, None)
            else:
                consent[key] = value
        if fx.after:  # confirmations: only once the state above is written, and acknowledged
            sent = [await after_topics[role].send(key=k, value=v) for role, k, v in fx.after]
            await asyncio.gather(*sent)

    batch = _Batch()
    performing = asyncio.Lock()
    failed: list[BaseException] = []  # from a flush run by the stall timer, re-raised by the agent

    async def flush(stream: faust.StreamT) -> None:
        """Perform the batch's effects, then acknowledge its messages (Faust commits only those)."""
        async with performing:
            fx, events, playback = batch.take()
            if not events:
                return
            with as_current_event(events[-1]):  # the message a consent or erasure effect came from
                await perform(fx, {event.message.partition: event for event in events})
            for event in events:
                await stream.ack(event)
            if playback:
                stats["last_at"] = time.time_ns() // 1_000_000

    @app.agent(source, name="privacy-stream")
    async def privacy_stream(stream: faust.StreamT) -> None:
        stream.enable_acks = False  # flush() acknowledges each message once its effects are performed
        queue = getattr(stream.channel, "queue", None)
        buffer_empty: Callable[[], bool] = queue.empty if queue is not None else lambda: True
        loop = asyncio.get_running_loop()
        stall: asyncio.TimerHandle | None = None  # one watch at a time, not one timer per message
        stall_flushes: set[asyncio.Future[None]] = set()
        processed = 0

        def flushed(task: asyncio.Future[None]) -> None:
            stall_flushes.discard(task)
            if not task.cancelled() and task.exception() is not None:
                failed.append(task.exception())  # type: ignore[arg-type]

        def stalled(seen: int) -> None:
            nonlocal stall
            if processed != seen:  # the agent moved on since: look again later
                stall = loop.call_later(BATCH_STALL_S, stalled, processed)
                return
            stall = None
            if batch.events:  # flush() waits for a flush already under way, then takes what is left
                task = asyncio.ensure_future(flush(stream))
                stall_flushes.add(task)
                task.add_done_callback(flushed)

        try:
            async for event in stream.events():
                processed += 1
                if failed:
                    raise failed.pop()
                msg = event.message
                p = msg.partition
                ensure_loaded(p)
                try:
                    if msg.topic == topics.raw:
                        if is_control(msg.key, msg.value):
                            stats["idle_markers_pending"].discard(p)
                            fx = processor.on_control(p, msg.offset, msg.value)
                        else:
                            fx = processor.on_playback(p, msg.offset, msg.key, msg.value, consent_of)
                            batch.playback = True
                            stats.setdefault("first_at", time.time_ns() // 1_000_000)
                    elif msg.topic == topics.consent:
                        fx = processor.on_consent(p, msg.offset, msg.key, msg.value, consent_of)
                    else:
                        fx = processor.on_erasure(p, msg.offset, msg.key, msg.value)
                except Exception as exc:  # never crash on input: log where and what kind, never the payload
                    log.error(
                        "unexpected %s at %s[%d]@%d; message sent to the DLQ",
                        type(exc).__name__,
                        msg.topic,
                        p,
                        msg.offset,
                    )
                    fx = processor.internal_error(msg.topic, p, msg.offset, type(exc).__name__)
                batch.add(fx, event)
                if msg.topic != topics.raw or len(batch.events) >= BATCH_MAX_MESSAGES or buffer_empty():
                    await flush(stream)
                elif stall is None:  # more is buffered: performed together with the next messages
                    stall = loop.call_later(BATCH_STALL_S, stalled, processed)
        finally:
            if stall is not None:
                stall.cancel()
            batch.take()  # never performed, so never acknowledged: read again after a restart

    @app.timer(interval=max(0.5, processor.config.idle_close_ms / 4000))
    async def idle_check() -> None:
        """Ask quiet partitions with open windows to close them (via an in-order marker)."""
        now = processor.clock()
        assigned = {tp.partition for tp in app.consumer.assignment() if tp.topic == topics.raw}
        for p, state in list(processor.partitions.items()):
            last = state.engine.last_activity_ms
            if (
                p in assigned
                and p not in stats["idle_markers_pending"]
                and state.engine.open_count
                and last is not None
                and now - last >= processor.config.idle_close_ms
            ):
                stats["idle_markers_pending"].add(p)
                marker = Control(command="idle", id=uuid.uuid4().hex, at=now)
                await raw_topic.send(key=CONTROL_KEY, value=encode_control(marker), partition=p)

    @app.on_partitions_revoked.connect
    def _revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        processor.drop({tp.partition for tp in revoked if tp.topic == topics.raw})

    if on_stats is not None:

        @app.timer(interval=stats_interval_s)
        async def publish_stats() -> None:
            data = snapshot(processor, stats)
            data["assigned"] = sorted(
                tp.partition for tp in app.consumer.assignment() if tp.topic == topics.raw
            )
            on_stats(data)

    return StreamAgent(app, processor, topics, windows, consent, stats)


def snapshot(processor: StreamProcessor, stats: dict[str, Any]) -> dict[str, Any]:
    """Counters and window progress of this worker, with no user data."""
    return {
        "worker": stats["worker"],
        "at": int(time.time() * 1000),
        "counters": dict(processor.counters),
        "first_at": stats.get("first_at"),
        "last_at": stats.get("last_at"),
        "partitions": {
            str(p): {"open_windows": s.engine.open_count, "watermark": s.engine.watermark}
            for p, s in processor.partitions.items()
        },
    }


def stats_to_redis(client: Any, ttl_s: int = 300) -> Callable[[dict[str, Any]], None]:
    """A stats sink writing ``privrec:stats:worker:<id>`` (JSON, with a TTL)."""

    def write(data: dict[str, Any]) -> None:
        try:
            client.set(stats_key("worker", data["worker"]), json.dumps(data), ex=ttl_s)
        except Exception as exc:  # metrics must never stop the stream
            log.warning("could not publish stats: %s", type(exc).__name__)

    return write
