"""Narrow fixes to faust-streaming 0.15 that at-least-once processing needs.

1. Table recovery must read to the true end of a changelog.
2. Messages skipped during a rebalance must not be acknowledged.
3. Records must only be fetched for partitions the stream takes
   (see :func:`install_fetch_snapshot`).
4. Stream partitions must not be fetched before the stream buffers are cleared
   at the end of a recovery (see :func:`install_resume_after_clear`).
5. (Speed, not correctness) a send must not yield to the event loop three times
   just to look up the producer (see :func:`install_fast_producer_lookup`), nor
   hash its key in slow pure Python (see :class:`KafkaPartitioner`); and a fetch must not
   sit out Faust's fetch wait on idle partitions while others have data (see
   :func:`install_short_fetch_wait`). ``privrec bench stream`` measures what each buys.


Faust asks the broker for each changelog's high-water mark and stops
recovering there. The embedded Tansu broker under-reports it when the last
record batch holds several records (see :mod:`pipeline.kafka.end_offsets`), which
would silently drop the newest table updates on restart. Against that broker
only, we wrap the consumer's ``_highwaters`` so it returns probed, never-lower
end offsets.

Every patch relies on private internals, so :func:`install_patches` first checks
(:mod:`agents.compat_check`) that the installed faust-streaming and aiokafka are
within the tested pins and still have each patched attribute in the expected shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import struct
import weakref
from collections.abc import Iterator
from typing import Any

from faust import streams as faust_streams
from faust import topics as faust_topics
from faust.tables import recovery as faust_recovery
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka

from agents.compat_check import check_compat
from pipeline.kafka.end_offsets import probe_end_offsets

__all__ = [
    "KafkaPartitioner",
    "as_current_event",
    "install_fast_producer_lookup",
    "install_fetch_snapshot",
    "install_hole_repair",
    "install_no_ack_for_skipped",
    "install_patches",
    "install_resume_after_clear",
    "install_short_fetch_wait",
    "install_true_highwaters",
    "true_highwaters",
]

log = logging.getLogger(__name__)

_installed: dict[str, Any] = {}


_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS = [struct.Struct(f"<{n}I").unpack_from for n in range(65)]


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of ``data``, bit for bit ``aiokafka.partitioner.murmur2``, faster.

    aiokafka's pure-Python port assembles each 4-byte word from single bytes and
    masks after every operation; unpacking the words at once and masking only
    where a product can exceed 32 bits gives the same value.
    """
    length = len(data)
    h = 0x9747B28C ^ length
    n = length >> 2
    words = _WORDS[n](data) if n < 65 else struct.unpack_from(f"<{n}I", data)
    for k in words:
        k = (k * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    if rest:
        tail = length - rest
        if rest == 3:
            h ^= data[tail + 2] << 16
        if rest >= 2:
            h ^= data[tail + 1] << 8
        h = ((h ^ data[tail]) * _M) & _MASK
    h = ((h ^ (h >> 13)) * _M) & _MASK
    return h ^ (h >> 15)


class KafkaPartitioner:
    """aiokafka's ``DefaultPartitioner`` (Kafka's key hashing), with the faster :func:`murmur2`.

    Every keyed send without an explicit partition hashes its key; with
    aiokafka's own pure-Python murmur2 runs per record on the worker's event loop.
    """

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return random.choice(available or all_partitions)
        return all_partitions[(murmur2(key) & 0x7FFFFFFF) % len(all_partitions)]


@contextlib.contextmanager
def as_current_event(event: Any) -> Iterator[None]:
    """Make ``event`` Faust's current event for the block (in this task's context).

    A Faust table sends each write to the changelog partition of the *current
    event* (``Table.partition_for_key``), i.e. of the message being iterated. Code
    that writes the state of several messages after iterating past them must make
    the right message current for each write, or the write lands in another
    partition's changelog (and is restored on the wrong worker, in the wrong order).
    """
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)


