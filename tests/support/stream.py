"""The StreamProcessor without Kafka: one processor, one event preset, one consent table for tests.

Shared by the unit tests of the stream, of rights requests and of exports, and
by the integration tests that compare the real worker against the pure
processor (the hostile-message feed).
"""

from __future__ import annotations

import json
import zlib
from functools import partial
from typing import Any

import msgspec

from pipeline.privacy.consent import Purposes
from pipeline.privacy.consent_history import Change, ConsentHistory, encode_history
from pipeline.privacy.pseudonym import Pseudonymizer, PseudonymKey
from pipeline.stream import StreamConfig, StreamProcessor, encode_control
from pipeline.stream.control import Control
from pipeline.windows import WindowSpec
from tests.hostile import Hostile
from tests.support.events import playback_event

__all__ = [
    "NOW",
    "PARTITIONS",
    "SPEC",
    "Consents",
    "close_all",
    "enc",
    "event",
    "feed",
    "hostile_consent",
    "make",
]

NOW = 1_900_000_000_000
"""The processor's clock: long after every event (closed windows are late unless consent says otherwise)."""
SPEC = WindowSpec(size_ms=3_600_000, grace_ms=600_000)
PARTITIONS = 4
"""Partitions the hostile feed spreads its messages over."""

event = partial(playback_event, user="alice", content="c1", t=1_700_000_000_000, kind="play", watched=1000)
"""A ``play`` of ``c1`` by ``alice``: the stream tests' defaults, bound once on the one factory."""


def make(**kw: Any) -> StreamProcessor:
    """A processor with one pseudonym key and the fixed clock; keywords go to :class:`StreamConfig`."""
    pz = Pseudonymizer([PseudonymKey("k1", b"0123456789abcdef0123")])
    return StreamProcessor(StreamConfig(window=SPEC, **kw), pz, clock=lambda: NOW)


def enc(obj: Any) -> bytes:
    return json.dumps(obj).encode()


class Consents(dict[str, bytes]):
    """The consent table the processor looks up (pseudonym -> encoded history); ``get`` is the lookup."""

    def set(self, proc: StreamProcessor, user: str, a: bool, p: bool, d: bool = False) -> None:
        history = ConsentHistory((Change(1, 0, Purposes(a, p, d)),))
        self[proc.pz.pseudonym(user)] = encode_history(history)


_GRANTED = encode_history(ConsentHistory((Change(0, 0, Purposes(analytics=True, personalization=True)),)))


def hostile_consent(pseudonym: str) -> bytes | None:
    """Consent for four pseudonyms in five (by a stable hash); the rest are dropped, still received."""
    return _GRANTED if zlib.crc32(pseudonym.encode()) % 5 else None  # a fifth without consent: dropped


def feed(proc: StreamProcessor, msg: Hostile, offset: int) -> list[dict[str, Any]]:
    """One message through the processor; the accounting checked; its DLQ records decoded."""
    before = proc.counters["received"]
    fx = proc.on_playback(offset % PARTITIONS, offset, msg.key, msg.value, hostile_consent)
    received = proc.counters["received"] - before
    dlq = [json.loads(value) for _, value in fx.dlq]
    assert received + len(dlq) == msg.units, (msg.strategy, received, len(dlq), msg.units)
    for record in dlq:
        assert isinstance(record["reason"], str) and record["reason"]
        assert record["source"]["offset"] == offset
    if msg.must_reject:
        assert received == 0 and len(dlq) == msg.units, (msg.strategy, [d["reason"] for d in dlq])
    for _, value in fx.redacted + fx.interactions:
        msgspec.json.decode(value)  # everything produced is valid JSON
    return dlq


def close_all(proc: StreamProcessor) -> int:
    """Close every window (end of stream): the emitted records must encode."""
    emitted = 0
    marker = encode_control(Control(command="close_windows", id="fuzz", at=NOW))
    for p in range(PARTITIONS):
        fx = proc.on_control(p, 10**9, marker)
        assert not fx.dlq
        emitted += len(fx.interactions)
    return emitted
