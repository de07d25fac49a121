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
from pipeline.kafka.topics import Table
from pipeline.ops.keys import stats_key
from pipeline.ops.summary import process_identity
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


@dataclass
class _Outputs:
    """Where a batch's effects go: the output topics, then the changelogged tables."""

    quarantine: Any
    dlq: Any
    redacted: Any
    interactions: Any
    after: dict[str, Any]  # confirmations by role: "consent" (tombstones), "stages" (erasure)
    windows: Any
    consent: Any

    async def perform(self, fx: Effects, sources: Mapping[int, Any]) -> None:
        """Perform ``fx``; ``sources``: the latest message (event) of each partition it came from."""
        for key, value in fx.quarantine:  # raw values (personal data), only with dlq_include_raw
            await self.quarantine.send(key=key, value=value)
        for key, value in fx.dlq:
            await self.dlq.send(key=key, value=value)
        for key, value in fx.redacted:
            await self.redacted.send(key=key, value=value)
        if fx.interactions:
            pending = [await self.interactions.send(key=k, value=v) for k, v in fx.interactions]
            await asyncio.gather(*pending)  # acknowledged before the state forgets them
        for write in collapse_writes(fx.state):  # not the writes the next one overwrites
            key = write.key.encode()
            with as_current_event(sources[split_key(write.key)[0]]):  # changelog partition = key's
                if write.value is None:
                    self.windows.pop(key, None)
                else:
                    self.windows[key] = write.value
        for pseudonym, value in fx.consent:
            key = pseudonym.encode()
            if value is None:
                self.consent.pop(key, None)
            else:
                self.consent[key] = value
        if fx.after:  # confirmations: only once the state above is written, and acknowledged
            sent = [await self.after[role].send(key=k, value=v) for role, k, v in fx.after]
            await asyncio.gather(*sent)


def _outputs(app: faust.App, topics: AppTopics, raw_opts: Mapping[str, Any], partitions: int) -> _Outputs:
    """Declare the output topics and the two tables on ``app``."""
    # bytes key/value types make Faust use the raw codec for writes *and* recovery
    table_opts: dict[str, Any] = {
        "default": None,
        "partitions": partitions,
        "key_type": bytes,
        "value_type": bytes,
    }
    return _Outputs(
        redacted=app.topic(topics.redacted, **raw_opts),
        interactions=app.topic(topics.interactions, **raw_opts),
        dlq=app.topic(topics.dlq, **raw_opts),
        quarantine=app.topic(topics.quarantine, **raw_opts),
        after={
            "consent": app.topic(topics.consent, **raw_opts),
            "stages": app.topic(topics.erasure_stages, **raw_opts),
        },
        windows=app.Table(str(Table.WINDOWS), **table_opts),
        consent=app.Table(str(Table.CONSENT), **table_opts),
    )


class _Batcher:
    """The batch not yet performed; :meth:`flush` performs it, then acknowledges its messages."""

    def __init__(self, outputs: _Outputs, stats: dict[str, Any]) -> None:
        self.outputs = outputs
        self.stats = stats
        self.batch = _Batch()
        self.performing = asyncio.Lock()
        self.failed: list[BaseException] = []  # from a flush run by the stall watch, re-raised by the agent

    def add(self, fx: Effects, event: Any, playback: bool) -> int:
        """Add one processed message; returns how many the batch holds."""
        self.batch.playback |= playback
        self.batch.add(fx, event)
        return len(self.batch.events)

    def drop(self) -> None:
        """Forget the batch: never performed, so never acknowledged (read again after a restart)."""
        self.batch.take()

    async def flush(self, stream: faust.StreamT) -> None:
        """Perform the batch's effects, then acknowledge its messages (Faust commits only those)."""
        async with self.performing:
            fx, events, playback = self.batch.take()
            if not events:
                return
            with as_current_event(events[-1]):  # the message a consent or erasure effect came from
                await self.outputs.perform(fx, {event.message.partition: event for event in events})
            for event in events:
                await stream.ack(event)
            if playback:
                self.stats["last_at"] = time.time_ns() // 1_000_000


class _StallWatch:
    """Flushes a batch that waited :data:`BATCH_STALL_S` for its next message; one timer at a time."""

    def __init__(self, batcher: _Batcher, stream: faust.StreamT) -> None:
        self.batcher = batcher
        self.stream = stream
        self.loop = asyncio.get_running_loop()
        self.processed = 0  # messages the agent has taken, so a watch sees whether it moved on
        self.timer: asyncio.TimerHandle | None = None
        self.flushes: set[asyncio.Future[None]] = set()

    def arm(self) -> None:
        if self.timer is None:
            self.timer = self.loop.call_later(BATCH_STALL_S, self._stalled, self.processed)

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()

    def _stalled(self, seen: int) -> None:
        if self.processed != seen:  # the agent moved on since: look again later
            self.timer = self.loop.call_later(BATCH_STALL_S, self._stalled, self.processed)
            return
        self.timer = None
        if self.batcher.batch.events:  # flush() waits for a flush already under way, then takes what is left
            task = asyncio.ensure_future(self.batcher.flush(self.stream))
            self.flushes.add(task)
            task.add_done_callback(self._flushed)

    def _flushed(self, task: asyncio.Future[None]) -> None:
        self.flushes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.batcher.failed.append(task.exception())  # type: ignore[arg-type]


