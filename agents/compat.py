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
from typing import Any

from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka

from pipeline.end_offsets import probe_end_offsets

__all__ = ["install_no_ack_for_skipped", "install_true_highwaters"]

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
    """Never acknowledge a message the stream skipped unseen during a rebalance.

    faust-streaming 0.15 skips messages fetched while flow control is
    suspended (a rebalance) or from an older consumer generation, and then
    *acks* them (``faust/streams.py``: ``do_ack or value is skipped_value``),
    so their offsets get committed although no agent processed them: a
    message lost on every unlucky rebalance (faust-streaming issues #216,
    #221, #606). Such messages were never tracked by the stream; refusing
    their ack keeps the committed offset before them, and the consumer's seek
    to committed offsets after the rebalance delivers them again.
    """
    if getattr(faust_consumer.Consumer.ack, "_privrec_patched", False):
        return
    original = faust_consumer.Consumer.ack

    @functools.wraps(original)
    def ack(self: Any, message: Any) -> bool:
        if not message.tracked and (
            not self.app.flow_control.is_active() or message.generation_id != self.app.consumer_generation_id
        ):
            return False
        return bool(original(self, message))

    ack._privrec_patched = True  # type: ignore[attr-defined]
    faust_consumer.Consumer.ack = ack