def install_true_highwaters(bootstrap: str | None, **client_options: Any) -> None:
    """Probe true end offsets at ``bootstrap`` for Faust's recovery; ``None`` removes the patch.

    Only for the embedded Tansu broker, which under-reports them: against
    Apache Kafka the probe would be one extra fetch per changelog partition for
    nothing. Patches once per process; later calls update the address, or
    restore Faust's own method.
    """
    thread_cls = faust_aiokafka.AIOKafkaConsumerThread
    if bootstrap is None:
        if "original" in _installed:
            thread_cls._highwaters = _installed.pop("original")
        return
    _installed["bootstrap"] = bootstrap
    _installed["options"] = client_options
    if "original" in _installed:
        return
    _installed["original"] = thread_cls._highwaters
    thread_cls._highwaters = true_highwaters(thread_cls._highwaters)


def true_highwaters(original: Any) -> Any:
    """``original`` (Faust's ``_highwaters``) with each answer raised to the probed end offset."""

    @functools.wraps(original)
    async def _highwaters(self: Any, partitions: Any) -> Any:
        reported = await original(self, partitions)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            None,
            functools.partial(probe_end_offsets, _installed["bootstrap"], reported, **_installed["options"]),
        )

    _highwaters._privrec_patched = True  # type: ignore[attr-defined]
    return _highwaters


def install_patches(tansu_bootstrap: str | None, **client_options: Any) -> None:
    """Check the libraries (:func:`agents.compat_check.check_compat`), then install every patch.

    ``tansu_bootstrap``: the embedded broker's address, which gets the
    end-offset workaround (:func:`install_true_highwaters`); ``None`` for any
    other Kafka. :func:`install_hole_repair` needs the app and is installed
    separately.
    """
    check_compat()
    install_true_highwaters(tansu_bootstrap, **client_options)
    install_no_ack_for_skipped()
    install_fetch_snapshot()
    install_fast_producer_lookup()
    install_resume_after_clear()
    install_short_fetch_wait()


def install_fetch_snapshot() -> None:
    """Fetch only for the partitions active when the fetch starts; nothing when none are.

    Faust hands its *live* set of active (un-paused) partitions to the consumer
    thread, where aiokafka's ``Fetcher.fetched_records(partitions)`` treats an
    *empty* set as "every partition". Recovery empties that set for a moment (it
    pauses the changelog partitions before resuming the stream ones), so a fetch
    waiting at that moment returns the backlog of every stream partition; Faust's
    ``getmany`` then drops the records of the partitions it does not consider active,
    while aiokafka's position has already moved past them. Seen (instrumented) at
    worker start with a backlog: one to hundreds of messages per partition never reach
    the agent; a hole of one message gets committed (Faust's gap check tolerates one:
    the event is lost, and ``privrec bench stream`` waits forever for it) and longer
    ones stall commits until :func:`install_hole_repair` re-reads them.
    A frozen copy keeps aiokafka to the partitions active when the fetch began; the
    records of any other partition stay buffered in aiokafka for a later fetch.
    """
    thread_cls = faust_aiokafka.AIOKafkaConsumerThread
    if getattr(thread_cls._fetch_records, "_privrec_patched", False):
        return
    original = thread_cls._fetch_records

    @functools.wraps(original)
    async def _fetch_records(
        self: Any,
        consumer: Any,
        active_partitions: Any,
        timeout: float | None = None,
        max_records: int | None = None,
    ) -> Any:
        if active_partitions is not None:
            active_partitions = frozenset(active_partitions)
            if not active_partitions:
                return {}
        return await original(self, consumer, active_partitions, timeout=timeout, max_records=max_records)

    _fetch_records._privrec_patched = True  # type: ignore[attr-defined]
    thread_cls._fetch_records = _fetch_records


