"""Emission order within one window end: by first event time, then user and content id.

The trainer learns which titles a viewer started first within an hour only
from the order closed windows are emitted in, so that order must follow the
first events, survive every flush path and a restore from persisted state
(engine snapshots and the stream's per-user entries), and fall back to the
window start for state written before first event times were kept.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from pipeline.stream.partition import META_KEY, PartitionState, StateWrite, UserEntry, split_key
from pipeline.windows import Interaction, PartitionWindows, WindowSpec, WindowState, WindowStateError

HOUR = 3_600_000
SPEC = WindowSpec(size_ms=HOUR, grace_ms=60_000)
T0 = 100 * HOUR


def ev(t: int, user: str = "u1", content: str = "c1", kind: str = "heartbeat") -> dict[str, Any]:
    return {"user": user, "content_id": content, "event_type": kind, "watched_ms": 1000, "event_time": t}


def keys(closed: Any) -> list[tuple[str, str, int]]:
    return [(c.user, c.content_id, c.window_start) for c in closed]


def engine() -> PartitionWindows:
    return PartitionWindows(SPEC, clock=lambda: 0)


# -- the engine ------------------------------------------------------------------


def test_one_user_windows_come_out_in_first_event_order_not_by_id() -> None:
    e = engine()
    e.add([ev(T0 + 10, content="c3"), ev(T0 + 20, content="c1"), ev(T0 + 30, content="c2")])
    e.add([ev(T0 + 40, content="c1"), ev(T0 + 50, content="c3")])  # later events do not reorder
    closed = e.add([ev(T0 + 2 * HOUR, user="other")]).closed
    assert [c.content_id for c in closed] == ["c3", "c1", "c2"]


def test_two_users_interleave_by_first_event() -> None:
    e = engine()
    e.add([ev(T0 + 10, user="u2", content="c3"), ev(T0 + 20, user="u1", content="c1")])
    e.add([ev(T0 + 30, user="u2", content="c2"), ev(T0 + 40, user="u1", content="c3")])
    closed = e.add([ev(T0 + 2 * HOUR, user="other")]).closed
    order = [(c.user, c.content_id) for c in closed]
    assert order == [("u2", "c3"), ("u1", "c1"), ("u2", "c2"), ("u1", "c3")]
    assert [c.content_id for c in closed if c.user == "u2"] == ["c3", "c2"]  # what the trainer sees per user


def test_equal_first_event_times_fall_back_to_user_then_content() -> None:
    e = engine()
    e.add([ev(T0 + 5, user="u2", content="a"), ev(T0 + 5, user="u1", content="b"), ev(T0 + 5, content="a")])
    e.add([ev(T0 + 1, content="z")])
    closed = e.close_all().closed
    assert [(c.user, c.content_id) for c in closed] == [("u1", "z"), ("u1", "a"), ("u1", "b"), ("u2", "a")]


def test_first_event_is_the_one_that_opened_the_window_not_the_earliest() -> None:
    """An out-of-order event within grace does not move its window forward (no per-event work)."""
    e = engine()
    e.add([ev(T0 + 50, content="c1"), ev(T0 + 30, content="c2"), ev(T0 + 10, content="c1")])
    assert [w.first_ms for w in e.open_windows()] == [T0 + 50, T0 + 30]
    assert [c.content_id for c in e.close_all().closed] == ["c2", "c1"]


def test_windows_of_earlier_hours_still_come_first() -> None:
    e = engine()
    e.add([ev(T0 + HOUR + 1, content="late-hour"), ev(T0 + HOUR - 1, content="early-hour")])
    closed = e.add([ev(T0 + 3 * HOUR)]).closed
    assert [c.content_id for c in closed] == ["early-hour", "late-hour"]


@pytest.mark.parametrize("flush", ["close_all", "on_idle"])
def test_flushes_emit_in_the_same_order(flush: str) -> None:
    e = engine()
    e.add([ev(T0 + 2, content="c9"), ev(T0 + 3, content="c1"), ev(T0 + 1, content="c3")], now_wall_ms=0)
    result = e.close_all() if flush == "close_all" else e.on_idle(10, idle_close_ms=5)
    assert [c.content_id for c in result.closed] == ["c3", "c9", "c1"]


# -- engine state ------------------------------------------------------------------

STREAM = [
    [ev(T0 + 10, content="c3"), ev(T0 + 20, user="u2", content="c2"), ev(T0 + 30, content="c1")],
    [ev(T0 + 40, content="c2"), ev(T0 + 50, user="u2", content="c1"), ev(T0 + HOUR + 5, content="c9")],
    [ev(T0 + HOUR + 7, content="c0"), ev(T0 + 2 * HOUR + 60_000, user="u2", content="c5")],
    [ev(T0 + 2 * HOUR + 70_000, content="c4"), ev(T0 + 2 * HOUR + 80_000, user="u2", content="c0")],
]


def _uncrashed() -> list[Interaction]:
    e = engine()
    out = [c for batch in STREAM for c in e.add(batch).closed]
    return out + list(e.close_all().closed)


def test_the_stream_under_test_is_not_in_id_order() -> None:
    emitted = _uncrashed()
    assert keys(emitted) != sorted(keys(emitted), key=lambda k: (k[2], k[0], k[1]))
    assert len(emitted) == 10


def test_window_state_carries_first_ms_through_json() -> None:
    e = engine()
    e.add(STREAM[0])
    states = list(e.open_windows())
    assert [s.first_ms for s in states] == [T0 + 30, T0 + 10, T0 + 20]  # open_windows: by id
    for s in states:
        assert WindowState.from_state(json.loads(json.dumps(s.to_state()))) == s
        assert e.window_state(s.key) == s


@pytest.mark.parametrize("crash_after", [1, 2, 3])
def test_snapshot_restore_emits_the_same_sequence(crash_after: int) -> None:
    e = engine()
    out = [c for batch in STREAM[:crash_after] for c in e.add(batch).closed]
    snap = json.loads(json.dumps(e.snapshot()))
    assert all("first_ms" in w for w in snap["windows"])
    e = PartitionWindows.from_snapshot(SPEC, snap, clock=lambda: 0)
    out += [c for batch in STREAM[crash_after:] for c in e.add(batch).closed]
    out += e.close_all().closed
    assert out == _uncrashed()


def test_state_without_first_ms_restores_at_window_start() -> None:
    old = [
        {k: v for k, v in WindowState(u, c, T0, 1, 0, False, 1).to_state().items() if k != "first_ms"}
        for u, c in [("u2", "a"), ("u1", "b"), ("u1", "a")]
    ]
    e = PartitionWindows.restore(SPEC, None, old)
    assert {w.first_ms for w in e.open_windows()} == {T0}
    e.add([ev(T0 + 1, user="u0", content="z")])  # opened after the restore, first at T0 + 1
    closed = e.close_all().closed
    assert [(c.user, c.content_id) for c in closed] == [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u0", "z")]


def test_explicit_null_first_ms_is_old_state_too() -> None:
    e = PartitionWindows.restore(SPEC, None, [WindowState("u", "c", T0, 1, 0, False, 1).to_state()])
    assert [w.first_ms for w in e.open_windows()] == [T0]


# -- the stream's per-user entries -----------------------------------------------------


class Table:
    """The changelogged table as a dict, fed the writes in order."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def apply(self, writes: list[StateWrite]) -> None:
        for w in writes:
            if w.value is None:
                self.data.pop(w.key, None)
            else:
                self.data[w.key] = w.value

    def items(self, partition: int) -> list[tuple[str, bytes]]:
        out = []
        for key, value in self.data.items():
            p, user = split_key(key)
            if p == partition:
                out.append((user, value))
        return out