def _effects_of(
    processor: StreamProcessor,
    topics: AppTopics,
    stats: dict[str, Any],
    msg: Any,
    consent_of: Callable[[str], bytes | None],
) -> tuple[Effects, bool]:
    """Route one message to the processor by topic; returns its effects and whether it was playback.

    An unexpected error becomes a dead letter: input never crashes the agent.
    """
    p = msg.partition
    playback = False  # a playback message counts as such even when processing it failed
    try:
        if msg.topic == topics.raw:
            if is_control(msg.key, msg.value):
                stats["idle_markers_pending"].discard(p)
                return processor.on_control(p, msg.offset, msg.value), playback
            playback = True
            stats.setdefault("first_at", time.time_ns() // 1_000_000)
            return processor.on_playback(p, msg.offset, msg.key, msg.value, consent_of), playback
        if msg.topic == topics.consent:
            return processor.on_consent(p, msg.offset, msg.key, msg.value, consent_of), playback
        return processor.on_erasure(p, msg.offset, msg.key, msg.value), playback
    except Exception as exc:  # log where and what kind, never the payload
        kind = type(exc).__name__
        log.error("unexpected %s at %s[%d]@%d; message sent to the DLQ", kind, msg.topic, p, msg.offset)
        return processor.internal_error(msg.topic, p, msg.offset, kind), playback


def _add_idle_check(
    app: faust.App, processor: StreamProcessor, topics: AppTopics, raw_topic: Any, stats: dict[str, Any]
) -> None:
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


def _add_stats_timer(
    app: faust.App,
    processor: StreamProcessor,
    topics: AppTopics,
    stats: dict[str, Any],
    on_stats: Callable[[dict[str, Any]], None],
    interval_s: float,
) -> None:
    @app.timer(interval=interval_s)
    async def publish_stats() -> None:
        data = snapshot(processor, stats)
        data["assigned"] = sorted(tp.partition for tp in app.consumer.assignment() if tp.topic == topics.raw)
        on_stats(data)


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
    outputs = _outputs(app, topics, raw_opts, partitions)
    stats: dict[str, Any] = {"worker": f"{app.conf.id}:{uuid.uuid4().hex[:8]}", "idle_markers_pending": set()}
    batcher = _Batcher(outputs, stats)

    def consent_of(pseudonym: str) -> bytes | None:
        return outputs.consent.get(pseudonym.encode())

    def ensure_loaded(partition: int) -> None:
        if partition not in processor.partitions:
            prefix = f"{partition}/".encode()
            state = ((k.decode(), v) for k, v in outputs.windows.items() if k.startswith(prefix))
            processor.load(partition, state)

    @app.agent(source, name="privacy-stream")
    async def privacy_stream(stream: faust.StreamT) -> None:
        stream.enable_acks = False  # the batcher acknowledges each message once its effects are performed
        queue = getattr(stream.channel, "queue", None)
        buffer_empty: Callable[[], bool] = queue.empty if queue is not None else lambda: True
        watch = _StallWatch(batcher, stream)
        try:
            async for event in stream.events():
                watch.processed += 1
                if batcher.failed:
                    raise batcher.failed.pop()
                msg = event.message
                ensure_loaded(msg.partition)
                fx, playback = _effects_of(processor, topics, stats, msg, consent_of)
                held = batcher.add(fx, event, playback)
                if msg.topic != topics.raw or held >= BATCH_MAX_MESSAGES or buffer_empty():
                    await batcher.flush(stream)
                else:  # more is buffered: performed together with the next messages
                    watch.arm()
        finally:
            watch.cancel()
            batcher.drop()

    _add_idle_check(app, processor, topics, raw_topic, stats)

    @app.on_partitions_revoked.connect
    def _revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        processor.drop({tp.partition for tp in revoked if tp.topic == topics.raw})

    if on_stats is not None:
        _add_stats_timer(app, processor, topics, stats, on_stats, stats_interval_s)

    return StreamAgent(app, processor, topics, outputs.windows, outputs.consent, stats)


def snapshot(processor: StreamProcessor, stats: dict[str, Any]) -> dict[str, Any]:
    """Counters and window progress of this worker, with no user data."""
    return {
        "worker": stats["worker"],
        "at": int(time.time() * 1000),
        **process_identity(),  # so `privrec status` sees an exited worker at once
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
