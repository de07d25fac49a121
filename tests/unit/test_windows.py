"""Unit tests of the tumbling-window engine: one test per documented rule."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import msgspec
import pytest

from pipeline.errors import ConfigError, PrivrecError
from pipeline.windows import (
    DEFAULT_GRACE_MS,
    DEFAULT_SIZE_MS,
    Interaction,
    PartitionMeta,
    PartitionWindows,
    WindowKey,
    WindowSpec,
    WindowState,
    WindowStateError,
)

SIZE = 1_000
GRACE = 100
SPEC = WindowSpec(size_ms=SIZE, grace_ms=GRACE)

Event = dict[str, Any]
MakeEvent = Callable[..., Event]


@pytest.fixture
def ev() -> MakeEvent:
    """Factory for redacted playback events in dict form."""

    def make(
        t: int, user: str = "u1", content: str = "c1", kind: str = "heartbeat", watched: int = 0
    ) -> Event:
        return {
            "user": user,
            "content_id": content,
            "event_type": kind,
            "watched_ms": watched,
            "event_time": t,
        }

    return make


@pytest.fixture
def engine() -> PartitionWindows:
    return PartitionWindows(SPEC, clock=lambda: 0)


# -- geometry -------------------------------------------------------------


def test_defaults_are_one_hour_and_ten_minutes() -> None:
    assert WindowSpec() == WindowSpec(DEFAULT_SIZE_MS, DEFAULT_GRACE_MS)
    assert (DEFAULT_SIZE_MS, DEFAULT_GRACE_MS) == (3_600_000, 600_000)


@pytest.mark.parametrize(("t", "start"), [(0, 0), (999, 0), (1000, 1000), (1500, 1000), (-1, -1000)])
def test_windows_are_aligned_to_epoch(t: int, start: int) -> None:
    assert SPEC.window_start(t) == start
    assert SPEC.window_end(t) == start + SIZE


@pytest.mark.parametrize(("size", "grace"), [(0, 0), (-5, 0), (10, -1), (True, 0), (1.5, 0)])
def test_spec_rejects_bad_values(size: Any, grace: Any) -> None:
    with pytest.raises(ConfigError):
        WindowSpec(size_ms=size, grace_ms=grace)


# -- aggregation ------------------------------------------------------------


def test_aggregates_sum_count_any(engine: PartitionWindows, ev: MakeEvent) -> None:
    engine.add(
        [
            ev(10, kind="play", watched=0),
            ev(20, kind="heartbeat", watched=300),
            ev(30, kind="play", watched=200),
            ev(40, kind="complete", watched=50),
            ev(50, kind="pause", watched=0),
        ]
    )
    (closed,) = engine.close_all().closed
    assert closed == Interaction("u1", "c1", 0, 1000, 550, 2, True, 5)
    assert msgspec.structs.asdict(closed) == {
        "user": "u1",
        "content_id": "c1",
        "window_start": 0,
        "window_end": 1000,
        "watched_ms": 550,
        "plays": 2,
        "completed": True,
        "events": 5,
    }


def test_window_key_separates_user_content_and_window(engine: PartitionWindows, ev: MakeEvent) -> None:
    engine.add([ev(10), ev(10, user="u2"), ev(10, content="c2"), ev(1010)])
    keys = [w.key for w in engine.open_windows()]
    assert keys == [("u1", "c1", 0), ("u1", "c2", 0), ("u2", "c1", 0), ("u1", "c1", 1000)]


# -- watermark, closing, lateness -------------------------------------------


def test_watermark_is_max_event_time_minus_grace(engine: PartitionWindows, ev: MakeEvent) -> None:
    assert engine.watermark is None
    engine.add([ev(500), ev(300)])
    assert engine.max_event_time == 500
    assert engine.watermark == 400


def test_window_closes_exactly_when_watermark_reaches_its_end(
    engine: PartitionWindows, ev: MakeEvent
) -> None:
    engine.add([ev(10)])
    assert engine.add([ev(SIZE + GRACE - 1, user="u2")]).closed == ()
    result = engine.add([ev(SIZE + GRACE, user="u2")])
    assert [c.key for c in result.closed] == [("u1", "c1", 0)]
    assert engine.watermark == SIZE


def test_closed_window_is_emitted_once(engine: PartitionWindows, ev: MakeEvent) -> None:
    engine.add([ev(10)])
    first = engine.add([ev(5000, user="u2")]).closed
    later = engine.add([ev(9000, user="u2")]).closed + engine.close_all().closed
    assert [c.key for c in first] == [("u1", "c1", 0)]
    assert ("u1", "c1", 0) not in [c.key for c in later]


def test_out_of_order_within_grace_is_accepted(engine: PartitionWindows, ev: MakeEvent) -> None:
    result = engine.add([ev(1050), ev(990, watched=7)])  # watermark 950 < end 1000
    assert result.late == 0
    assert engine.window_state(WindowKey("u1", "c1", 0)) == WindowState("u1", "c1", 0, 7, 0, False, 1, 990)


def test_late_event_is_counted_dropped_and_never_reopens(engine: PartitionWindows, ev: MakeEvent) -> None:
    engine.add([ev(10)])
    engine.add([ev(SIZE + GRACE)])  # closes [0, 1000)
    result = engine.add([ev(999, kind="play", watched=5), ev(0)])
    assert (result.late, result.closed, result.dirty) == (2, (), ())
    assert engine.late_total == 2
    assert engine.window_state(WindowKey("u1", "c1", 0)) is None
    assert all(c.window_start != 0 for c in engine.close_all().closed)


def test_watermark_advances_per_event_within_a_batch(engine: PartitionWindows, ev: MakeEvent) -> None:
    result = engine.add([ev(10), ev(SIZE + GRACE, user="u2"), ev(20, watched=9)])
    assert [c.key for c in result.closed] == [("u1", "c1", 0)]
    assert result.closed[0].events == 1
    assert result.late == 1


def test_watermark_never_moves_back(engine: PartitionWindows, ev: MakeEvent) -> None:
    engine.add([ev(5000)])
    engine.add([ev(4950)])
    assert engine.watermark == 4900


def test_closed_windows_ordered_by_end_then_first_event(engine: PartitionWindows, ev: MakeEvent) -> None:
    engine.add([ev(1050, user="b"), ev(10, user="b", content="z"), ev(20, user="a", content="y")])
    engine.add([ev(30, user="b")])
    engine.add([ev(1090, user="a", content="a")])
    result = engine.add([ev(10_000, user="x")])
    order = [(c.window_end, c.user, c.content_id) for c in result.closed]
    assert order == [
        (1000, "b", "z"),  # first event at 10
        (1000, "a", "y"),  # 20
        (1000, "b", "c1"),  # 30
        (2000, "b", "c1"),  # 1050
        (2000, "a", "a"),  # 1090
    ]


def test_dirty_lists_changed_open_windows_only(engine: PartitionWindows, ev: MakeEvent) -> None:
    engine.add([ev(10, user="quiet")])
    result = engine.add([ev(20), ev(30), ev(1050, user="u2")])
    assert set(result.dirty) == {("u1", "c1", 0), ("u2", "c1", 1000)}
    assert all(isinstance(k, WindowKey) for k in result.dirty)
    closing = engine.add([ev(40), ev(SIZE + GRACE, user="u2")])
    assert [c.user for c in closing.closed] == ["quiet", "u1"]
    assert ("u1", "c1", 0) not in closing.dirty  # changed, then closed: delete, don't persist
    assert closing.dirty == (("u2", "c1", 1000),)


# -- flushes ----------------------------------------------------------------


def test_close_all_flushes_everything_and_blocks_reopening(engine: PartitionWindows, ev: MakeEvent) -> None:
    engine.add([ev(10), ev(1050, user="u2")])
    result = engine.close_all()
    assert [c.key for c in result.closed] == [("u1", "c1", 0), ("u2", "c1", 1000)]
    assert engine.open_count == 0
    assert engine.watermark == 2000  # end of the window holding the newest event
    again = engine.add([ev(1999, user="u2"), ev(2000, user="u2")])
    assert again.late == 1
    assert again.dirty == (("u2", "c1", 2000),)


def test_close_all_blocks_the_newest_window_even_if_nothing_is_open(
    engine: PartitionWindows, ev: MakeEvent
) -> None:
    engine.add([ev(1050, user="gone")])
    engine.purge_user("gone")
    assert engine.close_all().closed == ()
    assert engine.watermark == 2000


def test_close_all_on_fresh_engine_is_a_noop(engine: PartitionWindows) -> None:
    assert engine.close_all().closed == ()
    assert engine.watermark is None


def test_on_idle_flushes_after_idle_close_ms(ev: MakeEvent) -> None:
    engine = PartitionWindows(SPEC)
    engine.add([ev(10), ev(1050, user="u2")], now_wall_ms=1_000_000)
    assert engine.last_activity_ms == 1_000_000
    assert engine.on_idle(1_000_000 + 29_999, idle_close_ms=30_000).closed == ()
    result = engine.on_idle(1_000_000 + 30_000, idle_close_ms=30_000)
    assert [c.key for c in result.closed] == [("u1", "c1", 0), ("u2", "c1", 1000)]
    assert engine.open_count == 0


def test_on_idle_without_open_windows_does_nothing(engine: PartitionWindows) -> None:
    assert engine.on_idle(10**12, idle_close_ms=1) == engine.close_all()
    assert engine.watermark is None


def test_add_stamps_activity_from_clock_but_empty_batch_does_not() -> None:
    now = [7]
    engine = PartitionWindows(SPEC, clock=lambda: now[0])
    engine.add([{"user": "u", "content_id": "c", "event_type": "play", "watched_ms": 0, "event_time": 1}])
    now[0] = 99
    engine.add([])
    assert engine.last_activity_ms == 7


def test_restored_engine_without_activity_starts_idle_timer(ev: MakeEvent) -> None:
    engine = PartitionWindows.restore(SPEC, None, [WindowState("u", "c", 0, 1, 0, False, 1).to_state()])
    assert engine.on_idle(500, idle_close_ms=10).closed == ()
    assert len(engine.on_idle(510, idle_close_ms=10).closed) == 1


# -- erasure ------------------------------------------------------------------


def test_purge_user_drops_without_emitting(engine: PartitionWindows, ev: MakeEvent) -> None:
    engine.add([ev(10), ev(10, content="c2"), ev(1050), ev(10, user="u2")])
    assert engine.user_keys("u1") == [("u1", "c1", 0), ("u1", "c1", 1000), ("u1", "c2", 0)]
    assert engine.purge_user("u1") == 3
    assert engine.purge_user("u1") == 0
    assert engine.user_keys("u1") == []
    assert [c.user for c in engine.close_all().closed] == ["u2"]


def test_purge_keeps_window_heap_consistent(engine: PartitionWindows, ev: MakeEvent) -> None:
    engine.add([ev(10, user="gone"), ev(1010, user="gone"), ev(1020, user="kept")])
    engine.purge_user("gone")
    assert engine.add([ev(1010, user="gone")]).late == 0  # window 1000 still open for others
    closed = engine.add([ev(5000, user="x")]).closed
    assert [c.key for c in closed] == [("gone", "c1", 1000), ("kept", "c1", 1000)]


# -- input forms and invalid events -----------------------------------------


@dataclass
class _Obj:
    user: str
    content_id: str
    event_type: str
    watched_ms: int | None
    event_time: int


def test_accepts_objects_and_other_mappings(engine: PartitionWindows, ev: MakeEvent) -> None:
    result = engine.add([_Obj("u1", "c1", "play", None, 10), MappingProxyType(ev(20, watched=4))])
    assert result.invalid == 0
    assert engine.window_state(("u1", "c1", 0)) == WindowState("u1", "c1", 0, 4, 1, False, 2, 10)


@pytest.mark.parametrize(
    "broken",
    [
        {"user": "u1", "content_id": "c1", "event_type": "play", "watched_ms": 0},
        {"user": "u1", "content_id": "c1", "event_type": "play", "watched_ms": 0, "event_time": "10"},
        {"user": "u1", "content_id": "c1", "event_type": "play", "watched_ms": 0, "event_time": True},
        {"user": "u1", "content_id": "c1", "event_type": "play", "watched_ms": -1, "event_time": 10},
        {"user": "u1", "content_id": "c1", "event_type": "play", "watched_ms": 1.5, "event_time": 10},
        {"user": None, "content_id": "c1", "event_type": "play", "watched_ms": 0, "event_time": 10},
        {"user": "u1", "content_id": 7, "event_type": "play", "watched_ms": 0, "event_time": 10},
        {"user": "u1", "content_id": "c1", "event_type": None, "watched_ms": 0, "event_time": 10},
        object(),
        None,
    ],
)
def test_invalid_events_are_counted_not_raised(engine: PartitionWindows, broken: Any) -> None:
    result = engine.add([broken])
    assert (result.invalid, result.dirty, engine.invalid_total, engine.watermark) == (1, (), 1, None)


# -- state and exactly-once support -------------------------------------------


def _roundtrip_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def test_window_and_meta_state_roundtrip_through_json_and_msgspec(
    engine: PartitionWindows, ev: MakeEvent
) -> None:
    engine.add([ev(10, kind="complete", watched=3)], now_wall_ms=42)
    (window,) = engine.open_windows()
    for codec in (_roundtrip_json, lambda v: msgspec.msgpack.decode(msgspec.msgpack.encode(v))):
        assert WindowState.from_state(codec(window.to_state())) == window
        assert PartitionMeta.from_state(codec(engine.meta().to_state())) == engine.meta()
    assert engine.meta() == PartitionMeta(SIZE, GRACE, -90, 10, 42, 0, 0)


def test_snapshot_restore_reproduces_the_engine(engine: PartitionWindows, ev: MakeEvent) -> None:
    engine.add([ev(10), ev(1500, user="u2", kind="play", watched=8), ev(5, user="late")], now_wall_ms=9)
    engine.add([ev(2200, user="u3"), ev(100, user="late")])
    snap = _roundtrip_json(engine.snapshot())
    clone = PartitionWindows.from_snapshot(SPEC, snap)
    assert clone.snapshot() == engine.snapshot()
    assert (clone.watermark, clone.late_total, clone.open_count) == (engine.watermark, 2, engine.open_count)


def test_replay_after_crash_gives_identical_records(engine: PartitionWindows, ev: MakeEvent) -> None:
    engine.add([ev(10), ev(20, user="u2", kind="play", watched=5), ev(900, content="c9")])
    before = _roundtrip_json(engine.snapshot())
    batch = [ev(1050, user="u2"), ev(30, watched=1), ev(2500, user="u3"), ev(40), ev(2050, user="u2")]

    first = engine.add(batch)
    after_first = engine.snapshot()
    replayed_engine = PartitionWindows.from_snapshot(SPEC, before)
    second = replayed_engine.add(batch)

    assert first.closed  # the batch does close windows
    assert second == first
    assert replayed_engine.snapshot()["windows"] == after_first["windows"]


def test_per_window_restore_matches_snapshot(engine: PartitionWindows, ev: MakeEvent) -> None:
    engine.add([ev(10), ev(1100, user="u2"), ev(1200, user="u1", content="c3")])
    meta = engine.meta().to_state()
    entries = {w.key: w.to_state() for w in engine.open_windows()}  # as a keyed table holds them
    clone = PartitionWindows.restore(SPEC, meta, reversed(list(entries.values())))
    assert clone.snapshot() == engine.snapshot()


def test_overdue_restored_windows_close_on_next_call(ev: MakeEvent) -> None:
    meta = PartitionMeta(SIZE, GRACE, 5000, 5100, None, 0, 0).to_state()
    overdue = WindowState("u", "c", 0, 1, 0, False, 1).to_state()
    engine = PartitionWindows.restore(SPEC, meta, [overdue])
    result = engine.add([])
    assert [c.key for c in result.closed] == [("u", "c", 0)]
    assert engine.open_count == 0


def test_restore_rejects_another_spec(engine: PartitionWindows, ev: MakeEvent) -> None:
    engine.add([ev(10)])
    with pytest.raises(WindowStateError):
        PartitionWindows.from_snapshot(WindowSpec(size_ms=SIZE, grace_ms=GRACE + 1), engine.snapshot())


def _window(**changes: Any) -> dict[str, Any]:
    return {**WindowState("u", "c", 0, 1, 0, False, 1).to_state(), **changes}


@pytest.mark.parametrize(
    "windows",
    [
        [_window(completed=0)],
        [_window(watched_ms=-1)],
        [_window(window_start=5)],
        [_window(first_ms="10")],
        [_window(first_ms=True)],
        [_window(first_ms=-1)],
        [_window(first_ms=SIZE)],
        [{"user": "u", "content_id": "c", "window_start": 0}],
        [_window(), _window()],
        ["not a mapping"],
    ],
)
def test_restore_rejects_malformed_windows(windows: list[Any]) -> None:
    with pytest.raises(WindowStateError):
        PartitionWindows.restore(SPEC, None, windows)


@pytest.mark.parametrize(
    "meta",
    [
        {},
        {**PartitionMeta(SIZE, GRACE, None, None, None, 0, 0).to_state(), "v": 99},
        {**PartitionMeta(SIZE, GRACE, None, None, None, 0, 0).to_state(), "watermark": "x"},
    ],
)
def test_restore_rejects_malformed_meta(meta: dict[str, Any]) -> None:
    with pytest.raises(WindowStateError):
        PartitionWindows.restore(SPEC, meta)


def test_state_error_is_a_privrec_error() -> None:
    assert issubclass(WindowStateError, PrivrecError)
    assert not WindowStateError.retryable