def install_no_ack_for_skipped() -> None:
    """Never acknowledge a message the stream skipped unseen during a rebalance; re-read it.

    faust-streaming 0.15 skips messages fetched while flow control is
    suspended (a rebalance) or from an older consumer generation, and then
    *acks* them (``faust/streams.py``: ``do_ack or value is skipped_value``),
    so their offsets get committed although no agent processed them: a
    message lost on every unlucky rebalance (faust-streaming issues #216,
    #221, #606). Refusing the ack alone is not enough: the fetcher may keep
    draining an old fetch after the post-rebalance seek and move its read
    offset past the skipped messages, leaving a hole that blocks commits for
    good. So a refused message also schedules a seek of its partition back to
    the smallest refused offset; the messages come again in the current
    generation and are processed (the processor is idempotent per user and
    offset, so anything read twice is not counted twice).
    """
    if getattr(faust_consumer.Consumer.ack, "_privrec_patched", False):
        return
    original = faust_consumer.Consumer.ack

    async def rewind(consumer: Any) -> None:
        await asyncio.sleep(0.05)  # let the fetcher finish the batch it is draining
        pending = consumer.__dict__.pop("_privrec_rewind", {})
        assigned = consumer.assignment()
        for tp, offset in pending.items():
            if tp in assigned:
                log.info("re-reading %s[%d] from %d (skipped in a rebalance)", tp.topic, tp.partition, offset)
                await consumer.seek(tp, offset)

    @functools.wraps(original)
    def ack(self: Any, message: Any) -> bool:
        if not message.tracked and (
            not self.app.flow_control.is_active() or message.generation_id != self.app.consumer_generation_id
        ):
            pending = self.__dict__.setdefault("_privrec_rewind", {})
            log.info(
                "refusing ack of %s[%d]@%d (flow %s, generation %s vs %s)",
                message.tp.topic,
                message.tp.partition,
                message.offset,
                self.app.flow_control.is_active(),
                message.generation_id,
                self.app.consumer_generation_id,
            )
            first = not pending
            tp = message.tp
            pending[tp] = min(pending.get(tp, message.offset), message.offset)
            if first:
                task = asyncio.ensure_future(rewind(self))
                self.__dict__["_privrec_rewind_task"] = task  # keep a reference until it ran
            return False
        return bool(original(self, message))

    ack._privrec_patched = True  # type: ignore[attr-defined]
    faust_consumer.Consumer.ack = ack


def install_resume_after_clear() -> None:
    """Resume fetching stream partitions only after recovery has cleared the stream buffers.

    At the end of a recovery faust-streaming 0.15 (``Recovery.on_recovery_completed``,
    ``Recovery._resume_streams``) first *resumes* the stream partitions, then awaits the
    seek to committed offsets, and only then calls ``flow_control.resume()``, which
    *clears* every stream buffer. Whatever the fetcher delivered while the seek was
    awaited is thrown away unprocessed while the read offset moves on (the pattern of
    a ``privrec bench stream`` run whose six partitions processed before "Worker ready"
    all missed offsets 11..17). A hole of
    several messages blocks that partition's commits until :func:`install_hole_repair`
    re-reads it (a 5-10 s stall, and a partition replayed), and a hole of exactly one
    message right after a commit point is committed by Faust's own gap check
    (``_new_offset``: ``min(acked) - committed > 1``), silently losing that message.

    The fix keeps Faust's order of operations but defers the stream partitions'
    ``resume_partitions`` until just after that ``flow_control.resume()``: the seek
    happens on paused partitions, the clear finds nothing of the new generation, and
    fetching starts at the committed offsets.
    """
    if getattr(faust_recovery.Recovery.on_recovery_completed, "_privrec_patched", False):
        return

    def deferring(original: Any) -> Any:
        @functools.wraps(original)
        async def wrapper(self: Any, generation_id: int = 0) -> None:
            consumer = self.app.consumer
            flow = self.app.flow_control
            deferred: set[Any] = set()

            def resume_partitions(tps: Any) -> None:
                deferred.update(tps)

            def resume_flow_then_partitions() -> None:
                type(flow).resume(flow)  # clears the stream buffers
                if deferred:
                    type(consumer).resume_partitions(consumer, set(deferred))
                    deferred.clear()

            consumer.resume_partitions = resume_partitions
            flow.resume = resume_flow_then_partitions
            try:
                await original(self, generation_id)
            finally:
                # Still deferred only if the seek raised (a new rebalance, or stopping):
                # that rebalance pauses and later resumes the partitions itself.
                del consumer.resume_partitions
                del flow.resume

        wrapper._privrec_patched = True  # type: ignore[attr-defined]
        return wrapper

    faust_recovery.Recovery.on_recovery_completed = deferring(faust_recovery.Recovery.on_recovery_completed)
    faust_recovery.Recovery._resume_streams = deferring(faust_recovery.Recovery._resume_streams)


