"""Issue 10: window sums saturate at the ``interaction.v1`` bounds instead of overflowing.

On main a window summed ``watched_ms`` without bound, so events the engine
accepted produced an interaction no int64 (or int32) column can hold.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from pipeline.errors import ConfigError
from pipeline.recs.matrix import InteractionStore
from pipeline.windows import PartitionWindows, WindowSpec, WindowState
from pipeline.wire import Interaction, decode_as
from pipeline.wire.fields import MAX_COUNT, MAX_WINDOW_WATCHED_MS
from tests.support.windows_reference import expected_interactions

SIZE = 1_000


def ev(t: int, watched: Any = 0, kind: str = "heartbeat") -> dict[str, Any]:
    return {"user": "u", "content_id": "c1", "event_type": kind, "watched_ms": watched, "event_time": t}


def closed(spec: WindowSpec, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    engine = PartitionWindows(spec, clock=lambda: 0)
    out = engine.add(events).closed + engine.close_all().closed
    return [msgspec.structs.asdict(c) for c in out]


def test_default_caps_are_the_wire_bounds() -> None:
    spec = WindowSpec()
    assert (spec.watched_cap_ms, spec.count_cap) == (MAX_WINDOW_WATCHED_MS, MAX_COUNT)


@pytest.mark.parametrize("watched", [2**31, 2**63, 2**64, 10**30])
def test_watched_sum_saturates_and_the_trainer_can_read_it(watched: int) -> None:
    spec = WindowSpec(size_ms=SIZE, grace_ms=0)
    events = [ev(1, watched), ev(2, watched), ev(3, 5)]
    [record] = closed(spec, events)
    assert record["watched_ms"] == MAX_WINDOW_WATCHED_MS
    assert [record] == expected_interactions(events, spec)
    value = msgspec.json.encode({"schema": "interaction.v1", **record})
    interaction = decode_as(value, Interaction)
    store = InteractionStore()
    store.add(interaction)
    assert int(store.pairs().watched_ms[0]) == MAX_WINDOW_WATCHED_MS


def test_counts_saturate_at_the_spec_cap() -> None:
    spec = WindowSpec(size_ms=SIZE, grace_ms=0, watched_cap_ms=100, count_cap=3)
    events = [ev(t, 40, "play") for t in range(1, 8)]
    [record] = closed(spec, events)
    assert (record["watched_ms"], record["plays"], record["events"]) == (100, 3, 3)
    assert [record] == expected_interactions(events, spec)


def test_restore_saturates_state_written_without_caps() -> None:
    spec = WindowSpec(size_ms=SIZE, grace_ms=0, watched_cap_ms=100, count_cap=3)
    old = WindowState("u", "c1", 0, 2**70, 10, False, 10).to_state()
    engine = PartitionWindows.restore(spec, None, [old], clock=lambda: 0)
    [record] = engine.close_all().closed
    assert (record.watched_ms, record.plays, record.events) == (100, 3, 3)


@pytest.mark.parametrize(
    "caps",
    [
        {"watched_cap_ms": 0},
        {"watched_cap_ms": MAX_WINDOW_WATCHED_MS + 1},
        {"count_cap": 0},
        {"count_cap": MAX_COUNT + 1},
        {"count_cap": 2.5},
    ],
)
def test_caps_beyond_the_wire_bounds_are_refused(caps: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        WindowSpec(**caps)