def _messages() -> list[tuple[str, list[dict[str, Any]]]]:
    """STREAM as one-user messages, in order."""
    out = []
    for batch in STREAM:
        for event in batch:
            out.append((event["user"], [event]))
    return out


def _run_partition(crash_at: int | None) -> list[Interaction]:
    table = Table()
    state = PartitionState(0, SPEC, PartitionWindows(SPEC, clock=lambda: 0))
    emitted: list[Interaction] = []
    for offset, (user, events) in enumerate(_messages()):
        if offset == crash_at:
            state = PartitionState.restore(0, SPEC, table.items(0))
        closed, writes, late = state.add(user, offset, events)
        assert late == 0
        emitted += closed
        table.apply(writes)
    closed, writes = state.close_all()
    table.apply(writes)
    return emitted + closed


def test_entries_carry_first_event_times_parallel_to_windows() -> None:
    table = Table()
    state = PartitionState(0, SPEC)
    for offset, (user, events) in enumerate(_messages()[:3]):
        table.apply(state.add(user, offset, events)[1])
    entry = msgspec.json.decode(table.data["0/u1"], type=UserEntry)
    assert [w[0] for w in entry.w] == ["c1", "c3"]  # by id
    assert entry.f == [T0 + 30, T0 + 10]


@pytest.mark.parametrize("crash_at", range(1, 10))
def test_partition_restore_emits_the_same_sequence(crash_at: int) -> None:
    assert _run_partition(crash_at) == _run_partition(None) == _uncrashed()


def test_old_entry_without_f_decodes_and_restores_at_window_start() -> None:
    # written by the build before first event times: five positional fields
    old = b'[3,-1,[["c2",360000000,10,1,false,1],["c1",360000000,5,0,false,2]],360000000,360000100]'
    assert msgspec.json.decode(old, type=UserEntry).f is None
    state = PartitionState.restore(0, SPEC, [("u1", old)])
    assert [w.first_ms for w in state.engine.open_windows()] == [T0, T0]
    assert state.already_applied("u1", 3)
    closed, writes = state.close_all()
    assert [(c.content_id, c.watched_ms) for c in closed] == [("c1", 5), ("c2", 10)]
    assert writes[-1].key == f"0/{META_KEY}"


def test_old_and_new_entries_restore_together() -> None:
    old = msgspec.json.encode([3, -1, [["c2", T0, 10, 1, False, 1]], None, None])
    new = msgspec.json.encode(UserEntry(4, -1, [("c1", T0, 5, 0, False, 2)], None, None, [T0 + 9]))
    state = PartitionState.restore(0, SPEC, [("u1", old), ("u0", new)])
    assert [c.user for c in state.close_all()[0]] == ["u1", "u0"]  # T0 (start) before T0 + 9


def test_entry_with_mismatched_first_times_is_rejected() -> None:
    bad = msgspec.json.encode(UserEntry(3, -1, [("c1", T0, 5, 0, False, 2)], None, None, [T0, T0 + 1]))
    with pytest.raises(WindowStateError):
        PartitionState.restore(0, SPEC, [("u1", bad)])
