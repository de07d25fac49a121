"""Property tests: the engine agrees with the naive reference on random streams.

Streams mix in-order, slightly late (within grace) and very late events,
negative times, malformed events, huge watch times, control markers and
purges; specs sometimes have tiny saturation caps; batches are cut
at random, and between batches the engine is rebuilt from the state an agent
would have persisted (meta + dirty windows, minus closed and purged ones).
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.windows import Interaction, PartitionWindows, WindowSpec
from tests.support.windows_reference import CLOSE_ALL, Purge, expected_interactions, reference_run

USERS = ["u0", "u1", "u2"]
CONTENT = ["c0", "c1"]
KINDS = ["play", "complete", "pause", "heartbeat"]
_EVENT = {"user": "u0", "content_id": "c0", "event_type": "play", "watched_ms": 0, "event_time": 0}


@st.composite
def specs(draw: st.DrawFn) -> WindowSpec:
    size = draw(st.sampled_from([7, 10, 100]))
    caps = draw(st.sampled_from([{}, {"watched_cap_ms": 1500, "count_cap": 3}, {"count_cap": 1}]))
    return WindowSpec(size_ms=size, grace_ms=draw(st.integers(0, 3 * size)), **caps)


@st.composite
def streams(draw: st.DrawFn, spec: WindowSpec) -> list[Any]:
    """Events from a random-walk clock, each lagging it by a random amount."""
    size = spec.size_ms
    clock = draw(st.integers(-3 * size, 3 * size))
    items: list[Any] = []
    for _ in range(draw(st.integers(0, 60))):
        roll = draw(st.integers(0, 99))
        if roll < 3:
            items.append(CLOSE_ALL)
        elif roll < 6:
            items.append(Purge(draw(st.sampled_from(USERS))))
        elif roll < 8:  # malformed: negative watch time
            items.append(dict(_EVENT, watched_ms=-1))
        else:
            clock += draw(st.integers(0, size))
            lag = draw(st.one_of(st.just(0), st.integers(0, spec.grace_ms + 2 * size)))
            items.append(
                {
                    "user": draw(st.sampled_from(USERS)),
                    "content_id": draw(st.sampled_from(CONTENT)),
                    "event_type": draw(st.sampled_from(KINDS)),
                    "watched_ms": draw(
                        st.one_of(st.none(), st.integers(0, 1000), st.sampled_from([2**31, 2**63, 2**64]))
                    ),
                    "event_time": clock - lag,
                }
            )
    return items


def _check_invariants(engine: PartitionWindows, closed: tuple[Interaction, ...]) -> None:
    wm = engine.watermark
    if wm is not None:
        assert all(c.window_end <= wm for c in closed)
        assert all(w.window_start + engine.spec.size_ms > wm for w in engine.open_windows())


@settings(max_examples=250, deadline=None)
@given(data=st.data())
def test_engine_matches_reference(data: st.DataObject) -> None:
    spec = data.draw(specs())
    items = data.draw(streams(spec))
    engine = PartitionWindows(spec, clock=lambda: 0)
    table: dict[Any, dict[str, Any]] = {}  # what the agent's changelogged table would hold
    emitted: list[Interaction] = []
    late = invalid = 0

    batch: list[Any] = []

    def flush_batch() -> None:
        nonlocal engine, late, invalid
        if data.draw(st.booleans()):  # replay check: same state + same batch => same result
            twin = PartitionWindows.from_snapshot(spec, json.loads(json.dumps(engine.snapshot())))
            twin_result = twin.add(list(batch))
        else:
            twin_result = None
        result = engine.add(batch)
        batch.clear()
        assert twin_result is None or twin_result == result
        _check_invariants(engine, result.closed)
        emitted.extend(result.closed)
        late += result.late
        invalid += result.invalid
        for c in result.closed:
            table.pop(c.key, None)
        for key in result.dirty:
            state = engine.window_state(key)
            assert state is not None
            table[key] = state.to_state()
        assert table == {w.key: w.to_state() for w in engine.open_windows()}
        if data.draw(st.booleans()):  # crash + recovery from persisted state
            meta = json.loads(json.dumps(engine.meta().to_state()))
            windows = json.loads(json.dumps(list(table.values())))
            engine = PartitionWindows.restore(spec, meta, windows, clock=lambda: 0)

    for item in items:
        if item is CLOSE_ALL or isinstance(item, Purge):
            flush_batch()
            if item is CLOSE_ALL:
                # on_idle flushes like close_all, but only when something is open
                idle = engine.open_count > 0 and data.draw(st.booleans())
                closing = engine.on_idle(10**9, 1) if idle else engine.close_all()
                emitted.extend(closing.closed)
                for c in closing.closed:
                    table.pop(c.key, None)
            else:
                keys = engine.user_keys(item.user)
                assert engine.purge_user(item.user) == len(keys)
                for key in keys:
                    del table[key]
            _check_invariants(engine, ())
            continue
        batch.append(item)
        if data.draw(st.integers(0, 4)) == 0:
            flush_batch()
    flush_batch()
    emitted.extend(engine.close_all().closed)

    expected = reference_run(items, spec)
    assert [msgspec.structs.asdict(c) for c in emitted] == expected.interactions
    assert (late, invalid) == (expected.late, expected.invalid)
    assert (engine.late_total, engine.invalid_total) == (late, invalid)
    assert engine.open_count == 0


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_batching_does_not_change_output(data: st.DataObject) -> None:
    spec = data.draw(specs())
    items = [i for i in data.draw(streams(spec)) if isinstance(i, dict)]
    one = PartitionWindows(spec, clock=lambda: 0)
    whole = one.add(items).closed + one.close_all().closed
    each = PartitionWindows(spec, clock=lambda: 0)
    single = [c for i in items for c in each.add([i]).closed] + list(each.close_all().closed)
    assert list(whole) == single
    assert [msgspec.structs.asdict(c) for c in single] == expected_interactions(items, spec)


def test_reference_on_a_hand_checked_stream() -> None:
    spec = WindowSpec(size_ms=10, grace_ms=2)

    def e(t: int, user: str = "u", kind: str = "pause", watched: int = 1) -> dict[str, Any]:
        return {"user": user, "content_id": "c", "event_type": kind, "watched_ms": watched, "event_time": t}

    items = [e(1, kind="play"), e(11), e(9), e(12), e(9), CLOSE_ALL]
    items += [e(19), e(20, kind="complete"), Purge("x")]
    result = reference_run(items, spec)
    assert (result.late, result.invalid) == (2, 0)  # e(9) after 12 (wm 10), e(19) after the marker (wm 20)
    assert result.interactions == [
        {"user": "u", "content_id": "c", "window_start": 0, "window_end": 10,
         "watched_ms": 2, "plays": 1, "completed": False, "events": 2},
        {"user": "u", "content_id": "c", "window_start": 10, "window_end": 20,
         "watched_ms": 2, "plays": 0, "completed": False, "events": 2},
        {"user": "u", "content_id": "c", "window_start": 20, "window_end": 30,
         "watched_ms": 1, "plays": 0, "completed": True, "events": 1},
    ]  # fmt: skip