def install_fast_producer_lookup() -> None:
    """Return the started producer to ``Topic.send`` without three trips through the event loop.

    Every ``Topic.send`` (and every table changelog write) calls
    ``app.maybe_start_producer()``, a mode ``@stampede`` method whose wrapper awaits
    ``asyncio.sleep(0)`` three times per call, even when the producer has long been
    started. Each of those is a full event-loop iteration (an epoll call that also
    releases the GIL), so a Faust send cost well above a plain aiokafka send
    (``privrec bench stream`` compares them). Once the producer is started, and
    outside transactions, ``maybe_start_producer`` returns ``app.producer`` after
    ``producer.maybe_start()`` does nothing, so returning it directly is equivalent.
    """
    if getattr(faust_topics.Topic._get_producer, "_privrec_patched", False):
        return
    original = faust_topics.Topic._get_producer

    @functools.wraps(original)
    async def _get_producer(self: Any) -> Any:
        app = self.app
        producer = app.producer
        if producer.started and not app.in_transaction:
            return producer
        return await original(self)

    _get_producer._privrec_patched = True  # type: ignore[attr-defined]
    faust_topics.Topic._get_producer = _get_producer


def install_short_fetch_wait(max_wait_ms: int = 100) -> None:
    """Let the broker hold a worker's fetch request for at most ``max_wait_ms`` (Faust: 1500).

    aiokafka keeps one fetch request in flight per broker and leaves out of it the
    partitions whose fetched records are still buffered. When the request in flight
    holds only partitions that have reached their end, the broker keeps it for the
    whole ``fetch_max_wait_ms`` (Faust hard-codes 1500 ms), and the partitions that
    do have data wait too once their buffered records are consumed (an idle gap
    ``privrec bench stream`` shows), and in production it delays every busy
    partition whenever some are idle. With 100 ms an idle worker sends ten small
    fetch requests a second instead of one.
    """
    thread_cls = faust_aiokafka.AIOKafkaConsumerThread
    if getattr(thread_cls._create_worker_consumer, "_privrec_patched", False):
        _installed["fetch_max_wait_ms"] = max_wait_ms
        return
    _installed["fetch_max_wait_ms"] = max_wait_ms
    original = thread_cls._create_worker_consumer

    @functools.wraps(original)
    def _create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = _installed["fetch_max_wait_ms"]  # read when it starts
        return consumer

    _create_worker_consumer._privrec_patched = True  # type: ignore[attr-defined]
    thread_cls._create_worker_consumer = _create_worker_consumer


def install_hole_repair(app: Any, interval_s: float = 5.0) -> None:
    """Re-read a partition whose commits are stuck behind messages the stream never saw.

    Faust commits an offset only when every message before it was acknowledged.
    We measured, with the embedded broker and a backlog present at start-up,
    that a handful of messages per partition can be dropped unseen by Faust's
    fetcher (its read-offset bookkeeping moves past them), after which that
    partition's commit never advances again and those events are never
    processed. This timer finds such holes — acknowledged offsets beyond the
    committed one, with the gap unchanged across two checks — and seeks the
    partition back to its committed offset. The re-read messages are processed
    (the skipped ones) or recognised as already applied (the processor tracks
    per-user offsets), so nothing is lost and nothing counted twice.
    """
    seen: dict[Any, tuple[int, int]] = {}

    @app.timer(interval=interval_s)
    async def repair_commit_holes() -> None:
        consumer = app.consumer
        assigned = consumer.assignment()
        for tp in list(assigned):
            acked = consumer._acked.get(tp)
            committed = consumer._committed_offset.get(tp)
            if not acked or committed is None:
                seen.pop(tp, None)
                continue
            first = min(acked)
            if first <= committed:
                seen.pop(tp, None)
                continue
            hole = (committed, first)
            if seen.get(tp) == hole:
                log.warning(
                    "%s[%d]: offsets %d..%d were never processed; re-reading from %d",
                    tp.topic,
                    tp.partition,
                    committed,
                    first - 1,
                    committed,
                )
                seen.pop(tp, None)
                await consumer.seek(tp, committed)
            else:
                seen[tp] = hole
