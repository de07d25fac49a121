"""Two narrow fixes to faust-streaming 0.15 that at-least-once processing needs.

1. Table recovery must read to the true end of a changelog.
2. Messages skipped during a rebalance must not be acknowledged.


Faust asks the broker for each changelog's high-water mark and stops
recovering there. The embedded Tansu broker under-reports it when the last
record batch holds several records (see :mod:`pipeline.end_offsets`), which
would silently drop the newest table updates on restart. We wrap the
consumer's ``_highwaters`` so it returns probed, never-lower end offsets.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka

from pipeline.end_offsets import probe_end_offsets

__all__ = ["install_hole_repair", "install_no_ack_for_skipped", "install_true_highwaters"]

log = logging.getLogger(__name__)

_installed: dict[str, Any] = {}


def install_true_highwaters(bootstrap: str, **client_options: Any) -> None:
    """Patch once per process; later calls only update the address."""
    _installed["bootstrap"] = bootstrap
    _installed["options"] = client_options
    if "original" in _installed:
        return
    original = faust_aiokafka.AIOKafkaConsumerThread._highwaters
    _installed["original"] = original

    @functools.wraps(original)
    async def _highwaters(self: Any, partitions: Any) -> Any:
        reported = await original(self, partitions)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            None,
            functools.partial(probe_end_offsets, _installed["bootstrap"], reported, **_installed["options"]),
        )

    faust_aiokafka.AIOKafkaConsumerThread._highwaters = _highwaters


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
